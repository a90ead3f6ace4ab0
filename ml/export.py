"""Exporting the shipped models to ONNX, for the CPU worker's runtime (ml/onnx_runtime.py).

`python -m ml export-onnx` writes, beside each checkpoint, a `.onnx` file that computes what the
detector reads from the torch model, from the same normalised crops:
- face swap: `crops` (N x 3 x S x S, float32, `ml.spec.normalised_batch`) -> `logits` (N x 2)
  and `cams` (N x h x w: the fake class's activation map of the last block, as
  `ml.explain.recording_cams` records it);
- synthetic: `crops` and/or `spectrum` (N x bins, `spectrum_features`) -> `logits` (N), the
  standardisation and the logistic head included.
The file's metadata names the checkpoint it came from (its SHA-256) and carries the checkpoint's
spec, so the runtime needs neither torch nor the checkpoint to load it, and refuses an export
whose checkpoint has changed since. Each export is checked against torch before it is written.

Training needs torch; this module too. The worker imports neither.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import CheckpointError
from .explain import class_activation_maps
from .model import FAKE_CLASS, TASK_FACE_SWAP, TASK_SYNTHETIC, get_architecture, load_checkpoint, read_checkpoint_file
from .onnx_runtime import ONNX_FORMAT, export_path_for, file_sha256, open_session
from .spec import normalised_batch
from .synthetic import SyntheticFaceModel, load_synthetic_model, spectrum_features

OPSET = 17
# An export is kept only if it scores like torch: the largest difference of a logit allowed
# (float32 kernels differ in the order they add; measured differences are about 2e-6).
LOGIT_TOLERANCE = 1e-3


class _FaceSwapWithCams(nn.Module):
    """The face-swap model returning its logits and the fake class's activation maps."""

    def __init__(self, model: nn.Module, arch: str):
        super().__init__()
        entry = get_architecture(arch)
        self.model = model
        self.fake_row = nn.Parameter(entry.head(model).weight[FAKE_CLASS].detach().clone(), requires_grad=False)
        self._activation: torch.Tensor | None = None
        entry.gradcam_layer(model).register_forward_hook(self._keep)

    def _keep(self, _module, _inputs, output):
        self._activation = output

    def forward(self, crops: torch.Tensor):
        logits = self.model(crops)
        return logits, class_activation_maps(self.fake_row, self._activation)


class _SyntheticLogits(nn.Module):
    """The synthetic-face model from its inputs (normalised crops when it reads CNN features,
    then spectrum features when it reads those) to its logit, as `SyntheticFaceModel.features`
    and `forward` compute it: spectrum first, then each stage's pooled activations."""

    def __init__(self, model: SyntheticFaceModel):
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        spec = self.model.spec
        parts = [inputs[-1]] if spec.spectrum_bins else []
        if spec.cnn_stages:
            parts.append(self.model.cnn_features(inputs[0]))
        return self.model(torch.cat(parts, dim=1))


def _sample_crops(size: int, count: int = 3) -> list[np.ndarray]:
    """Made-up crops to trace and check an export with: smooth gradients plus noise (any input
    exercises every weight; the real-face comparison is a test, tests/ml/test_onnx_runtime.py)."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    crops = []
    for k in range(count):
        base = (ramp[None, :, None] * (k + 1) / count + ramp[:, None, None] / 2) % 256
        noisy = base + rng.normal(0, 20, (size, size, 3))
        crops.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return crops


def _metadata(task: str, checkpoint: Path, spec_fields: dict) -> dict[str, str]:
    return {
        "format": ONNX_FORMAT,
        "task": task,
        "source_sha256": file_sha256(checkpoint),
        "spec": json.dumps(spec_fields, default=str),
        "exported_with": f"torch {torch.__version__}",
    }


def _write(module: nn.Module, inputs: tuple, names: list[str], outputs: list[str], out: Path, metadata: dict[str, str]) -> None:
    import onnx  # export-time only (the train extra); the runtime reads the file without it

    dynamic = {name: {0: "faces"} for name in names + outputs}
    tmp = out.with_suffix(".onnx.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript-based exporter: the newer one needs onnxscript and an onnx release
        # that asks for protobuf 6, which mediapipe (the face verifier) cannot load
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module, inputs, str(tmp), input_names=names, output_names=outputs,
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )
    proto = onnx.load(str(tmp))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(tmp))
    tmp.replace(out)


def _check(out: Path, feeds: dict[str, np.ndarray], expected: np.ndarray) -> None:
    got = open_session(out).run(["logits"], feeds)[0]
    worst = float(np.abs(got - expected).max())
    if worst > LOGIT_TOLERANCE:
        out.unlink()
        raise CheckpointError(f"the ONNX export of {out.stem} differs from torch by {worst:.2e} in a logit; not written")


def export_face_swap(checkpoint: Path, out: Path) -> Path:
    model, spec = load_checkpoint(checkpoint, device="cpu")
    model = model.to(memory_format=torch.contiguous_format)
    wrapped = _FaceSwapWithCams(model, spec.arch).eval()
    batch = normalised_batch(_sample_crops(spec.input_size), spec.input_size, spec.mean, spec.std)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    fields = asdict(spec)
    _write(wrapped, (torch.from_numpy(batch),), ["crops"], ["logits", "cams"], out, _metadata(TASK_FACE_SWAP, checkpoint, fields))
    _check(out, {"crops": batch}, expected)
    return out


def export_synthetic(checkpoint: Path, out: Path) -> Path:
    model = load_synthetic_model(checkpoint, device="cpu")
    spec = model.spec
    crops = _sample_crops(spec.input_size)
    feeds: dict[str, np.ndarray] = {}
    if spec.cnn_stages:
        feeds["crops"] = normalised_batch(crops, spec.input_size, spec.mean, spec.std)
    if spec.spectrum_bins:
        feeds["spectrum"] = spectrum_features(crops, spec.spectrum_bins)
    with torch.no_grad():
        expected = model(model.features(crops)).numpy()
    inputs = tuple(torch.from_numpy(v) for v in feeds.values())
    fields = asdict(spec)
    _write(_SyntheticLogits(model).eval(), inputs, list(feeds), ["logits"], out, _metadata(TASK_SYNTHETIC, checkpoint, fields))
    _check(out, feeds, expected)
    return out


def export_onnx(checkpoint: str | Path, out: str | Path | None = None) -> Path:
    """Export a face-swap or synthetic-face checkpoint to ONNX (by default beside it, `.onnx`)."""
    checkpoint = Path(checkpoint)
    out = Path(out) if out else export_path_for(checkpoint)
    task = read_checkpoint_file(checkpoint, what="checkpoint").get("task", TASK_FACE_SWAP)
    if task == TASK_SYNTHETIC:
        return export_synthetic(checkpoint, out)
    return export_face_swap(checkpoint, out)
