"""The synthetic-face detector: spectrum features, checkpoints, scores, thresholds."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ml.errors import CheckpointError
from ml.faces import find_faces
from ml.model import load_checkpoint
from ml.synthetic import (
    DEFAULT_SYNTHETIC_CHECKPOINT,
    VERDICT_REAL,
    VERDICT_SYNTHETIC,
    VERDICT_UNCERTAIN,
    SyntheticDetector,
    SyntheticFaceModel,
    SyntheticSpec,
    load_synthetic_detector,
    radial_spectrum,
    round_to_fp16_,
    save_synthetic_checkpoint,
    synthetic_verdict,
)
from ml.synthetic_train import ImageItem, choose_thresholds, degrade, fit_logistic, logistic_scores, split_by_image

SIZE = 64


def grating(frequency: float, *, size: int = 128, vertical: bool = False) -> np.ndarray:
    """Stripes at `frequency` cycles per pixel across x (or y), grey levels 68..188."""
    coords = np.arange(size, dtype=np.float64)
    wave = 128 + 60 * np.sin(2 * np.pi * frequency * coords)
    image = np.tile(wave, (size, 1))
    return image.T.copy() if vertical else image


@pytest.mark.parametrize("frequency, vertical", [(0.25, False), (0.125, True), (0.375, False)])
def test_a_periodic_pattern_peaks_in_the_bin_of_its_frequency(frequency, vertical):
    bins = 32
    profile = radial_spectrum(grating(frequency, vertical=vertical), bins)
    expected = int(frequency / 0.5 * bins)
    assert int(np.argmax(profile)) == expected
    assert profile[expected] - np.median(profile) > 10  # a sharp peak, not a bump


def test_a_flat_image_has_no_frequency_content():
    assert np.array_equal(radial_spectrum(np.full((96, 80), 200, np.uint8), 24), np.zeros(24, np.float32))


def test_contrast_and_brightness_do_not_change_the_spectrum():
    rng = np.random.default_rng(0)
    image = rng.normal(100, 20, (128, 128))
    assert np.allclose(radial_spectrum(image, 32), radial_spectrum(3 * image + 40, 32), atol=1e-4)


def test_upsampling_shows_as_a_high_frequency_fall_off():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64)).astype(np.uint8)
    upsampled = cv2.resize(noise, (128, 128), interpolation=cv2.INTER_LINEAR)
    native = rng.integers(0, 256, (128, 128)).astype(np.uint8)
    top = slice(-8, None)  # the highest quarter of the frequencies
    assert radial_spectrum(upsampled, 32)[top].mean() < radial_spectrum(native, 32)[top].mean() - 2


def test_the_spectrum_refuses_a_colour_or_tiny_image():
    with pytest.raises(ValueError):
        radial_spectrum(np.zeros((32, 32, 3)), 8)
    with pytest.raises(ValueError):
        radial_spectrum(np.zeros((4, 4)), 8)


def small_model(spectrum_bins=16, cnn_stages=(3, 6), seed=0, **spec) -> SyntheticFaceModel:
    torch.manual_seed(seed)
    spec = SyntheticSpec(input_size=SIZE, spectrum_bins=spectrum_bins, cnn_stages=cnn_stages, **spec)
    model = SyntheticFaceModel(spec).eval()
    if model.backbone is not None:  # as trained: the stored fp16 backbone is the one that scored
        round_to_fp16_(model.backbone)
    with torch.no_grad():
        model.feature_mean.normal_()
        model.feature_std.uniform_(0.5, 2.0)
        model.head.weight.normal_(std=0.3)
    return model


@pytest.fixture(scope="module")
def crops(astronaut):
    rng = np.random.default_rng(1)
    face = cv2.resize(astronaut[60:170, 170:280], (SIZE, SIZE))
    noise = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    return [face, noise, np.ascontiguousarray(face[:, ::-1])]


@pytest.mark.parametrize("bins, stages", [(16, (3, 6)), (16, ()), (0, (18,))])
def test_a_synthetic_checkpoint_round_trip_gives_bit_identical_scores(tmp_path, crops, bins, stages):
    model = small_model(bins, stages, threshold=0.7, threshold_real=0.2, version="t1", training={"seed": 3})
    path = save_synthetic_checkpoint(model, tmp_path / "synthetic.pt")
    loaded = load_synthetic_detector(path, device="cpu")
    assert loaded.spec == model.spec
    assert loaded.thresholds == (0.2, 0.7)
    assert np.array_equal(SyntheticDetector(model, version="x").score(crops), loaded.score(crops))


def test_the_backbone_is_stored_in_fp16_and_the_head_in_fp32(tmp_path):
    path = save_synthetic_checkpoint(small_model(), tmp_path / "synthetic.pt")
    data = torch.load(path, weights_only=True)
    assert data["task"] == "synthetic"
    state = data["state_dict"]
    assert all(v.dtype == torch.float16 for k, v in state.items() if k.startswith("backbone.") and v.is_floating_point())
    assert state["head.weight"].dtype == torch.float32


def test_scores_are_one_probability_per_crop(crops):
    detector = SyntheticDetector(small_model(), version="x")
    scores = detector.score(crops * 7)  # more than one batch
    assert scores.shape == (21,) and scores.dtype == np.float64
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.array_equal(scores[:3], scores[3:6])
    assert detector.score([]).shape == (0,)


def test_crops_of_the_wrong_size_are_refused(crops):
    detector = SyntheticDetector(small_model(), version="x")
    with pytest.raises(ValueError, match="64x64x3"):
        detector.score([cv2.resize(crops[0], (SIZE + 1, SIZE))])


def test_the_detector_cuts_its_own_crops_from_haar_boxes(astronaut):
    detector = SyntheticDetector(small_model(), version="x")
    boxes = find_faces(astronaut)
    assert detector.crop(astronaut, boxes[0]).shape == (SIZE, SIZE, 3)
    assert detector.score_faces(astronaut, boxes).shape == (len(boxes),)


def test_each_loader_refuses_the_other_detectors_checkpoint(tmp_path, untrained_checkpoint):
    path = save_synthetic_checkpoint(small_model(), tmp_path / "synthetic.pt")
    with pytest.raises(CheckpointError, match="synthetic"):
        load_checkpoint(path, device="cpu")
    with pytest.raises(CheckpointError, match="not a synthetic-face one"):
        load_synthetic_detector(untrained_checkpoint, device="cpu")


def test_a_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no synthetic-face checkpoint"):
        load_synthetic_detector(tmp_path / "none.pt")


def test_the_uncertain_band_lies_between_the_two_thresholds():
    def verdict(p):
        return synthetic_verdict(p, threshold_real=0.3, threshold=0.8)

    assert [verdict(p) for p in (0.0, 0.29, 0.3, 0.79, 0.8, 1.0)] == [
        VERDICT_REAL,
        VERDICT_REAL,
        VERDICT_UNCERTAIN,
        VERDICT_UNCERTAIN,
        VERDICT_SYNTHETIC,
        VERDICT_SYNTHETIC,
    ]
    with pytest.raises(ValueError):
        SyntheticSpec(threshold=0.3, threshold_real=0.8)


def test_no_source_of_real_photos_gets_more_than_5_percent_called_synthetic():
    rng = np.random.default_rng(0)
    reals, harder_reals, fakes = rng.beta(2, 5, 137), rng.beta(3, 4, 40), rng.beta(5, 2, 91)
    low, high = choose_thresholds({"easy": reals, "hard": harder_reals}, fakes)
    assert low <= high
    assert np.mean(reals >= high) <= 0.05 and np.mean(harder_reals >= high) <= 0.05
    assert np.mean(harder_reals >= high - 0.02) > 0.05  # the hard source sets it, no stricter


def test_a_real_call_needs_ten_times_more_real_photos_than_synthetic_faces_below_it():
    rng = np.random.default_rng(1)
    reals, fakes = rng.beta(2, 5, 300), rng.beta(5, 2, 200)
    low, high = choose_thresholds({"photos": reals}, fakes)
    assert 0 < low < high
    assert np.mean(fakes < low) * 10 <= np.mean(reals < low)
    above = np.sort(np.r_[reals, fakes])
    above = above[above > low][:3].mean()  # a little higher, the evidence is too weak
    assert np.mean(fakes < above) * 10 > np.mean(reals < above)


def test_a_logistic_head_separates_separable_features():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, (40, 5)), rng.normal(0, 1, (25, 5)) + [3, 0, 0, 0, 0]]
    y = np.r_[np.zeros(40), np.ones(25)]
    scores = logistic_scores(x, *fit_logistic(x, y, l2=0.01))
    assert np.mean((scores >= 0.5) == (y == 1)) > 0.95


def test_the_split_is_by_image_stratified_and_seeded():
    items = [ImageItem(Path(f"r{i}.jpg"), 0, "in_domain") for i in range(20)]
    items += [ImageItem(Path(f"f{i}.jpg"), 1, "in_domain") for i in range(10)]
    items += [ImageItem(Path(f"x{i}.jpg"), 0, "extra") for i in range(10)]
    train, test = split_by_image(items, test_fraction=0.3, seed=4)
    assert sorted(i.path.name for i in train + test) == sorted(i.path.name for i in items)
    assert sum(i.label for i in test) == 3 and sum(i.source == "extra" for i in test) == 3 and len(test) == 12
    assert split_by_image(items, test_fraction=0.3, seed=4) == (train, test)
    assert split_by_image(items, test_fraction=0.3, seed=5)[1] != test


def test_degrading_a_whole_image_downscales_and_reencodes(astronaut):
    degraded, scale = degrade(astronaut, long_side=256, quality=75)
    assert degraded.shape == (256, 256, 3) and scale == 0.5
    assert not np.array_equal(degraded, cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA))
    same, scale = degrade(astronaut, long_side=1024)
    assert scale == 1.0 and np.array_equal(same, astronaut)


def test_the_shipped_checkpoint_loads_and_scores_the_astronauts_face(astronaut):
    detector = load_synthetic_detector(device="cpu")
    assert DEFAULT_SYNTHETIC_CHECKPOINT.stat().st_size < 10_000_000
    low, high = detector.thresholds
    assert 0 < low <= high < 1
    boxes = find_faces(astronaut, max_faces=1)
    scores = detector.score_faces(astronaut, boxes)
    assert scores.shape == (1,) and 0 <= scores[0] <= 1
    assert detector.verdict(float(scores[0])) in (VERDICT_REAL, VERDICT_UNCERTAIN, VERDICT_SYNTHETIC)


def test_evaluate_synthetic_without_anything_to_evaluate_is_a_usage_error(tmp_path, capsys):
    from ml.__main__ import EXIT_USAGE, main

    assert main(["evaluate-synthetic", "--out", str(tmp_path / "eval")]) == EXIT_USAGE
    assert "nothing to evaluate" in capsys.readouterr().err


def test_a_photos_face_is_scored_on_three_framings_and_counts_the_lowest(astronaut):
    detector = load_synthetic_detector(device="cpu")
    [box] = find_faces(astronaut, max_faces=1)

    views = detector.views(astronaut, box)

    size = detector.spec.input_size
    assert len(views) == 3 and all(view.shape == (size, size, 3) for view in views)
    assert np.array_equal(views[0], detector.crop(astronaut, box))
    assert all(not np.array_equal(view, views[0]) for view in views[1:])
    assert detector.score_photo_faces(astronaut, [box])[0] == pytest.approx(detector.score(views).min())


def test_framings_of_a_face_at_the_edge_of_a_photo_are_cut_inside_it(astronaut):
    detector = load_synthetic_detector(device="cpu")
    [box] = find_faces(astronaut, max_faces=1)
    edge = np.ascontiguousarray(astronaut[box.y - 10 :, box.x - 10 :])  # the face in the top-left corner
    moved = type(box)(10, 10, box.w, box.h)

    views = detector.views(edge, moved)

    assert len(views) == 3 and all(view.shape[:2] == (detector.spec.input_size,) * 2 for view in views)
