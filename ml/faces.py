"""Face finding with OpenCV's Haar cascade, and face crops for the classifier.

Policy: the cascade searches a grey, histogram-equalised copy of the frame scaled down so its
longer side is at most `search_size` px (full-resolution Haar on 1080p costs 300-500 ms here,
about 30 ms at 640 px). The smallest face searched for follows the frame size (a fraction of the
shorter side, never under the cascade's 24 px window), so small faces in large frames are not
lost to the downscale. Boxes come back in the original frame's coordinates, largest first, at
most `max_faces` of them.

A crop is the face box enlarged `margin` times around its centre (1.3, as FaceForensics++ does),
clamped to the frame, resized to the model's square input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from functools import lru_cache

import cv2
import numpy as np

from .results import Box

CASCADE_FILE = "haarcascade_frontalface_default.xml"
DEFAULT_MARGIN = 1.3
DEFAULT_MAX_FACES = 4


@dataclass(frozen=True)
class FaceSearch:
    """How faces are searched for. Defaults measured on this project's media."""

    search_size: int = 640  # longer side of the downscaled copy
    min_face_fraction: float = 0.08  # of the shorter side of the downscaled copy
    scale_factor: float = 1.1
    min_neighbors: int = 5


@lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_FILE)
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load {CASCADE_FILE}; is opencv-python-headless 4.x installed?")
    return cascade


def find_faces(
    image: np.ndarray, *, max_faces: int = DEFAULT_MAX_FACES, search: FaceSearch = FaceSearch()
) -> list[Box]:
    """Face boxes in a BGR (or grey) frame, largest first, in the frame's own coordinates."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    height, width = grey.shape[:2]
    scale = min(1.0, search.search_size / max(height, width))
    if scale < 1.0:
        grey = cv2.resize(grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    min_side = max(24, round(min(grey.shape[:2]) * search.min_face_fraction))
    found = _cascade().detectMultiScale(
        grey,
        scaleFactor=search.scale_factor,
        minNeighbors=search.min_neighbors,
        minSize=(min_side, min_side),
    )
    boxes = [
        Box(round(x / scale), round(y / scale), round(w / scale), round(h / scale))
        for (x, y, w, h) in (found if len(found) else [])
    ]
    boxes.sort(key=lambda b: b.w * b.h, reverse=True)
    return boxes[:max_faces]


def crop_box(
    box: Box, frame_width: int, frame_height: int, margin: float = DEFAULT_MARGIN, shift: float = 0.0
) -> Box:
    """The box enlarged `margin` times around its centre (moved down by `shift` box heights),
    clamped to the frame."""
    cx, cy = box.x + box.w / 2, box.y + box.h / 2 + shift * box.h
    half_w, half_h = box.w * margin / 2, box.h * margin / 2
    x0 = max(0, int(round(cx - half_w)))
    y0 = max(0, int(round(cy - half_h)))
    x1 = min(frame_width, int(round(cx + half_w)))
    y1 = min(frame_height, int(round(cy + half_h)))
    return Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def crop_face(
    image: np.ndarray, box: Box, *, size: int, margin: float = DEFAULT_MARGIN, shift: float = 0.0
) -> np.ndarray:
    """The face crop (BGR uint8, size x size) the classifier sees for this box."""
    height, width = image.shape[:2]
    c = crop_box(box, width, height, margin, shift)
    return resize_square(image[c.y : c.y + c.h, c.x : c.x + c.w], size)


def read_crop(path: Path) -> np.ndarray:
    """A stored face crop as BGR, read the same way in training and evaluation."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read {path}")
    return image


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """A crop at the model's square input size (area-averaged when shrinking)."""
    if image.shape[:2] == (size, size):
        return image
    interpolation = cv2.INTER_AREA if min(image.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)
