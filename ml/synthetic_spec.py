"""The synthetic-face detector's parts that need no torch: its spec, its spectrum features, its
verdicts, and `SyntheticDetector` around whichever runtime scores the crops (ml/synthetic.py
for the model, its training and its torch runtime; ml/onnx_runtime.py for the CPU worker's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .faces import DEFAULT_MARGIN, crop_face
from .spec import IMAGENET_MEAN, IMAGENET_STD, dataclass_from_fields

ARCH = "spectrum-mnv2-logistic"
DEFAULT_SYNTHETIC_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "synthetic.pt"
BACKBONE_BLOCKS = 19  # len(mobilenet_v2().features)

VERDICT_SYNTHETIC = "synthetic"
VERDICT_UNCERTAIN = "uncertain"
VERDICT_REAL = "real"


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything about a synthetic-face model except its weights."""

    input_size: int = 224
    face_margin: float = DEFAULT_MARGIN
    face_shift: float = 0.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    spectrum_bins: int = 48  # 0: no spectrum features
    cnn_stages: tuple[int, ...] = (18,)  # (): no CNN features
    threshold: float = 0.5  # at or above: "synthetic"
    threshold_real: float = 0.5  # below: "real"; in between: "uncertain"
    name: str = "synthetic-face-detector"
    version: str = "untrained"
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.spectrum_bins < 0 or (self.spectrum_bins == 0 and not self.cnn_stages):
            raise ValueError("a synthetic-face model needs spectrum bins, CNN stages, or both")
        if any(not 0 <= s < BACKBONE_BLOCKS for s in self.cnn_stages):
            raise ValueError(f"cnn_stages must be indices 0..{BACKBONE_BLOCKS - 1} of MobileNetV2's features")
        if list(self.cnn_stages) != sorted(set(self.cnn_stages)):
            raise ValueError("cnn_stages must be increasing and distinct")
        if not self.threshold_real <= self.threshold:
            raise ValueError("threshold_real must not exceed threshold")

    @property
    def feature_set(self) -> str:
        parts = [f"spectrum{self.spectrum_bins}"] if self.spectrum_bins else []
        if self.cnn_stages:
            parts.append("mnv2[" + ",".join(map(str, self.cnn_stages)) + "]")
        return "+".join(parts)


def synthetic_spec_from_fields(values: dict[str, Any]) -> SyntheticSpec:
    """A SyntheticSpec from a checkpoint's (or an export's) stored fields."""
    return dataclass_from_fields(SyntheticSpec, values, tuples=("mean", "std", "cnn_stages"))


# ---------------------------------------------------------------------------- features


def radial_spectrum(grey: np.ndarray, bins: int) -> np.ndarray:
    """Azimuthally averaged log power spectrum of a grey image, `bins` values (float32).

    Bin i averages the frequencies whose radius lies in [i, i+1) x 0.5 / bins cycles per pixel,
    so the last bin ends at the Nyquist frequency along the axes (the corners beyond it are left
    out). The image's mean is removed and a Hann window applied first (no DC term, no leakage
    from the borders); the profile's own mean is subtracted at the end, so multiplying the
    image's contrast changes nothing. A flat image gives all zeros.
    """
    if grey.ndim != 2 or min(grey.shape) < 8:
        raise ValueError(f"expected a 2-D grey image of at least 8x8 pixels, got shape {grey.shape}")
    if bins < 1:
        raise ValueError("bins must be at least 1")
    image = grey.astype(np.float64)
    image -= image.mean()
    height, width = image.shape
    image *= np.outer(np.hanning(height), np.hanning(width))
    power = np.abs(np.fft.fft2(image)) ** 2
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    index = np.floor(radius / 0.5 * bins).astype(np.int64)
    inside = index < bins
    sums = np.bincount(index[inside], weights=power[inside], minlength=bins)
    counts = np.bincount(index[inside], minlength=bins)
    mean_power = sums / np.maximum(counts, 1)
    scale = max(float(np.sum(image**2)), 1e-12) * 1e-12  # floor: relative to the image's energy
    profile = np.log(mean_power + scale)
    return (profile - profile.mean()).astype(np.float32)


def spectrum_features(crops: Sequence[np.ndarray], bins: int) -> np.ndarray:
    """`radial_spectrum` of each BGR crop's grey version, shape (len(crops), bins)."""
    return np.stack([radial_spectrum(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), bins) for c in crops])


# A photo's face is called wholly generated only when its crop and two other framings of it (a
# tighter and a looser one) all score at or above the threshold (`SyntheticDetector.views`; the
# lowest score is the face's probability). On frames of real videos this model's score can swing
# from 0.002 to 0.999 between frames a second apart (LivePortrait driving clips d3 and d11), and
# a photo has no other frames to average over. Measured 2026-11-27 (runs/smallfaces, not
# committed) on 12 frames of each real video of ../shared/data scored as photos: 25 of 347 called
# synthetic on the crop alone (7.2 %, against the 5 % target), 13 with the three framings
# (3.7 %); Celeb-DF frames 13 of 478 -> 3; held-out StyleGAN2 faces 13 of 25 -> 10. Six views
# (adding a mirror, a JPEG copy and a smaller copy) gave 11, 2 and 10 for twice the cost; the
# mirror, JPEG and smaller copies without the framings kept 16-19 of the 25 frames. Cost: the
# bench's 1080p photo 132 -> 147 ms (two more crops through the synthetic model). The rule was
# picked looking at these numbers, so they are not an independent test of it (the model card's
# `evaluate-synthetic` numbers are the same sources). Videos keep one crop per scored face:
# their probability is already the mean of 4 faces along the person's track.
VIEW_MARGINS = (1.2, 1.45)  # framed tighter and looser than the model's own margin (1.3)


class SyntheticDetector:
    """A loaded synthetic-face model: crops faces its way, scores crops, names verdicts.

    `model` is the torch `ml.synthetic.SyntheticFaceModel` or its ONNX export
    (`ml.onnx_runtime.OnnxSyntheticModel`): anything with a `spec` and `probabilities(crops)`."""

    def __init__(self, model, *, version: str):
        self.model = model
        self.spec = model.spec
        self.version = version

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def thresholds(self) -> tuple[float, float]:
        """(threshold_real, threshold): below the first "real", at or above the second "synthetic"."""
        return self.spec.threshold_real, self.spec.threshold

    def crop(self, image: np.ndarray, box) -> np.ndarray:
        """The crop this model expects for a face box found by `faces.find_faces`."""
        return crop_face(
            image, box, size=self.spec.input_size, margin=self.spec.face_margin, shift=self.spec.face_shift
        )

    def views(self, image: np.ndarray, box) -> list[np.ndarray]:
        """The face's crop (first), then the same face framed tighter and looser (VIEW_MARGINS):
        a photo is scored on all three, see VIEW_MARGINS' comment."""
        size, shift = self.spec.input_size, self.spec.face_shift
        return [self.crop(image, box), *(crop_face(image, box, size=size, margin=m, shift=shift) for m in VIEW_MARGINS)]

    def score(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Probability that each face crop (BGR uint8, `input_size` square) is wholly generated;
        float64 array of shape (len(crops),), values in [0, 1]."""
        return self.model.probabilities(list(crops))

    def score_faces(self, image: np.ndarray, boxes: Sequence) -> np.ndarray:
        """`score` of the crops this model cuts for `boxes` in a BGR frame."""
        return self.score([self.crop(image, box) for box in boxes])

    def score_photo_faces(self, image: np.ndarray, boxes: Sequence) -> np.ndarray:
        """Each face's probability as a photo's: the lowest over its `views`."""
        groups = [self.views(image, box) for box in boxes]
        scores = self.score([view for group in groups for view in group])
        return scores.reshape(len(groups), -1).min(axis=1) if groups else scores

    def verdict(self, probability: float) -> str:
        return synthetic_verdict(probability, threshold_real=self.spec.threshold_real, threshold=self.spec.threshold)


def synthetic_verdict(probability: float, *, threshold_real: float, threshold: float) -> str:
    """"synthetic" at or above `threshold`, "real" below `threshold_real`, else "uncertain"."""
    if probability >= threshold:
        return VERDICT_SYNTHETIC
    if probability < threshold_real:
        return VERDICT_REAL
    return VERDICT_UNCERTAIN
