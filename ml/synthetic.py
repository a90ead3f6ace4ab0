"""The synthetic-face detector: is this face wholly generated (nobody ever looked like this)?

A second detector beside the face-swap model (`ml.model`). It answers a different question, so it
has its own checkpoint (`weights/synthetic.pt`) and its own model card. It scores one face crop,
cut exactly as the face-swap detector cuts its crops (Haar box from `faces.find_faces`, enlarged
`face_margin` times around its centre by `faces.crop_face`), at its own input size.

The model is small on purpose (it is trained on a few hundred images): a logistic regression
over two kinds of features, either or both, standardised with statistics from the training set:

- the azimuthally averaged log power spectrum of the grey crop (`radial_spectrum`): generators
  up-sample, and up-sampling leaves periodic traces and a high-frequency fall-off of its own;
- global-average-pooled activations of a frozen ImageNet MobileNetV2 at chosen blocks
  (`cnn_stages`, indices into MobileNetV2's `features`, ml/nets.py).

Verdict policy for one face (thresholds chosen on validation, stored in the checkpoint):
probability >= `threshold` -> "synthetic"; < `threshold_real` -> "real"; in between ->
"uncertain". `threshold` keeps at most 5 % of validation real photos from being called
synthetic; `threshold_real` keeps at most 5 % of validation synthetic faces from being called real.

The checkpoint is a `deepfake-detector/1` dict with `task = "synthetic"`, read with
`torch.load(weights_only=True)`: backbone weights in fp16 (training used the same fp16-rounded
weights, so scores do not move when they are stored), head and feature statistics in fp32.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from .errors import CheckpointError
from .faces import DEFAULT_MARGIN, crop_face
from .model import (
    FORMAT,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TASK_SYNTHETIC,
    scoring_precision,
    imagenet_weights_path,
    inference_batch_size,
    read_checkpoint_file,
    select_device,
)
from .nets import MobileNetV2

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


def imagenet_backbone() -> nn.Sequential:
    """MobileNetV2's convolutional part with the ImageNet weights, rounded to fp16 precision.

    The rounding makes the features computed in training exactly those of the shipped
    checkpoint, whose backbone is stored in fp16. Training-only: needs `make train-deps`.
    """
    model = MobileNetV2()
    model.load_state_dict(torch.load(imagenet_weights_path("mobilenet_v2"), map_location="cpu", weights_only=True))
    return round_to_fp16_(model.features).eval()


def round_to_fp16_(module: nn.Module) -> nn.Module:
    """Round every floating-point weight and buffer to the nearest fp16 value, in place."""
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return module


@lru_cache(maxsize=1)
def _block_channels() -> tuple[int, ...]:
    """Output channels of each block of MobileNetV2's `features`."""
    return tuple(
        [m for m in block.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        for block in MobileNetV2().features
    )


def stage_channels(stages: Sequence[int]) -> int:
    """How many pooled values the blocks `stages` give (their output channels, summed)."""
    return sum(_block_channels()[index] for index in stages)


class SyntheticFaceModel(nn.Module):
    """Features of a face crop, standardised, into one logit (positive: synthetic)."""

    def __init__(self, spec: SyntheticSpec, backbone: nn.Sequential | None = None):
        super().__init__()
        self.spec = spec
        if spec.cnn_stages:
            if backbone is None:
                backbone = MobileNetV2().features
            self.backbone = backbone[: max(spec.cnn_stages) + 1]
        else:
            self.backbone = None
        dim = spec.spectrum_bins + stage_channels(spec.cnn_stages)
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_std", torch.ones(dim))
        self.head = nn.Linear(dim, 1)

    @property
    def dim(self) -> int:
        return self.head.in_features

    def _check(self, crops: Sequence[np.ndarray]) -> None:
        size = self.spec.input_size
        for crop in crops:
            if crop.shape != (size, size, 3) or crop.dtype != np.uint8:
                raise ValueError(
                    f"expected {size}x{size}x3 uint8 BGR face crops (cut with SyntheticDetector.crop), "
                    f"got {crop.shape} {crop.dtype}"
                )

    @torch.inference_mode()
    def features(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """Raw (unstandardised) features, float32, shape (len(crops), dim)."""
        self._check(crops)
        if not crops:
            return torch.zeros(0, self.dim)
        parts = []
        if self.spec.spectrum_bins:
            parts.append(torch.from_numpy(spectrum_features(crops, self.spec.spectrum_bins)))
        if self.backbone is not None:
            device = self.feature_mean.device
            batch = torch.from_numpy(np.stack(crops)[..., ::-1].copy()).permute(0, 3, 1, 2).float().div_(255.0)
            mean = torch.tensor(self.spec.mean).view(1, 3, 1, 1)
            std = torch.tensor(self.spec.std).view(1, 3, 1, 1)
            x = ((batch - mean) / std).to(device)
            pooled = []
            with scoring_precision(device):
                for index, block in enumerate(self.backbone):
                    x = block(x)
                    if index in self.spec.cnn_stages:
                        pooled.append(x.mean(dim=(2, 3)).float().cpu())
            parts.append(torch.cat(pooled, dim=1))
        return torch.cat(parts, dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits, shape (N,), from raw features."""
        x = (features.to(self.feature_mean.device) - self.feature_mean) / self.feature_std
        return self.head(x).squeeze(1)


def _read_checkpoint(path: Path) -> dict:
    data = read_checkpoint_file(path, what="synthetic-face checkpoint")
    if data.get("task") != TASK_SYNTHETIC or data.get("arch") != ARCH:
        raise CheckpointError(
            f"{path} holds a {data.get('task', 'face_swap')} model ({data.get('arch')}), not a synthetic-face one"
        )
    return data


def save_synthetic_checkpoint(model: SyntheticFaceModel, path: str | Path, **overrides: Any) -> Path:
    """Write the model; `overrides` replace fields of its spec (e.g. version=...). The backbone
    is stored in fp16, everything else in fp32."""
    spec = replace(model.spec, **overrides)
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if key.startswith("backbone.") and value.is_floating_point():
            value = value.half()
        state[key] = value.contiguous()
    meta = asdict(spec)
    for key in ("mean", "std", "cnn_stages"):
        meta[key] = list(meta[key])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "task": TASK_SYNTHETIC, "arch": ARCH, **meta, "state_dict": state}, tmp)
    tmp.replace(path)
    return path


def load_synthetic_model(path: str | Path, *, device: str | None = None) -> SyntheticFaceModel:
    """The model (eval mode, on `device`) from a synthetic-face checkpoint."""
    data = _read_checkpoint(Path(path))
    values = {f.name: data[f.name] for f in fields(SyntheticSpec) if f.name in data}
    for key in ("mean", "std", "cnn_stages"):
        if key in values:
            values[key] = tuple(values[key])
    model = SyntheticFaceModel(SyntheticSpec(**values))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in data["state_dict"].items()}
    model.load_state_dict(state)
    return model.eval().to(select_device(device))


class SyntheticDetector:
    """A loaded synthetic-face model: crops faces its way, scores crops, names verdicts."""

    def __init__(self, model: SyntheticFaceModel, *, version: str):
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

    @torch.inference_mode()
    def score(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Probability that each face crop (BGR uint8, `input_size` square) is wholly generated;
        float64 array of shape (len(crops),), values in [0, 1]."""
        crops = list(crops)
        scores = []
        size = inference_batch_size(next(self.model.parameters()).device)
        for start in range(0, len(crops), size):
            chunk = crops[start : start + size]
            scores.append(torch.sigmoid(self.model(self.model.features(chunk))).double().cpu().numpy())
        return np.concatenate(scores) if scores else np.zeros(0)

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


def load_synthetic_detector(path: str | Path | None = None, *, device: str | None = None) -> SyntheticDetector:
    """The synthetic-face detector for a checkpoint; by default the one installed with the package."""
    path = Path(path) if path else DEFAULT_SYNTHETIC_CHECKPOINT
    if not path.is_file() and path == DEFAULT_SYNTHETIC_CHECKPOINT:
        raise CheckpointError(
            f"no synthetic-face model is installed at {path}; train one with `python -m ml train-synthetic`"
        )
    model = load_synthetic_model(path, device=device)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return SyntheticDetector(model, version=f"{model.spec.version}+{digest}")
