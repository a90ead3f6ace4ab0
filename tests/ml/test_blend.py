"""Self-blended fakes: changed only inside the mask, reproducible, and of varied shapes."""

import cv2
import numpy as np
import pytest

from ml.blend import blend, face_box_in_crop, random_face_mask, self_blend
from ml.faces import crop_face, find_faces


@pytest.fixture(scope="module")
def face(astronaut) -> np.ndarray:
    """A tight 224 px crop of the astronaut's face, like the DFDC and UTKFace crops."""
    return crop_face(astronaut, find_faces(astronaut, max_faces=1)[0], size=224, margin=1.0)


def test_it_changes_the_face_only_inside_the_mask(face):
    for seed in range(10):
        blended, mask = self_blend(face, np.random.default_rng(seed))
        changed = (blended != face).any(axis=2)
        assert not changed[mask == 0].any(), f"seed {seed}: a pixel outside the mask changed"
        assert changed[mask > 0].mean() > 0.3, f"seed {seed}: the mask area barely changed"


def test_it_keeps_the_shape_and_type_of_any_square_crop(face):
    for size in (64, 200, 317):
        crop = cv2.resize(face, (size, size))
        blended, mask = self_blend(crop, np.random.default_rng(size))
        assert blended.shape == crop.shape and blended.dtype == np.uint8
        assert mask.shape == (size, size) and mask.dtype == np.float32


def test_the_mask_is_soft_bounded_and_covers_part_of_the_face(face):
    for seed in range(10):
        _, mask = self_blend(face, np.random.default_rng(seed))
        assert 0.0 <= mask.min() and mask.max() <= 1.0
        covered = (mask > 0).mean()
        assert 0.05 < covered < 0.95, f"seed {seed}: the mask covers {covered:.0%} of the crop"
        assert ((mask > 0) & (mask < mask.max())).any(), "the edge should be soft"


def test_it_is_reproducible_for_a_seed(face):
    first = self_blend(face, np.random.default_rng(42))
    again = self_blend(face, np.random.default_rng(42))
    other = self_blend(face, np.random.default_rng(43))
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_mask_shapes_vary_across_seeds():
    masks = [random_face_mask((128, 128), np.random.default_rng(seed)) > 0.5 for seed in range(24)]
    areas = np.array([m.mean() for m in masks])
    assert areas.max() - areas.min() > 0.2  # small inner-face shapes and whole-face ones
    ious = [
        (a & b).sum() / (a | b).sum()
        for i, a in enumerate(masks)
        for b in masks[i + 1 :]
    ]
    assert np.median(ious) < 0.8  # no single template shape
    centres = np.array([np.argwhere(m).mean(axis=0) for m in masks])
    assert centres.std(axis=0).min() > 1.0  # the centre moves in both directions (pixels)


def test_blend_ratios_vary_the_mask_strength():
    peaks = {round(float(self_blend(np.full((64, 64, 3), 100, np.uint8), np.random.default_rng(s))[1].max()), 2)
             for s in range(40)}
    assert {0.25, 0.5, 0.75, 1.0} <= peaks


def test_blend_is_the_source_where_the_mask_is_zero_and_the_target_where_it_is_one():
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    target = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.float32)
    mask[8:16, 8:16] = 1.0
    mask[16:24, 8:16] = 0.5
    out = blend(source, target, mask)
    assert np.array_equal(out[mask == 0], source[mask == 0])
    assert np.array_equal(out[8:16, 8:16], target[8:16, 8:16])
    expected = np.clip(source[16:24, 8:16] / 2 + target[16:24, 8:16] / 2 + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(out[16:24, 8:16].astype(int) - expected).max() <= 1


def test_the_face_box_of_a_haar_crop_follows_the_margin_and_shift():
    assert face_box_in_crop(margin=1.0) == pytest.approx((0.0, 0.0, 1.0, 1.0))
    assert face_box_in_crop(margin=2.0) == pytest.approx((0.25, 0.25, 0.75, 0.75))
    # The crop centre moved down 0.2 box heights: the box sits 0.1 crop heights higher.
    assert face_box_in_crop(margin=2.0, shift=0.2) == pytest.approx((0.25, 0.15, 0.75, 0.65))


def test_it_refuses_anything_but_a_bgr_uint8_image():
    with pytest.raises(ValueError, match="BGR uint8"):
        self_blend(np.zeros((64, 64), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="BGR uint8"):
        self_blend(np.zeros((64, 64, 3), np.float32), np.random.default_rng(0))


@pytest.fixture(scope="module")
def face_landmarks(face):
    """The astronaut crop's 468 face-mesh landmarks, as the training sources store them."""
    from ml.sources import Landmarker

    points = Landmarker()(face)
    assert points is not None and points.shape == (468, 2)
    return points


def test_landmark_masks_stay_inside_the_face_and_leave_the_rest_untouched(face, face_landmarks):
    from ml.blend import face_region

    region = face_region(face.shape[:2], face_landmarks)
    for seed in range(12):
        blended, mask = self_blend(face, np.random.default_rng(seed), landmarks=face_landmarks)
        assert mask.max() > 0.2
        assert not mask[region == 0].any()  # never past the face (plus 2 % of the crop)
        outside = mask == 0
        assert np.array_equal(blended[outside], face[outside])  # byte-identical outside the mask
