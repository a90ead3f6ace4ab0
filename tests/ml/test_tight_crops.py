"""Faces that fill the frame (profile pictures, cropped screenshots, face-aligned clips): the
search the detector runs again on a padded copy where a whole frame showed no face."""

import cv2
import numpy as np

import ml.detector
from ml.options import DetectorOptions

from tests.media import write_video


def tight_crop(astronaut, side=256):
    """The astronaut's face cut to her brows and chin, as a profile picture is, `side` px square."""
    return cv2.resize(astronaut[75:175, 180:270], (side, side), interpolation=cv2.INTER_CUBIC)


def padded_searches(monkeypatch) -> list[int]:
    """Counts the padded searches the detector runs from here on (one entry per search)."""
    calls: list[int] = []
    real = ml.detector.find_faces_padded

    def counted(image, **kwargs):
        calls.append(1)
        return real(image, **kwargs)

    monkeypatch.setattr(ml.detector, "find_faces_padded", counted)
    return calls


def test_a_tight_crop_of_a_face_is_judged_where_it_was_no_face(tmp_path, astronaut, detector, monkeypatch):
    path = tmp_path / "profile-picture.png"
    cv2.imwrite(str(path), tight_crop(astronaut))
    options = DetectorOptions(heatmaps=0)
    monkeypatch.setattr(detector, "rotated_retry", False)  # the padded search alone (the turned one finds it too)
    monkeypatch.setattr(detector, "padded_retry", False)
    assert detector.analyze(path, options).verdict == "no_face"  # the plain searches miss it
    monkeypatch.setattr(detector, "padded_retry", True)

    result = detector.analyze(path, options)

    [face] = result.frames[0].faces
    assert result.verdict != "no_face" and result.faces_count == 1
    for box in (face.box, face.crop):  # in the frame, as the result page draws them
        assert box.x >= 0 and box.y >= 0 and box.x + box.w <= 256 and box.y + box.h <= 256
    assert face.box.w >= 200


def test_only_a_photo_in_which_no_face_was_found_is_searched_padded(tmp_path, astronaut, detector, monkeypatch):
    calls = padded_searches(monkeypatch)
    found = tmp_path / "astronaut.png"
    cv2.imwrite(str(found), astronaut)
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((300, 400, 3), 128, np.uint8))

    assert detector.analyze(found, DetectorOptions(heatmaps=0)).faces_count == 1
    assert calls == []  # a face found: no retry
    assert detector.analyze(wall, DetectorOptions(heatmaps=0)).verdict == "no_face"  # and no false face
    assert calls == [1]


def test_a_face_aligned_video_has_its_face_in_every_sampled_frame(tmp_path, astronaut, detector, monkeypatch):
    base = tight_crop(astronaut, side=288)
    frames = [base[4 * step : 4 * step + 256, 16 - 2 * step : 272 - 2 * step].copy() for step in range(8)]  # a little motion
    path = write_video(tmp_path / "aligned.mp4", frames, fps=8)
    options = DetectorOptions(heatmaps=0, full_search_every=4)
    monkeypatch.setattr(detector, "rotated_retry", False)  # the padded search alone
    monkeypatch.setattr(detector, "padded_retry", False)
    before = detector.analyze(path, options)
    monkeypatch.setattr(detector, "padded_retry", True)

    after = detector.analyze(path, options)

    assert sum(1 for f in before.frames if f.faces) < 8
    assert [len(f.faces) for f in after.frames] == [1] * 8
    assert len(after.tracks) == 1 and after.verdict != "no_face"


def test_a_video_whose_faces_are_found_is_never_searched_padded(tmp_path, astronaut, detector, monkeypatch):
    calls = padded_searches(monkeypatch)
    frames = [np.roll(astronaut, 6 * step, axis=1) for step in range(6)]
    path = write_video(tmp_path / "found.mp4", frames, fps=6)

    result = detector.analyze(path, DetectorOptions(heatmaps=0))

    assert [len(f.faces) for f in result.frames] == [1] * 6
    assert calls == []
