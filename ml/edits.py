"""What a re-post does to a video's picture besides re-encoding it (ml/degradation.py).

A clip passed around social media and news sites is rarely only scaled and compressed again: a
landscape clip is posted as a phone's vertical video with a blurred, enlarged copy of itself
filling the bars, a vertical clip the other way round; it is mirrored, captioned and colour
graded. The blurred fill is the one that worries: it holds a second, soft, enlarged copy of
every face, and a soft face is what the face-swap model's training fakes looked like. Each edit
here is one such change, made the plain way an editing app makes it; `check-degradation --edits`
re-encodes the labelled videos with each and counts how the verdicts move (the model card's
"A video shared around").

Every edit takes a BGR frame and its index in the video and returns a new BGR frame.
"""

from __future__ import annotations

import cv2
import numpy as np

VERTICAL = (720, 1280)  # (width, height) of a phone's vertical video at 720p
LANDSCAPE = (1280, 720)
FILL_BLUR = 1 / 40  # the fill's blur (Gaussian sigma) in widths of the canvas
FILL_DIMMED = 0.7  # the fill darkened to this share, so the clip stands out as apps make it
CAPTIONS = ("BREAKING: officials respond", "watch until the end", "what he said next")
CAPTION_EVERY = 40  # frames each caption stays up


def _fitted(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """`frame` scaled to lie inside width x height, its shape kept."""
    scale = min(width / frame.shape[1], height / frame.shape[0])
    size = (max(2, round(frame.shape[1] * scale)), max(2, round(frame.shape[0] * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _blurred_cover(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """`frame` enlarged to cover width x height (the middle kept), blurred and dimmed. Blurred
    at an eighth of the size and scaled back: the same look as a blur at full size, at a
    fraction of its cost on 1000-frame clips."""
    scale = max(width / frame.shape[1], height / frame.shape[0])
    big = cv2.resize(frame, (max(width, round(frame.shape[1] * scale)), max(height, round(frame.shape[0] * scale))))
    top, left = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    small = cv2.resize(big[top : top + height, left : left + width], (width // 8, height // 8), interpolation=cv2.INTER_AREA)
    soft = cv2.GaussianBlur(small, (0, 0), sigmaX=width * FILL_BLUR / 8)
    return (cv2.resize(soft, (width, height), interpolation=cv2.INTER_LINEAR) * FILL_DIMMED).astype(np.uint8)


def blurred_fill(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """`frame` whole in the middle of a width x height canvas filled with a blurred copy of it."""
    canvas = _blurred_cover(frame, width, height)
    clip = _fitted(frame, width, height)
    top, left = (height - clip.shape[0]) // 2, (width - clip.shape[1]) // 2
    canvas[top : top + clip.shape[0], left : left + clip.shape[1]] = clip
    return canvas


def vertical_blurred_fill(frame: np.ndarray, index: int) -> np.ndarray:
    return blurred_fill(frame, *VERTICAL)


def landscape_blurred_fill(frame: np.ndarray, index: int) -> np.ndarray:
    return blurred_fill(frame, *LANDSCAPE)


def mirrored(frame: np.ndarray, index: int) -> np.ndarray:
    return np.ascontiguousarray(frame[:, ::-1])


def captioned(frame: np.ndarray, index: int) -> np.ndarray:
    """White text with a black outline near the bottom, a new line every CAPTION_EVERY frames."""
    out = frame.copy()
    height, width = out.shape[:2]
    text = CAPTIONS[(index // CAPTION_EVERY) % len(CAPTIONS)]
    scale = width / 700
    thickness = max(1, round(scale * 2))
    (text_width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    origin = ((width - text_width) // 2, height - round(height * 0.08))
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness * 3, cv2.LINE_AA)
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def graded(frame: np.ndarray, index: int) -> np.ndarray:
    """A filter's look: more contrast, a little brighter, more saturated, warmer."""
    contrasted = np.clip((frame.astype(np.float32) - 128) * 1.25 + 136, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(contrasted, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 1] *= 1.35
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    out[..., 2] += 12  # red up
    out[..., 0] -= 10  # blue down
    return np.clip(out, 0, 255).astype(np.uint8)


EDITS = {
    "vertical_blurred_fill": vertical_blurred_fill,
    "landscape_blurred_fill": landscape_blurred_fill,
    "mirrored": mirrored,
    "captioned": captioned,
    "graded": graded,
}
