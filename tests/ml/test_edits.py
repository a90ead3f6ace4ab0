"""The re-post edits of `check-degradation --edits` (ml/edits.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml.edits import EDITS, LANDSCAPE, VERTICAL, blurred_fill, captioned, graded, mirrored
from tests.media import astronaut_bgr


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def _detail(image: np.ndarray) -> float:
    """How much the picture holds at scales under about 10 px: what a blur takes away."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    return float(np.std(grey - cv2.GaussianBlur(grey, (0, 0), sigmaX=5)))


def test_a_landscape_clip_turned_vertical_sits_whole_in_the_middle_of_a_blurred_copy_of_itself():
    frame = cv2.resize(astronaut_bgr(), (640, 360))

    canvas = blurred_fill(frame, *VERTICAL)

    assert canvas.shape == (1280, 720, 3)
    top = (1280 - 405) // 2
    middle = canvas[top : top + 405]
    assert _difference(middle, cv2.resize(frame, (720, 405), interpolation=cv2.INTER_LINEAR)) < 2
    enlarged = cv2.resize(frame, (2276, 1280))[:, 778:1498]  # the picture covering the canvas
    for rows in (slice(0, top), slice(top + 405, 1280)):  # the fill: that picture, soft and darker
        bar = canvas[rows]
        assert abs(bar.mean() - 0.7 * enlarged[rows].mean()) < 3
        assert _detail(bar) < 0.1 * _detail(enlarged[rows])


def test_a_square_clip_turned_landscape_has_its_blurred_fill_at_the_sides():
    frame = cv2.resize(astronaut_bgr(), (256, 256))

    canvas = EDITS["landscape_blurred_fill"](frame, 0)

    assert canvas.shape == (720, 1280, 3)
    assert _difference(canvas[:, 280:1000], cv2.resize(frame, (720, 720), interpolation=cv2.INTER_LINEAR)) < 2
    enlarged = cv2.resize(frame, (1280, 1280))[280:1000]  # the picture covering the canvas
    assert abs(canvas[:, :280].mean() - 0.7 * enlarged[:, :280].mean()) < 3
    assert _detail(canvas[:, :280]) < 0.1 * _detail(enlarged[:, :280])


def test_a_mirrored_frame_is_the_frame_left_to_right():
    frame = astronaut_bgr()

    flipped = mirrored(frame, 7)

    assert np.array_equal(flipped, cv2.flip(frame, 1)) and flipped.flags.c_contiguous


def test_a_caption_is_written_near_the_bottom_and_changes_over_time():
    frame = np.full((360, 640, 3), 128, np.uint8)

    first, same, later = captioned(frame, 0), captioned(frame, 39), captioned(frame, 40)

    changed = np.abs(first.astype(int) - frame.astype(int)).sum(axis=2) > 0
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.min() > 360 * 0.7 and rows.max() < 360  # only near the bottom
    assert (first == 255).all(axis=2).any() and (first == 0).all(axis=2).any()  # white on a black outline
    assert np.array_equal(first, same) and not np.array_equal(first, later)
    assert np.array_equal(frame, np.full((360, 640, 3), 128, np.uint8))  # the frame itself untouched


def test_a_colour_graded_frame_is_warmer_more_saturated_more_contrasted_and_still_the_same_picture():
    frame = astronaut_bgr()

    out = graded(frame, 0)

    saturation = lambda image: cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[..., 1].mean()
    assert saturation(out) > 1.1 * saturation(frame)
    blue, _, red = (out.astype(float) - frame.astype(float)).reshape(-1, 3).mean(axis=0)
    assert red > blue
    grey = lambda image: cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(float).ravel()
    assert np.corrcoef(grey(out), grey(frame))[0, 1] > 0.95
    assert grey(out).std() > 1.1 * grey(frame).std()  # the filter's contrast, not the tint alone


@pytest.mark.parametrize("name", sorted(EDITS))
def test_every_edit_keeps_a_frame_a_bgr_picture_and_leaves_the_original_alone(name):
    frame = cv2.resize(astronaut_bgr(), (320, 240))
    before = frame.copy()

    out = EDITS[name](frame, 3)

    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert out.shape[:2] in {(240, 320), (VERTICAL[1], VERTICAL[0]), (LANDSCAPE[1], LANDSCAPE[0])}
    assert np.array_equal(frame, before)
