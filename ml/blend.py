"""Self-blended fakes: a face blended with an altered copy of itself.

After Self-Blended Images (Shiohara & Yamasaki, CVPR 2022). A real face crop is copied; the copy
is altered in colour (RGB channel shifts, hue and saturation, brightness and contrast) and in
frequency (down-and-up scaling, or sharpening), and moved by a few per cent (scale and shift).
The copy is pasted back over the face through a soft mask. The result keeps the source's
identity and background but carries what face swaps leave behind: a blending boundary, a colour
and sharpness mismatch between the inner face and the rest, and slightly misaligned features.
A classifier trained on these learns those traces rather than one generator's fingerprint.

Masks vary in shape, which the paper's ablation credits with about 10 AUC points. With no
landmarks, shapes are drawn relative to the face box: ellipses over the inner face with random
size, aspect, centre and tilt, and convex hulls of jittered pseudo-landmarks (whole face, inner
features, or a random subset). Each is randomly eroded or dilated, elastically warped, blurred,
cut below a random level, blurred again, and scaled by a random blend ratio.

With landmarks (468 face-mesh points of the crop, see ml/sources.py), masks are face-shaped
instead: the convex hull of all the points, of the inner ones (nearest the face's centre), or of
a random subset, each point jittered, then eroded or dilated, warped and softened like the
others, and finally cut to the face itself (the hull of every landmark, grown by 2 % of the crop),
so a landmark mask never reaches the background.

Pixels where the returned mask is 0 are byte-identical to the source.
"""

from __future__ import annotations

import cv2
import numpy as np

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)

# Where the Haar face box (forehead to chin, cheek to cheek) lies in a tight face crop, as
# fractions of the crop (x0, y0, x1, y1). Median measured on DFDC crops and UTKFace crops: the
# box slightly overflows the crop, most at the top.
TIGHT_CROP_BOX = (-0.04, -0.13, 1.04, 0.95)

# Pseudo-landmarks in face-box coordinates (0..1), standing in for a landmark detector.
_JAW = [(0.5 + 0.41 * np.cos(t), 0.42 + 0.56 * np.sin(t)) for t in np.linspace(0.0, np.pi, 9)]
_BROWS = [(0.20, 0.28), (0.35, 0.24), (0.65, 0.24), (0.80, 0.28)]
_EYES = [(0.25, 0.40), (0.40, 0.40), (0.60, 0.40), (0.75, 0.40)]
_NOSE = [(0.50, 0.45), (0.50, 0.62), (0.40, 0.64), (0.60, 0.64)]
_MOUTH = [(0.35, 0.78), (0.50, 0.74), (0.65, 0.78), (0.50, 0.85)]
_INNER = np.array(_BROWS + _EYES + _NOSE + _MOUTH, dtype=np.float32)
_ALL = np.array(_JAW + _BROWS + _EYES + _NOSE + _MOUTH, dtype=np.float32)


def face_box_in_crop(*, margin: float, shift: float = 0.0) -> tuple[float, float, float, float]:
    """Where the face box lies in a crop cut by `ml.faces.crop_face(margin=, shift=)`, as
    fractions of the crop, for crops away from the frame's edges."""
    half = 0.5 / margin
    cy = 0.5 - shift / margin
    return (0.5 - half, cy - half, 0.5 + half, cy + half)


def self_blend(
    face: np.ndarray,
    rng: np.random.Generator,
    *,
    face_box: tuple[float, float, float, float] = TIGHT_CROP_BOX,
    landmarks: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(blended BGR uint8 of the same shape, mask float32 HxW in [0, 1]) from a face crop.

    `face_box` tells where the face is in the crop (fractions; the default suits tight crops such
    as DFDC or UTKFace faces; use `face_box_in_crop` for crops cut around a Haar box).
    `landmarks`, (N, 2) fractions of the crop, give face-shaped masks.
    """
    if face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 image, got {face.shape} {face.dtype}")
    if landmarks is not None:
        mask = landmark_face_mask(face.shape[:2], rng, landmarks)
    else:
        mask = random_face_mask(face.shape[:2], rng, face_box=face_box)
    target = altered_copy(face, rng, face_box=face_box)
    mask *= np.float32(rng.choice(BLEND_RATIOS))
    mask[mask < 1 / 255] = 0.0
    return blend(face, target, mask), mask


def blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """source x (1 - mask) + target x mask, rounded; exactly the source where mask is 0."""
    out = source.copy()
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return out
    region = np.s_[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    m = mask[region][..., None]
    src = source[region].astype(np.float32)
    mixed = src + (target[region].astype(np.float32) - src) * m
    out[region] = np.where(m > 0, np.clip(mixed + 0.5, 0, 255).astype(np.uint8), source[region])
    return out


# --- the altered copy --------------------------------------------------------------------------


def altered_copy(
    face: np.ndarray,
    rng: np.random.Generator,
    *,
    face_box: tuple[float, float, float, float] = TIGHT_CROP_BOX,
) -> np.ndarray:
    """The face changed in colour (at least one of three changes), often in frequency, and
    moved: scaled by up to 5% around the face centre and shifted by up to 3% of the crop."""
    ops = rng.random(3) < 0.5
    if not ops.any():
        ops[rng.integers(3)] = True
    out = face
    if ops[0] or ops[2]:
        out = _shift_rgb_and_levels(out, rng, rgb=bool(ops[0]), levels=bool(ops[2]))
    if ops[1]:
        out = _shift_hue_saturation(out, rng)
    frequency = rng.random()
    if frequency < 0.3:
        out = _down_up(out, rng)
    elif frequency < 0.6:
        out = _sharpen(out, rng)
    return _jitter_geometry(out, rng, face_box)


def _shift_rgb_and_levels(image: np.ndarray, rng: np.random.Generator, *, rgb: bool, levels: bool) -> np.ndarray:
    """Per-channel offsets (up to 15 levels) and brightness/contrast, through one lookup table."""
    x = np.arange(256, dtype=np.float32)[:, None]
    offsets = rng.uniform(-15, 15, 3) if rgb else np.zeros(3)
    contrast, brightness = (rng.uniform(0.9, 1.1), rng.uniform(-15, 15)) if levels else (1.0, 0.0)
    mean = float(image.mean())
    table = (x - mean) * contrast + mean + brightness + offsets[None, :]
    table = np.clip(table + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(image, table)


def _shift_hue_saturation(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    x = np.arange(256, dtype=np.float32)
    hue = (x + rng.uniform(-6, 6)) % 180  # OpenCV hue runs 0..179, two degrees a step
    saturation = np.clip(x * rng.uniform(0.75, 1.25) + 0.5, 0, 255)
    table = np.stack([hue, saturation, x], axis=1).astype(np.uint8).reshape(256, 1, 3)
    return cv2.cvtColor(cv2.LUT(hsv, table), cv2.COLOR_HSV2BGR)


def _down_up(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lose detail: scale down by 1.5-3x and back up."""
    height, width = image.shape[:2]
    factor = rng.uniform(1.5, 3.0)
    small = cv2.resize(image, (max(1, round(width / factor)), max(1, round(height / factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _sharpen(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unsharp masking: add back a random share of the detail a small blur removes."""
    amount = rng.uniform(0.3, 1.0)
    blurred = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.8, 1.5))
    return cv2.addWeighted(image, 1 + amount, blurred, -amount, 0)


def _jitter_geometry(image: np.ndarray, rng: np.random.Generator, face_box) -> np.ndarray:
    height, width = image.shape[:2]
    x0, y0, x1, y1 = face_box
    centre = ((x0 + x1) / 2 * width, (y0 + y1) / 2 * height)
    matrix = cv2.getRotationMatrix2D(centre, 0.0, rng.uniform(0.95, 1.05))
    matrix[:, 2] += rng.uniform(-0.03, 0.03, 2) * (width, height)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


# --- the mask ----------------------------------------------------------------------------------


def random_face_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    face_box: tuple[float, float, float, float] = TIGHT_CROP_BOX,
) -> np.ndarray:
    """A soft mask (float32, max 1) of random shape over the face, before the blend ratio."""
    height, width = shape
    for _ in range(5):
        hard = _random_shape(shape, rng, face_box)
        hard = _erode_or_dilate(hard, rng)
        hard = _elastic_warp(hard, rng)
        if hard.any():
            break
    else:  # shapes are never all lost in practice; keep a plain ellipse if they are
        hard = _ellipse(shape, _box_pixels(face_box, width, height), rng)
    return _soften(hard.astype(np.float32), rng)


LANDMARK_MARGIN = 0.02  # how far (a share of the crop's side) a landmark mask may pass the face


def face_region(shape: tuple[int, int], landmarks: np.ndarray, *, grow: float = LANDMARK_MARGIN) -> np.ndarray:
    """The face (uint8 0/1): the convex hull of every landmark, grown by `grow` of the side."""
    height, width = shape
    region = _hull_of(shape, np.asarray(landmarks, np.float32) * (width, height))
    size = max(1, round(grow * min(shape))) * 2 + 1
    return cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))


def landmark_face_mask(shape: tuple[int, int], rng: np.random.Generator, landmarks: np.ndarray) -> np.ndarray:
    """A soft, face-shaped mask (float32, max 1) from face-mesh landmarks, inside the face."""
    height, width = shape
    points = np.asarray(landmarks, np.float32) * (width, height)
    centre = points.mean(axis=0)
    spread = float(np.ptp(points[:, 0]) + np.ptp(points[:, 1])) / 2
    kind = rng.random()
    if kind < 0.5:
        chosen = points
    elif kind < 0.8:
        distance = np.linalg.norm(points - centre, axis=1)
        chosen = points[distance <= np.quantile(distance, rng.uniform(0.5, 0.8))]
    else:
        chosen = points[rng.random(len(points)) < 0.5]
        if len(chosen) < 10:
            chosen = points
    jittered = chosen + rng.normal(0, 0.01 * spread, chosen.shape).astype(np.float32)
    hard = _elastic_warp(_erode_or_dilate(_hull_of(shape, jittered), rng), rng)
    region = face_region(shape, landmarks)
    if not (hard & region).any():
        hard = _hull_of(shape, points)
    return _soften(hard.astype(np.float32), rng) * region


def _hull_of(shape: tuple[int, int], pixels: np.ndarray) -> np.ndarray:
    hull = cv2.convexHull(np.asarray(pixels, np.float32))
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
    return mask


def _box_pixels(face_box, width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = face_box
    return x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height


def _random_shape(shape: tuple[int, int], rng: np.random.Generator, face_box) -> np.ndarray:
    height, width = shape
    box = _box_pixels(face_box, width, height)
    kind = rng.random()
    if kind < 0.35:
        return _ellipse(shape, box, rng)
    if kind < 0.6:
        points = _ALL
    elif kind < 0.8:
        points = _INNER
    else:
        points = _ALL[rng.random(len(_ALL)) < 0.6]
        if len(points) < 6:
            points = _ALL
    return _hull(shape, box, points, rng)


def _ellipse(shape: tuple[int, int], box, rng: np.random.Generator) -> np.ndarray:
    """An ellipse over the inner face: centre, semi-axes and tilt jittered."""
    bx, by, bw, bh = box
    centre = (bx + bw * rng.normal(0.5, 0.03), by + bh * rng.uniform(0.55, 0.66))
    axes = (bw * rng.uniform(0.24, 0.42), bh * rng.uniform(0.28, 0.44))
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(
        mask,
        (round(centre[0] * 16), round(centre[1] * 16)),
        (round(axes[0] * 16), round(axes[1] * 16)),
        rng.uniform(-12, 12), 0, 360, 1, thickness=-1, lineType=cv2.LINE_8, shift=4,
    )
    return mask


def _hull(shape: tuple[int, int], box, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The convex hull of pseudo-landmarks, each moved a little."""
    bx, by, bw, bh = box
    jittered = points + rng.normal(0, 0.025, points.shape).astype(np.float32)
    pixels = (jittered * (bw, bh) + (bx, by)).astype(np.float32)
    hull = cv2.convexHull(pixels)
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
    return mask


def _erode_or_dilate(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    choice = rng.random()
    if choice < 0.3:
        return mask
    size = int(rng.integers(3, max(4, round(0.08 * min(mask.shape)))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.erode(mask, kernel) if choice < 0.65 else cv2.dilate(mask, kernel)


def _elastic_warp(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bend the shape with a smooth random displacement field (a coarse grid, upscaled)."""
    height, width = mask.shape
    strength = rng.uniform(0.01, 0.04) * min(height, width)
    grid = rng.normal(0, strength, (2, 4, 4)).astype(np.float32)
    dx = cv2.resize(grid[0], (width, height), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(grid[1], (width, height), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _odd_kernel(rng: np.random.Generator, low: float, high: float, side: int) -> int:
    return int(rng.uniform(low, high) * side) // 2 * 2 + 1


def _soften(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur, cut below a random level (rounding and shrinking the shape), blur again, rescale.

    Two blurs with a cut between give edges from nearly hard to very soft, and a core that is
    fully blended in most masks.
    """
    side = min(mask.shape)
    k1 = _odd_kernel(rng, 0.03, 0.15, side)
    soft = cv2.GaussianBlur(mask, (k1, k1), 0)
    soft[soft < rng.uniform(0.3, 0.95)] = 0.0
    k2 = _odd_kernel(rng, 0.03, 0.15, side)
    soft = cv2.GaussianBlur(soft, (k2, k2), 0)
    peak = float(soft.max())
    if peak <= 0:
        return mask  # the cut removed everything: keep the hard shape
    return np.clip(soft / peak, 0.0, 1.0)
