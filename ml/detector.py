"""The detector: from a file on disk to a verdict with per-frame and per-face scores.

Aggregation policy (tested in tests/ml/test_detector.py):
- a face's score is the model's fake probability for its crop;
- a frame's score is its most suspicious face (max), because one swapped face among several
  real ones makes the frame manipulated;
- a file's score is the mean of the scores of the sampled frames that have a face, so one
  odd frame does not decide a whole video; frames without a face do not count;
- the verdict is "fake" when the file's score is at least the checkpoint's threshold, "real"
  below it, and "no_face" when no face was found in any sampled frame. A file in which no face
  was examined is never called "real".
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointError
from .explain import gradcam, overlay_png
from .faces import DEFAULT_MAX_FACES, crop_face, find_faces
from .media import load_image_bgr, media_kind
from .model import FAKE_CLASS, load_checkpoint, preprocess
from .results import (
    MEDIA_IMAGE,
    VERDICT_FAKE,
    VERDICT_NO_FACE,
    VERDICT_REAL,
    AnalysisResult,
    Explanation,
    FaceResult,
    FrameResult,
)
from .video import DEFAULT_FRAMES, sample_frames

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "detector.pt"
BATCH_SIZE = 16

Progress = Callable[[float], None]


def file_score(frame_scores: Sequence[float | None]) -> float | None:
    """Mean of the frame scores that exist; None when no frame had a face."""
    present = [s for s in frame_scores if s is not None]
    return float(np.mean(present)) if present else None


def verdict_for(score: float | None, threshold: float) -> str:
    if score is None:
        return VERDICT_NO_FACE
    return VERDICT_FAKE if score >= threshold else VERDICT_REAL


class Detector:
    """A loaded model plus the face search and aggregation around it. Reuse one per process."""

    def __init__(self, model: torch.nn.Module, spec, *, version: str):
        self.model = model
        self.spec = spec
        self.version = version
        self.device = next(model.parameters()).device

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def threshold(self) -> float:
        return self.spec.threshold

    def crop(self, image: np.ndarray, box) -> np.ndarray:
        """The crop this model expects for a face box (its own framing and input size)."""
        return crop_face(
            image, box, size=self.spec.input_size, margin=self.spec.face_margin, shift=self.spec.face_shift
        )

    @torch.inference_mode()
    def classify(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Fake probability per face crop (float64 array), computed in batches."""
        scores = []
        for start in range(0, len(crops), BATCH_SIZE):
            batch = preprocess(list(crops[start : start + BATCH_SIZE]), self.spec).to(self.device)
            logits = self.model(batch).float()
            scores.append(torch.softmax(logits, dim=1)[:, FAKE_CLASS].cpu().numpy())
        return np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)

    def analyze(
        self,
        path: str | Path,
        *,
        max_frames: int = DEFAULT_FRAMES,
        max_faces: int = DEFAULT_MAX_FACES,
        explain: int = 2,
        progress: Progress | None = None,
    ) -> AnalysisResult:
        """Analyse an image or a video file. Raises MediaError for files it cannot read.

        `explain` is how many of the most suspicious faces get a Grad-CAM heatmap.
        `progress` is called with a fraction in [0, 1] as the stages finish.
        """
        report = progress or (lambda fraction: None)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        media_type, _ = media_kind(path)
        if media_type == MEDIA_IMAGE:
            image = load_image_bgr(path)
            height, width = image.shape[:2]
            frame_count, duration = 1, 0.0
            frames = [(0, 0.0, image)]
        else:
            info, sampled = sample_frames(path, max_frames)
            width, height, frame_count, duration = info.width, info.height, info.frame_count, info.duration
            frames = [(f.index, f.time, f.image) for f in sampled]
        timings["decode"] = time.perf_counter() - started
        report(0.3)

        started = time.perf_counter()
        found = []  # (frame position, face position, box, crop)
        boxes_per_frame = []
        for position, (_, _, image) in enumerate(frames):
            boxes = find_faces(image, max_faces=max_faces)
            boxes_per_frame.append(boxes)
            found.extend((position, j, box, self.crop(image, box)) for j, box in enumerate(boxes))
            report(0.3 + 0.4 * (position + 1) / len(frames))
        timings["faces"] = time.perf_counter() - started

        started = time.perf_counter()
        scores = self.classify([crop for *_, crop in found])
        timings["classify"] = time.perf_counter() - started
        report(0.9)

        face_scores: dict[tuple[int, int], float] = {(p, j): float(s) for (p, j, _, _), s in zip(found, scores)}
        frame_results = tuple(
            FrameResult(
                index=index,
                time=float(time_s),
                faces=tuple(
                    FaceResult(box=box, fake_probability=face_scores[(position, j)]) for j, box in enumerate(boxes)
                ),
            )
            for position, ((index, time_s, _), boxes) in enumerate(zip(frames, boxes_per_frame))
        )
        score = file_score([frame.fake_probability for frame in frame_results])

        started = time.perf_counter()
        explanations = []
        most_suspicious = sorted(range(len(found)), key=lambda i: scores[i], reverse=True)[: max(explain, 0)]
        for i in most_suspicious:
            position, j, _, crop = found[i]
            heatmap = gradcam(self.model, self.spec, crop)
            explanations.append(
                Explanation(
                    frame_index=frames[position][0],
                    face_index=j,
                    fake_probability=float(scores[i]),
                    png=overlay_png(crop, heatmap),
                )
            )
        timings["explain"] = time.perf_counter() - started
        report(1.0)

        return AnalysisResult(
            media_type=media_type,
            verdict=verdict_for(score, self.threshold),
            fake_probability=score,
            threshold=self.threshold,
            frames=frame_results,
            model_name=self.name,
            model_version=self.version,
            timings={k: round(v, 4) for k, v in timings.items()},
            width=int(width),
            height=int(height),
            frame_count=int(frame_count),
            duration=float(duration),
            explanations=tuple(explanations),
        )


def load_detector(path: str | Path | None = None, *, device: str | None = None) -> Detector:
    """The detector for a checkpoint file; by default the model installed with this package."""
    path = Path(path) if path else DEFAULT_CHECKPOINT
    if not path.is_file():
        if path == DEFAULT_CHECKPOINT:
            raise CheckpointError(
                f"no trained model is installed at {path}; train one with `python -m ml train` "
                "or pass --checkpoint PATH"
            )
        raise CheckpointError(f"no model checkpoint at {path}")
    model, spec = load_checkpoint(path, device=device)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return Detector(model, spec, version=f"{spec.version}+{digest}")
