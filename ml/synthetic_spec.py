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

    def score(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Probability that each face crop (BGR uint8, `input_size` square) is wholly generated;
        float64 array of shape (len(crops),), values in [0, 1]."""
        return self.model.probabilities(list(crops))

    def score_faces(self, image: np.ndarray, boxes: Sequence) -> np.ndarray:
        """`score` of the crops this model cuts for `boxes` in a BGR frame."""
        return self.score([self.crop(image, box) for box in boxes])

    def verdict(self, probability: float) -> str:
        return synthetic_verdict(probability, threshold_real=self.spec.threshold_real, threshold=self.spec.threshold)


def synthetic_verdict(probability: float, *, threshold_real: float, threshold: float) -> str:
    """"synthetic" at or above `threshold`, "real" below `threshold_real`, else "uncertain"."""
    if probability >= threshold:
        return VERDICT_SYNTHETIC
    if probability < threshold_real:
        return VERDICT_REAL
    return VERDICT_UNCERTAIN
