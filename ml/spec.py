"""What a face-swap model is, apart from its weights, and the arithmetic around it that needs no
torch: the checkpoint's constants, `ModelSpec`, the crop normalisation and the calibrated
probability. `ml.model` (training, torch) and `ml.onnx_runtime` (the CPU worker, no torch) both
use these, so the two runtimes cannot drift apart in how a crop becomes a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "deepfake-detector/1"
# What a checkpoint's model answers. Face-swap checkpoints (ml/model.py) carry no `task` field;
# synthetic-face checkpoints say `task = "synthetic"` and are loaded by `ml.synthetic`.
TASK_FACE_SWAP = "face_swap"
TASK_SYNTHETIC = "synthetic"
CLASS_NAMES = ("real", "fake")
FAKE_CLASS = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Face crops per forward pass on a CPU. On this project's 2-core CPUs 4 to 6 crops per batch ran
# fastest (MobileNetV2 at 224 px, 32 crops: 180 ms against 245 ms in batches of 16; larger
# batches fall out of the caches).
CPU_BATCH_SIZE = 4


@dataclass(frozen=True)
class ModelSpec:
    """Everything about a model except its weights."""

    arch: str = "resnet18"
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    class_names: tuple[str, ...] = CLASS_NAMES
    threshold: float = 0.5  # calibrated fake probability at or above which a file is "fake"
    threshold_real: float | None = None  # below it "real", between the two "uncertain"; None: no band
    temperature: float = 1.0  # logits are divided by it before the softmax (calibration)
    face_margin: float = 1.3  # crop = Haar box enlarged this many times around its centre
    face_shift: float = 0.0  # crop centre moved down by this fraction of the box height
    name: str = "deepfake-detector"
    version: str = "untrained"
    training: dict[str, Any] = field(default_factory=dict)


def dataclass_from_fields(cls, values: dict[str, Any], *, tuples: Sequence[str]):
    """An instance of the dataclass `cls` from a checkpoint's (or an export's) stored fields:
    unknown keys are ignored, and the fields named in `tuples` (stored as lists) made tuples."""
    kept = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
    for key in tuples:
        if key in kept:
            kept[key] = tuple(kept[key])
    return cls(**kept)


def spec_from_fields(values: dict[str, Any]) -> ModelSpec:
    """A ModelSpec from a checkpoint's (or an export's) stored fields."""
    return dataclass_from_fields(ModelSpec, values, tuples=("mean", "std", "class_names"))


def real_threshold(spec: ModelSpec) -> float:
    """The score below which a file is called real (the fake threshold when there is no band)."""
    return spec.threshold if spec.threshold_real is None else min(spec.threshold_real, spec.threshold)


def check_crops(crops: Sequence[np.ndarray], size: int) -> None:
    for crop in crops:
        if crop.shape != (size, size, 3) or crop.dtype != np.uint8:
            raise ValueError(f"expected {size}x{size}x3 uint8 crops, got {crop.shape} {crop.dtype}")


def normalised_batch(
    crops: Sequence[np.ndarray], size: int, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """Face crops (BGR uint8, `size` square) as the float32 NCHW batch the models read: RGB,
    scaled to [0, 1], normalised with `mean` and `std`, in the order of operations of
    `ml.model.preprocess` (so both give the same floats)."""
    check_crops(crops, size)
    batch = np.stack(crops)[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    batch -= np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
    batch /= np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(batch)


def softmax_fake(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Calibrated fake probabilities (float64) from two-class logits (float32 arithmetic, as
    `ml.model.fake_probability` does in torch)."""
    scaled = logits.astype(np.float32) / np.float32(temperature)
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return (exp[:, FAKE_CLASS] / exp.sum(axis=1)).astype(np.float64)
