"""How far the models' scores move on a GPU, in each precision it could score in, against the
CPU's fp32 (the table "On a GPU" in ml/weights/MODEL_CARD.md).

Two halves, because a GPU machine may lack what the face search needs (MediaPipe; OpenCV 5 has
no Haar cascades):
- `python -m ml precision-faces FOLDER... --out faces.npz`, on the CPU: up to `--per-source`
  faces of each folder, cut by the installed detector as it cuts them for scoring, with both
  models' CPU fp32 scores;
- `python -m ml precision-check faces.npz`, on the GPU: the same crops scored there in each of
  `ml.model.GPU_PRECISIONS` (fp32 as shipped, cuDNN's default TF32, fp16 autocast): per model the
  largest and mean change from the CPU, the verdicts that changed, and faces/s through `classify`
  and through the model alone, at the GPU's batch size.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .datasets import IMAGE_SUFFIXES
from .media import load_image_bgr
from .model import GPU_PRECISIONS, gpu_precision, inference_batch_size, preprocess, scoring_precision
from .options import DetectorOptions


def cut_faces(detector, folders: list[Path], *, per_source: int, seed: int = 7) -> dict[str, np.ndarray]:
    """The largest confirmed face of up to `per_source` images of each folder (images drawn at
    random, those without a face skipped), as each model's crop, with the CPU's scores."""
    rng = random.Random(seed)
    swap, synthetic, sources = [], [], []
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        rng.shuffle(files)
        kept = 0
        for path in files:
            if kept == per_source:
                break
            image = load_image_bgr(path)
            boxes, _, _ = detector.find_confirmed_faces(image, DetectorOptions())
            if boxes:
                swap.append(detector.crop(image, boxes[0]))
                synthetic.append(detector.synthetic.crop(image, boxes[0]))
                sources.append(f"{folder.parent.name}/{folder.name}")
                kept += 1
    if not swap:
        raise ValueError("no face found in any of the folders")
    return {
        "swap": np.stack(swap),
        "synthetic": np.stack(synthetic),
        "sources": np.array(sources),
        "swap_cpu": detector.classify(swap),
        "synthetic_cpu": detector.synthetic.score(synthetic),
        "swap_thresholds": np.array([detector.threshold_real, detector.threshold]),
        "synthetic_thresholds": np.array(detector.synthetic.thresholds),
    }


def _verdicts(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    real, fake = thresholds
    return np.where(scores >= fake, 2, np.where(scores < real, 0, 1))


def _faces_per_second(run: Callable[[], object], faces: int, device: torch.device, repeats: int) -> float:
    def synchronise():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        run()
    synchronise()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        synchronise()
        seconds.append(time.perf_counter() - started)
    return faces / statistics.median(seconds)


def compare(detector, faces: dict[str, np.ndarray], *, repeats: int = 20) -> dict[str, dict]:
    """Per precision: each model's largest and mean change from the CPU's score, verdicts
    changed, and faces/s (through `classify` / `score`, and the face-swap model alone)."""
    swap, synthetic = list(faces["swap"]), list(faces["synthetic"])
    batch = inference_batch_size(detector.device)
    swap_batch = (swap * (batch // len(swap) + 1))[:batch]
    synthetic_batch = (synthetic * (batch // len(synthetic) + 1))[:batch]
    prepared = preprocess(swap_batch, detector.spec).to(detector.device)
    report = {}
    for name in GPU_PRECISIONS:
        with gpu_precision(name), torch.inference_mode():
            row = {}
            for model, scores, cpu, thresholds in (
                ("swap", detector.classify(swap), faces["swap_cpu"], faces["swap_thresholds"]),
                ("synthetic", detector.synthetic.score(synthetic), faces["synthetic_cpu"], faces["synthetic_thresholds"]),
            ):
                change = np.abs(scores - cpu)
                row[model] = {
                    "largest_change": float(change.max()),
                    "mean_change": float(change.mean()),
                    "verdicts_changed": int((_verdicts(scores, thresholds) != _verdicts(cpu, thresholds)).sum()),
                    "faces": len(cpu),
                }
            row["faces_per_s_classify"] = _faces_per_second(lambda: detector.classify(swap_batch), batch, detector.device, repeats)
            row["faces_per_s_synthetic"] = _faces_per_second(
                lambda: detector.synthetic.score(synthetic_batch), batch, detector.device, repeats
            )
            row["faces_per_s_model_alone"] = _faces_per_second(lambda: _model_alone(detector, prepared), batch, detector.device, repeats)
        report[name] = row
    return report


def _model_alone(detector, prepared: torch.Tensor) -> torch.Tensor:
    with scoring_precision(detector.device):
        return detector.model(prepared)
