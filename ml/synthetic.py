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
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import CheckpointError
from .model import (
    FORMAT,
    TASK_SYNTHETIC,
    scoring_precision,
    imagenet_weights_path,
    inference_batch_size,
    read_checkpoint_file,
    select_device,
)
from .nets import MobileNetV2
from .spec import normalised_batch
from .synthetic_spec import (  # noqa: F401  (re-exported: the names have always lived here)
    ARCH,
    BACKBONE_BLOCKS,
    DEFAULT_SYNTHETIC_CHECKPOINT,
    VERDICT_REAL,
    VERDICT_SYNTHETIC,
    VERDICT_UNCERTAIN,
    SyntheticDetector,
    SyntheticSpec,
    radial_spectrum,
    spectrum_features,
    synthetic_spec_from_fields,
    synthetic_verdict,
)

# ---------------------------------------------------------------------------- features


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
            batch = normalised_batch(crops, self.spec.input_size, self.spec.mean, self.spec.std)
            with scoring_precision(device):
                parts.append(self.cnn_features(torch.from_numpy(batch).to(device)).float().cpu())
        return torch.cat(parts, dim=1)

    def cnn_features(self, batch: torch.Tensor) -> torch.Tensor:
        """Each chosen block's activations averaged over the image, concatenated in block order,
        from a normalised batch (the ONNX export traces this too, ml/export.py)."""
        pooled = []
        x = batch
        for index, block in enumerate(self.backbone):
            x = block(x)
            if index in self.spec.cnn_stages:
                pooled.append(x.mean(dim=(2, 3)))
        return torch.cat(pooled, dim=1)

    @torch.inference_mode()
    def probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Probability that each crop is wholly generated (float64), in batches."""
        crops = list(crops)
        scores = []
        size = inference_batch_size(self.feature_mean.device)
        for start in range(0, len(crops), size):
            chunk = crops[start : start + size]
            scores.append(torch.sigmoid(self(self.features(chunk))).double().cpu().numpy())
        return np.concatenate(scores) if scores else np.zeros(0)

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
    model = SyntheticFaceModel(synthetic_spec_from_fields(data))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in data["state_dict"].items()}
    model.load_state_dict(state)
    return model.eval().to(select_device(device))


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
