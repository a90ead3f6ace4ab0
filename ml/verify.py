"""Confirming Haar boxes as faces before they are scored.

Haar's frontal-face cascade fires on faces, but also on flowers, table edges and hands; a box
that is not a face must never be scored, shown as a face or allowed to decide a verdict. Each
Haar box is therefore checked by a second, independent detector:

- `blazeface` (the default): MediaPipe's short-range BlazeFace model (it ships inside the
  `mediapipe==0.10.14` wheel, so nothing is downloaded) runs on a square region around the box,
  twice the box's size; the box is confirmed when BlazeFace finds a face whose centre lies inside
  the Haar box and whose size is within a factor of two of it. A box from the search of a turned
  copy (a tilted head, ml/faces.py) must hold the whole face (at most 1.25 times its width) and
  BlazeFace must score it 0.75 or more (TURNED_FACE_MOST, TURNED_MIN_SCORE).
- `eyes`: OpenCV's own eye cascade must find at least one eye in the upper half of the box
  (equalised, 120 px wide). Cheaper, no extra dependency, weaker on small or turned faces.
- `none`: every Haar box is accepted (for measurements only).

A confirmed face is also left unscored when its crop, as the model would see it, is too blurred to
judge (`too_blurred`, whatever the verifier): see MIN_FACE_DETAIL.

Measured on a hand-labelled set of Haar boxes (`python -m ml check-faces`, numbers in
ml/weights/MODEL_CARD.md).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

from .errors import CheckpointError
from .faces import TurnedBox
from .results import Box

VERIFIERS = ("blazeface", "eyes", "none")
DEFAULT_VERIFIER = "blazeface"
BLAZEFACE_MIN_SCORE = 0.5
# A box from the turned search (ml/faces.py, `find_faces_rotated`) is the bounding box of a tilted
# face's box, so it holds the whole face: BlazeFace's face in it may be at most TURNED_FACE_MOST
# times its width (not 2), which drops a box on a chin, a cheek or half a face; and BlazeFace
# must be surer of it (TURNED_MIN_SCORE, not BLAZEFACE_MIN_SCORE). Measured 2026-11-27
# (runs/rotated/frames_found.py and face_free.py, not committed) on what the turned search finds
# where no other search confirmed a face (ROTATIONS, 15 then 30 degrees), confirmed by the rule
# for upright boxes -> by this one:
#   52 sampled frames of ../shared/data/videos (51 hold a tilted head)     51 -> 51
#   527 face-free pictures (scikit-image's, whole, cut, turned, at 1080p;  1 -> 0
#   230 Haar boxes)
# The two values were not varied again (chosen by an earlier, unrecorded measurement).
TURNED_FACE_MOST = 1.25
TURNED_MIN_SCORE = 0.75
# A face too blurred to show its features is not judged: the face-swap model learned from DFDC,
# whose fakes are softer than its reals, so its score on a face blurred past recognition says
# nothing about a swap, and such a face is rarely the person the file is about. The case met: a
# clip re-posted as a vertical video with a blurred, enlarged copy of itself filling the bars
# (ml/edits.py) shows each face a second time, blurred; on the DFDC fake
# `dfdc_abqwwspghj` that copy was confirmed in 27 of 32 sampled frames and counted as a second
# person (0.69). Detail is the spread of the crop's grey levels between two blurs (sigma 1.5
# and 6 px of the model's 224 px crop, the middle three quarters), over the spread of the
# coarser one, so a dim or flat face is not taken for a blurred one. Measured 2026-11-27
# (runs/edits/band_*.py, not committed), the faces the model scored:
#   those 27 blurred copies                                                     0.043-0.077
#   1,409 faces: the 31 videos of ../shared/data, 121 Celeb-DF, 300 DFDC crops  lowest 0.1 %: 0.139
#     (real and fake) and 22 small DFDC crops (70-140 px)
#   the 31 videos at 360p CRF 33 (966 faces), 240p CRF 38 (936)                 lowest 0.099, 0.119
#     (the 0.099: a DFDC fake's face 43 px wide)
# The threshold lies between the blurred copies and the softest whole face of unedited footage
# in those sets; a face under it is counted with the boxes rejected. Run over everything at
# hand (runs/edits/gate_count.py), it stopped none of the 5,899 faces of those 31 videos as
# uploaded and in their five re-encodings (ml/degradation.py), and 2 of the 6,067 faces
# confirmed in 6,343 photos (UTKFace, Celeb-DF, FFHQ, inswapper, StyleGAN2, 2,000 DFDC crops,
# the frames): a second box on a Celeb-DF face (0.052; verdict unchanged) and a box on the
# cheek of a DFDC fake crop (0.085), after which the padded search found the whole face
# (uncertain 0.58 -> fake 1.00).
MIN_FACE_DETAIL = 0.09
_DETAIL_BLURS = (1.5, 6.0)
_DETAIL_SIZE = 224  # the crop is measured at this size, whatever the model's input size

_REGION_SCALE = 2.0  # the region BlazeFace sees: the box enlarged this many times
_REGION_SIZE = 256

_lock = threading.Lock()


@contextlib.contextmanager
def _quiet_native_logs():
    """MediaPipe's C++ side prints start-up chatter (TFLite delegate, absl) straight to file
    descriptor 2 while a graph is built and first run; hide it there, and only there."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@lru_cache(maxsize=1)
def _blazeface():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # protobuf deprecation notices
            from mediapipe.python.solutions.face_detection import FaceDetection
    except ImportError as exc:  # a broken install must not quietly accept every box
        raise CheckpointError(
            "the face verifier needs mediapipe 0.10.14 (`make install` installs it with --no-deps)"
        ) from exc
    with _quiet_native_logs():
        detector = FaceDetection(model_selection=0, min_detection_confidence=BLAZEFACE_MIN_SCORE)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            detector.process(np.zeros((_REGION_SIZE, _REGION_SIZE, 3), np.uint8))  # the first run logs too
    return detector


@lru_cache(maxsize=1)
def _eye_cascade() -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_eye_tree_eyeglasses.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV could not load its eye cascade")
    return cascade


def _region(image: np.ndarray, box: Box) -> tuple[np.ndarray, float, float, float]:
    """A square region around the box (padded with black outside the frame), resized to
    _REGION_SIZE; returns it with its top-left corner and scale in frame coordinates."""
    side = max(box.w, box.h) * _REGION_SCALE
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = int(round(side))
    height, width = image.shape[:2]
    region = np.zeros((s, s, 3), np.uint8)
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(width, x0 + s), min(height, y0 + s)
    if fx1 > fx0 and fy1 > fy0:
        region[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] = image[fy0:fy1, fx0:fx1]
    scale = s / _REGION_SIZE
    return cv2.resize(region, (_REGION_SIZE, _REGION_SIZE), interpolation=cv2.INTER_AREA), x0, y0, scale


def blazeface_confirms(image: np.ndarray, box: Box, *, most: float = 2.0, min_score: float = BLAZEFACE_MIN_SCORE) -> bool:
    """Whether BlazeFace finds a face centred in the box, from half to `most` times its width,
    at a score of at least `min_score`."""
    region, x0, y0, scale = _region(image, box)
    with _lock, warnings.catch_warnings():  # the MediaPipe graph is not safe to share between threads
        warnings.simplefilter("ignore", UserWarning)  # protobuf deprecation notice on every call
        found = _blazeface().process(cv2.cvtColor(region, cv2.COLOR_BGR2RGB))
    for detection in found.detections or ():
        rel = detection.location_data.relative_bounding_box
        w = rel.width * _REGION_SIZE * scale
        cx = x0 + (rel.xmin + rel.width / 2) * _REGION_SIZE * scale
        cy = y0 + (rel.ymin + rel.height / 2) * _REGION_SIZE * scale
        inside = box.x <= cx <= box.x + box.w and box.y <= cy <= box.y + box.h
        if inside and 0.5 <= w / box.w <= most and detection.score[0] >= min_score:
            return True
    return False


def eyes_confirm(image: np.ndarray, box: Box) -> bool:
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    top = grey[max(0, box.y) : max(0, box.y) + box.h // 2 + box.h // 10, max(0, box.x) : max(0, box.x) + box.w]
    if top.size == 0:
        return False
    scale = 120 / top.shape[1]
    top = cv2.equalizeHist(cv2.resize(top, (120, max(1, round(top.shape[0] * scale))), interpolation=cv2.INTER_AREA))
    eyes = _eye_cascade().detectMultiScale(top, scaleFactor=1.1, minNeighbors=3, minSize=(12, 12), maxSize=(60, 60))
    return len(eyes) > 0


def face_detail(crop: np.ndarray) -> float:
    """How much of a face crop's contrast lies in its fine features (see MIN_FACE_DETAIL), the
    crop scaled to 224 px first: the blurs are in pixels, so a model with another input size
    would otherwise be gated at another blur."""
    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    if grey.shape[:2] != (_DETAIL_SIZE, _DETAIL_SIZE):
        grey = cv2.resize(grey, (_DETAIL_SIZE, _DETAIL_SIZE), interpolation=cv2.INTER_AREA if grey.shape[0] > _DETAIL_SIZE else cv2.INTER_LINEAR)
    grey = grey.astype(np.float32)
    fine, coarse = (cv2.GaussianBlur(grey, (0, 0), sigma) for sigma in _DETAIL_BLURS)
    height, width = grey.shape
    middle = (slice(height // 8, height - height // 8), slice(width // 8, width - width // 8))
    return float(np.std((fine - coarse)[middle]) / (np.std(coarse[middle]) + 1.0))


def too_blurred(crop: np.ndarray) -> bool:
    """Whether a face crop (the model's framing and size) is too blurred to judge."""
    return face_detail(crop) < MIN_FACE_DETAIL


def confirm_faces(image: np.ndarray, boxes: Sequence[Box], *, verifier: str = DEFAULT_VERIFIER) -> list[bool]:
    """For each Haar box, whether the verifier confirms it is a face. A box from the search of a
    turned copy (a TurnedBox, ml/faces.py) is held by BlazeFace to TURNED_FACE_MOST and TURNED_MIN_SCORE (the `eyes` check looks at such a box as it lies,
    tilted, and rarely confirms it; `none`, for measuring only, accepts it as any other)."""
    if verifier not in VERIFIERS:
        raise ValueError(f"unknown face verifier {verifier!r}; choose from {', '.join(VERIFIERS)}")
    if verifier == "none":
        return [True] * len(boxes)
    if verifier == "eyes":
        return [eyes_confirm(image, box) for box in boxes]
    held = {"most": TURNED_FACE_MOST, "min_score": TURNED_MIN_SCORE}
    return [blazeface_confirms(image, box, **(held if isinstance(box, TurnedBox) else {})) for box in boxes]
