"""A face's heatmap, from the coarse class activation map a model gives (ml/explain.py) to the
PNG shown on the result page. No torch: the CPU worker's runtime (ml/onnx_runtime.py) uses it too.
"""

from __future__ import annotations

import cv2
import numpy as np


def heatmap_of(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A coarse activation map scaled to [0, 1] and resized to `size` (height, width)."""
    cam = cam.astype(np.float32)
    if cam.max() > 0:
        cam = cam / cam.max()
    return cv2.resize(cam, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def overlay_png(crop: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.6) -> bytes:
    """The heatmap in viridis (a perceptually uniform colour map) over the BGR crop, as PNG.

    Each pixel's opacity grows with its heat, from a fifth of `alpha` where the model paid no
    attention to `alpha` where it paid the most, so the face stays visible under the colours.
    The page shows the matching colour bar.
    """
    heat = np.clip(heatmap, 0, 1).astype(np.float32)
    colours = cv2.applyColorMap(np.uint8(heat * 255), cv2.COLORMAP_VIRIDIS).astype(np.float32)
    opacity = (alpha * (0.2 + 0.8 * heat))[..., None]
    blended = np.uint8(np.clip(colours * opacity + crop.astype(np.float32) * (1 - opacity), 0, 255).round())
    ok, encoded = cv2.imencode(".png", blended)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()


# Where in a 3 x 3 grid over the face crop the heat is, as seen on the picture (its left is the
# picture's left, the person's right).
_PLACES = (("top left", "top", "top right"), ("left", "centre", "right"), ("bottom left", "bottom", "bottom right"))
SPREAD_SHARE = 0.45  # heat of half the brightest or more over this share of the crop: "spread"


def heat_focus(heatmap: np.ndarray) -> str:
    """Where a heatmap is brightest, in words, for people who cannot see it (the page's alt
    text): the ninth of the crop with the most heat on average, and whether the heat spreads
    over much of the crop instead of one part. For example "brightest at the top right of the
    face" or "spread over much of the face, brightest at the centre"."""
    heat = np.clip(heatmap.astype(np.float32), 0, 1)
    height, width = heat.shape[:2]
    if heat.size == 0 or float(heat.max()) < 1e-3 or min(height, width) < 3:
        # a face the model found nothing fake in often has no heat at all (the map is zero
        # after Grad-CAM's ReLU): no place to name
        return "no part pushed the score towards fake"
    rows = np.array_split(np.arange(height), 3)
    cols = np.array_split(np.arange(width), 3)
    means = np.array([[heat[np.ix_(r, c)].mean() for c in cols] for r in rows])
    row, col = np.unravel_index(int(means.argmax()), means.shape)
    where = f"brightest at the {_PLACES[row][col]} of the face"
    if float((heat >= 0.5).mean()) >= SPREAD_SHARE:
        return f"spread over much of the face, {where}"
    return where
