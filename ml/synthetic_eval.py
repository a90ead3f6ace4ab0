"""Evaluation of a synthetic-face checkpoint the way the platform would use it.

Every file goes through most of the platform's path: Haar faces on the whole image with the
default search (at most 4; not the photo's small-face search, nor the BlazeFace check), the
detector's own crops; a photo's face scored as the platform scores it (the lowest over its three
framings, `SyntheticDetector.score_photo_faces`), a video frame's face on its crop alone. An
image's score is its most suspicious face, a video's the mean over its sampled frames of each
frame's most suspicious face (the face-swap detector's aggregation rule). Files without a face
are counted, never dropped silently.

Sets:
- `test_clean` / `test_degraded`: the held-out images of the training data (the split is
  repeated from the seed and fraction stored in the checkpoint), as they are and re-encoded as
  JPEG 75 after downscaling to 256 px (copies no training step ever saw);
- one set per folder of real photos or real videos from other sources: how often real people
  are called synthetic (at `threshold`) or uncertain; for videos, their sampled frames scored
  as photos too (a screenshot is a photo to the platform).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .datasets import VIDEO_SUFFIXES
from .errors import MediaError
from .faces import find_faces
from .metrics import roc_auc
from .synthetic import VERDICT_REAL, VERDICT_SYNTHETIC, VERDICT_UNCERTAIN, SyntheticDetector
from .synthetic_train import DEGRADED_TEST, IN_DOMAIN, degrade, image_items, list_images, split_by_image
from .video import sample_frames

log = logging.getLogger(__name__)

VIDEO_FRAMES = 8


@dataclass(frozen=True)
class Scored:
    set: str
    file: str
    label: int  # 1: wholly generated
    score: float | None  # None: no face found
    faces: int


def _image_score(detector: SyntheticDetector, image: np.ndarray, *, photo: bool = True) -> tuple[float | None, int]:
    boxes = find_faces(image)
    if not boxes:
        return None, 0
    scores = detector.score_photo_faces(image, boxes) if photo else detector.score_faces(image, boxes)
    return float(scores.max()), len(boxes)


Score = tuple[float | None, int]  # (the most suspicious face's probability or None, faces found)


def _video_score(detector: SyntheticDetector, path: Path, frames: int) -> tuple[Score, list[Score]]:
    """(the video's score and faces, each sampled frame's as a photo's: a screenshot of it)."""
    _, sampled = sample_frames(path, frames)
    frame_scores, faces, as_photos = [], 0, []
    for frame in sampled:
        score, n = _image_score(detector, frame.image, photo=False)
        faces += n
        if score is not None:
            frame_scores.append(score)
        as_photos.append(_image_score(detector, frame.image))
    return ((float(np.mean(frame_scores)) if frame_scores else None), faces), as_photos


def held_out_items(detector: SyntheticDetector, data: str | Path):
    """The in-domain images the checkpoint never trained on (its own recorded split)."""
    training = detector.spec.training
    if "seed" not in training or "test_fraction" not in training:
        raise ValueError("the checkpoint records no split (seed, test_fraction); evaluate other sets only")
    items = [i for i in image_items(data) if i.source == IN_DOMAIN]
    _, test = split_by_image(items, test_fraction=training["test_fraction"], seed=training["seed"])
    expected = training.get("n_test_real", 0) + training.get("n_test_synthetic", 0)
    found = len(test)
    if training.get("extra_real") == [] and expected and expected != found:
        raise ValueError(f"{data} gives {found} held-out images, the checkpoint recorded {expected}: not the same data")
    return test


def evaluate_synthetic(
    detector: SyntheticDetector,
    out: str | Path,
    *,
    data: str | Path | None = None,
    real_folders: tuple[str, ...] = (),
    max_per_folder: int = 0,
    seed: int = 0,
    video_frames: int = VIDEO_FRAMES,
) -> dict:
    """Metrics per set; writes `metrics.json` and `predictions.csv` to `out`."""
    rows: list[Scored] = []
    if data is not None:
        for item in held_out_items(detector, data):
            image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
            if image is None:
                raise MediaError(f"cannot read {item.path}")
            for name, copy in (("test_clean", image), ("test_degraded", degrade(image, **DEGRADED_TEST)[0])):
                score, faces = _image_score(detector, copy)
                rows.append(Scored(name, item.path.name, item.label, score, faces))
    for folder in real_folders:
        folder = Path(folder)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) or list_images(folder)
        if max_per_folder and len(files) > max_per_folder:
            rng = np.random.default_rng(seed)
            files = sorted(rng.choice(np.array(files, dtype=object), max_per_folder, replace=False))
        set_name = f"real:{folder.parent.name}/{folder.name}"
        for path in files:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                (score, faces), as_photos = _video_score(detector, path, video_frames)
                for k, (frame_score, frame_faces) in enumerate(as_photos):
                    frame_set = f"{set_name} (frames as photos)"
                    rows.append(Scored(frame_set, f"{path.name}#{k}", 0, frame_score, frame_faces))
            else:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise MediaError(f"cannot read {path}")
                score, faces = _image_score(detector, image)
            rows.append(Scored(set_name, path.name, 0, score, faces))
        log.info("%s: %d files", set_name, len(files))
    metrics = summarize_sets(rows, threshold_real=detector.spec.threshold_real, threshold=detector.spec.threshold)
    metrics["_model"] = {"name": detector.name, "version": detector.version, "feature_set": detector.spec.feature_set}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with (out / "predictions.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["set", "file", "label", "score", "faces"])
        for r in rows:
            writer.writerow([r.set, r.file, r.label, "" if r.score is None else f"{r.score:.6f}", r.faces])
    return metrics


def summarize_sets(rows: list[Scored], *, threshold_real: float, threshold: float) -> dict:
    """Per set: files, no-face count, AUC (when both labels), and the share of each verdict
    for real and for synthetic files."""
    metrics = {}
    for name in dict.fromkeys(r.set for r in rows):
        subset = [r for r in rows if r.set == name]
        scored = [r for r in subset if r.score is not None]
        entry: dict = {"n_files": len(subset), "n_no_face": len(subset) - len(scored)}
        labels = np.array([r.label for r in scored])
        scores = np.array([r.score for r in scored])
        if scored:
            entry["roc_auc"] = roc_auc(labels, scores)
        for label, key in ((0, "real"), (1, "synthetic")):
            s = scores[labels == label] if scored else np.zeros(0)
            if s.size:
                entry[key] = {
                    "n": int(s.size),
                    VERDICT_SYNTHETIC: float(np.mean(s >= threshold)),
                    VERDICT_UNCERTAIN: float(np.mean((s >= threshold_real) & (s < threshold))),
                    VERDICT_REAL: float(np.mean(s < threshold_real)),
                    "median_score": float(np.median(s)),
                }
        metrics[name] = entry
    metrics["_thresholds"] = {"threshold_real": threshold_real, "threshold": threshold}
    return metrics


def format_metrics(metrics: dict) -> str:
    lines = []
    for name, m in metrics.items():
        if name.startswith("_"):
            continue
        auc = m.get("roc_auc")
        parts = [f"{name}: {m['n_files']} files ({m['n_no_face']} without a face)"]
        if auc is not None:
            parts.append(f"AUC {auc:.3f}")
        for key in ("real", "synthetic"):
            if key in m:
                v = m[key]
                parts.append(
                    f"{key} n={v['n']}: called synthetic {v[VERDICT_SYNTHETIC]:.1%}, "
                    f"uncertain {v[VERDICT_UNCERTAIN]:.1%}, real {v[VERDICT_REAL]:.1%}"
                )
        lines.append("  ".join(parts))
    return "\n".join(lines)
