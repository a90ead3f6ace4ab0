"""The CPU worker's runtime: the shipped models scored by ONNX Runtime, without torch.

Why: a worker that never imports torch starts in a fraction of the time and holds a fraction of
the memory (torch's CUDA build maps its GPU libraries on a machine without a GPU too), and ONNX
Runtime runs these MobileNetV2s faster on a CPU (numbers in the README's speed section and the
bench, `make bench`). Training, evaluation of new checkpoints and the GPU stay on torch.

An export (`python -m ml export-onnx`, ml/export.py) lies beside its checkpoint (`detector.pt` ->
`detector.onnx`; made by `make`, not committed) and names the checkpoint it came from by its SHA-256; `load_detector` uses it
only while that matches (ml/detector.py says when each runtime is chosen). The crops are
normalised by the same function in both runtimes (`ml.spec.normalised_batch`) and a test holds
the two runtimes' probabilities and heatmaps together on real faces.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .spec import CPU_BATCH_SIZE, TASK_FACE_SWAP, TASK_SYNTHETIC, ModelSpec, normalised_batch, softmax_fake, spec_from_fields
from .synthetic_spec import SyntheticSpec, spectrum_features, synthetic_spec_from_fields

ONNX_FORMAT = "deepfake-detector-onnx/1"

_threads: int | None = None  # the models' threads for sessions opened from now on (None: one per core)


def threads_set(threads: int | None) -> None:
    """The threads the models use from now on (sessions opened later); None: one per core."""
    global _threads
    _threads = threads


def lanes() -> int:
    """How many batches run at once (ml.detector.onnx_lanes_pool): two where there are two
    threads or more to give, each with half of them (`session_threads`)."""
    return 2 if (_threads or os.cpu_count() or 1) >= 2 else 1


def session_threads() -> int:
    return max(1, (_threads or os.cpu_count() or 1) // lanes())


def export_path_for(checkpoint: Path) -> Path:
    return Path(checkpoint).with_suffix(".onnx")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def open_session(path: Path):
    """An ONNX Runtime session on the CPU, every graph optimisation on (BatchNorm folded into
    the convolutions, as the torch runtime does by hand). Its threads sleep when idle instead of
    spinning: spinning ones took the cores from OpenCV's face search, which runs between two
    batches (a photo's Haar search 66 ms instead of 45, the photo 103 ms instead of 80)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = session_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_export(kind, checkpoint: Path, digest: str):
    """(the export beside `checkpoint` loaded as `kind` (OnnxFaceSwap or OnnxSyntheticModel), None)
    when it was exported from this very checkpoint (SHA-256 `digest`), else (None, why not)."""
    path = export_path_for(checkpoint)
    if not path.is_file():
        return None, f"no ONNX export at {path}"
    model = kind(path)
    if model.source_sha256 != digest:
        return None, f"{path} was exported from another version of {Path(checkpoint).name} (run `make export-onnx`)"
    return model, None


class _Export:
    """An export opened for scoring: its session, its checkpoint's spec and SHA-256."""

    runtime = "onnx"
    task = ""

    def __init__(self, path: Path):
        try:
            self.session = open_session(path)
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise CheckpointError(f"{path} is not a readable ONNX model ({exc})") from None
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if meta.get("format") != ONNX_FORMAT or meta.get("task") != self.task:
            raise CheckpointError(f"{path} is not a {ONNX_FORMAT} export of a {self.task} model")
        self.spec = self._spec(json.loads(meta["spec"]))
        self.source_sha256 = meta["source_sha256"]

    def _spec(self, fields: dict):
        raise NotImplementedError


class OnnxFaceSwap(_Export):
    """The face-swap model's logits and class activation maps, from ONNX Runtime."""

    task = TASK_FACE_SWAP

    def _spec(self, fields: dict) -> ModelSpec:
        return spec_from_fields(fields)

    def scores_and_cams(
        self, crops: Sequence[np.ndarray], *, map_batches: Callable = map
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Calibrated fake probability per crop (float64) and each crop's coarse activation map
        (float32, not normalised), in batches of `CPU_BATCH_SIZE`; `map_batches` (a pool's
        `map`) may run the batches at once."""
        batches = [crops[start : start + CPU_BATCH_SIZE] for start in range(0, len(crops), CPU_BATCH_SIZE)]
        scored = list(map_batches(self._batch, batches))
        scores = [s for s, _ in scored]
        cams = [cam for _, maps in scored for cam in maps]
        return (np.concatenate(scores) if scores else np.zeros(0)), cams

    def _batch(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spec
        batch = normalised_batch(crops, spec.input_size, spec.mean, spec.std)
        logits, maps = self.session.run(["logits", "cams"], {"crops": batch})
        return softmax_fake(logits, spec.temperature), maps


class OnnxSyntheticModel(_Export):
    """The synthetic-face model from ONNX Runtime (`SyntheticDetector`'s `model`)."""

    task = TASK_SYNTHETIC

    def _spec(self, fields: dict) -> SyntheticSpec:
        return synthetic_spec_from_fields(fields)

    def probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        spec = self.spec
        scores = []
        for start in range(0, len(crops), CPU_BATCH_SIZE):
            chunk = list(crops[start : start + CPU_BATCH_SIZE])
            feeds = {}
            if spec.cnn_stages:
                feeds["crops"] = normalised_batch(chunk, spec.input_size, spec.mean, spec.std)
            if spec.spectrum_bins:
                feeds["spectrum"] = spectrum_features(chunk, spec.spectrum_bins)
            (logits,) = self.session.run(["logits"], feeds)
            scores.append(1.0 / (1.0 + np.exp(-logits.astype(np.float64))))
        return np.concatenate(scores) if scores else np.zeros(0)
