import cv2
import numpy as np
import pytest

from ml.detector import DetectorOptions
from ml.edits import vertical_blurred_fill
from ml.faces import FINE_SEARCH, crop_face, find_faces
from ml.verify import MIN_FACE_DETAIL, confirm_faces, face_detail, too_blurred


def haar_fooling_texture() -> np.ndarray:
    """Smoothed random noise (seed 1) in which Haar's face cascade sees a face: a stand-in for
    the flowers, hands and table edges it fires on in real footage."""
    noise = np.random.default_rng(1).integers(0, 255, (40, 40), dtype=np.uint8)
    grey = cv2.GaussianBlur(cv2.resize(noise, (320, 320), interpolation=cv2.INTER_CUBIC), (0, 0), 3)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def test_the_astronauts_face_is_confirmed(astronaut):
    boxes = find_faces(astronaut)
    assert len(boxes) == 1
    assert confirm_faces(astronaut, boxes) == [True]


def test_a_texture_that_haar_takes_for_a_face_is_rejected():
    texture = haar_fooling_texture()
    boxes = find_faces(texture)
    assert boxes, "the texture no longer fools Haar: pick another seed"
    assert confirm_faces(texture, boxes) == [False] * len(boxes)


def test_without_verification_every_box_is_kept():
    texture = haar_fooling_texture()
    boxes = find_faces(texture)
    assert confirm_faces(texture, boxes, verifier="none") == [True] * len(boxes)


def test_an_unknown_verifier_is_refused(astronaut):
    with pytest.raises(ValueError, match="unknown face verifier"):
        confirm_faces(astronaut, [], verifier="guess")


def test_a_photo_of_only_a_rejected_box_has_no_face_not_a_verdict(tmp_path, detector):
    path = tmp_path / "texture.png"
    cv2.imwrite(str(path), haar_fooling_texture())

    result = detector.analyze(path)

    assert result.verdict == "no_face" and result.fake_probability is None
    assert result.faces_count == 0
    assert result.frames[0].boxes_rejected >= 1


def test_a_missing_face_verifier_is_an_error_not_a_pass(monkeypatch, astronaut):
    import sys

    from ml import verify
    from ml.errors import CheckpointError

    verify._blazeface.cache_clear()
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions.face_detection", None)
    try:
        with pytest.raises(CheckpointError, match="mediapipe"):
            confirm_faces(astronaut, find_faces(astronaut))
    finally:
        verify._blazeface.cache_clear()


def test_a_face_blurred_past_its_features_is_too_blurred_to_judge(detector, astronaut):
    box = find_faces(astronaut)[0]

    sharp = detector.crop(astronaut, box)
    blurred = detector.crop(cv2.GaussianBlur(astronaut, (0, 0), 0.075 * box.w), box)  # a re-post's blurred fill

    assert not too_blurred(sharp) and face_detail(sharp) > 3 * MIN_FACE_DETAIL
    assert too_blurred(blurred)


def test_a_small_or_dim_face_is_not_taken_for_a_blurred_one(detector, astronaut):
    small = cv2.resize(astronaut, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)  # a face 44 px wide, blown up
    dim = (astronaut * 0.25).astype(np.uint8)
    compressed = cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], cv2.IMREAD_COLOR)

    for image in (small, dim, compressed):
        box = find_faces(image)[0]
        assert not too_blurred(detector.crop(image, box))


def test_a_photo_of_a_face_too_blurred_to_judge_is_not_scored_whatever_the_verifier(tmp_path, detector, astronaut):
    box = find_faces(astronaut)[0]
    path = tmp_path / "out_of_focus.png"
    cv2.imwrite(str(path), cv2.GaussianBlur(astronaut, (0, 0), 0.075 * box.w))
    assert find_faces(cv2.imread(str(path))), "Haar no longer finds the blurred face: the test shows nothing"

    result = detector.analyze(path, DetectorOptions(verifier="none"))  # BlazeFace, too, would reject it

    assert result.verdict == "no_face" and result.fake_probability is None
    assert result.frames[0].faces == () and result.frames[0].boxes_rejected == 1


def test_the_blur_check_measures_every_models_crop_at_one_size(astronaut):
    box = find_faces(astronaut)[0]
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 0.075 * box.w)

    for size in (64, 160, 224, 299):  # the input sizes of the models made here and of others
        assert not too_blurred(crop_face(astronaut, box, size=size)), size
        assert too_blurred(crop_face(blurred, box, size=size)), size


def test_the_blurred_fill_around_a_re_posted_clip_is_not_taken_for_a_second_face(detector, astronaut):
    box = find_faces(astronaut)[0]
    landscape = np.full((720, 1280, 3), 90, np.uint8)  # a clip with the astronaut near its top
    head = astronaut[box.y - 60 : box.y + box.h + 60, box.x - 60 : box.x + box.w + 60]
    landscape[10:270, 510:770] = cv2.resize(head, (260, 260))
    vertical = vertical_blurred_fill(landscape, 0)  # her face again, enlarged and blurred, above it

    faces, _, rejected = detector.find_confirmed_faces(vertical, DetectorOptions(verifier="none"), search=FINE_SEARCH)

    assert len(faces) == 1 and faces[0].y > 437  # the clip's own face, in the middle band
    assert rejected == 1  # the copy in the fill: Haar finds it, the blur check drops it
