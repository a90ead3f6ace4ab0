"""The heatmap overlay stored for the result page."""

from __future__ import annotations

import cv2
import numpy as np

from ml.explain import overlay_png
from ml.heatmaps import heat_focus


def decoded(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def left_cold_right_hot(side: int = 64) -> np.ndarray:
    return np.tile(np.linspace(0, 1, side, dtype=np.float32), (side, 1))


def test_the_face_stays_visible_where_the_model_did_not_look():
    crop = np.full((64, 64, 3), 200, np.uint8)
    image = decoded(overlay_png(crop, left_cold_right_hot()))
    assert image.shape == crop.shape
    # A cold pixel is mostly the crop (viridis' dark purple at low opacity), not painted over.
    assert np.abs(image[:, 0].astype(int) - 200).max() < 40


def test_the_hottest_parts_are_painted_in_viridis_yellow():
    crop = np.zeros((64, 64, 3), np.uint8)
    image = decoded(overlay_png(crop, left_cold_right_hot()))
    blue, green, red = image[32, -1].astype(int)
    # Viridis ends in yellow (red and green high, blue low), unlike jet's dark red.
    assert green > blue and red > blue and green > 80


def test_where_a_heatmap_is_brightest_is_said_in_words_as_seen_on_the_picture():
    top_right = np.zeros((224, 224), np.float32)
    top_right[10:60, 170:220] = 1.0
    mouth = np.zeros((224, 224), np.float32)
    mouth[160:200, 80:140] = 1.0

    assert heat_focus(top_right) == "brightest at the top right of the face"
    assert heat_focus(mouth) == "brightest at the bottom of the face"


def test_heat_over_most_of_the_face_is_called_spread():
    broad = np.full((224, 224), 0.7, np.float32)
    broad[80:150, 80:150] = 1.0

    assert heat_focus(broad) == "spread over much of the face, brightest at the centre of the face"


def test_a_heatmap_without_heat_names_no_place():
    """A confidently real face often gives an all-zero map: "top left" would be made up."""
    assert heat_focus(np.zeros((224, 224), np.float32)) == "no part pushed the score towards fake"
