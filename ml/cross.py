"""The cross-source benchmark: how a checkpoint does on every source this project has, with
the verdicts users would see (real / uncertain / fake / no face).

| row | files | how they are scored |
|---|---|---|
| dfdc-val | held-out DFDC crops (the checkpoint's own split by source video) | crops, classified directly |
| inswapper-val | inswapper swaps and their FFHQ inputs, held out by input photo | re-cut crops (ml/sources.py) |
| celebdf-val | Celeb-DF real crops, held out by person | re-cut crops |
| utkface-val | UTKFace real faces, held out | re-cut crops |
| videos-real | every real clip in videos/real (news, webcam, talking heads) | the whole detector |
| videos-fake | the DFDC fake videos | the whole detector |
| ffpp-frames | the FaceForensics++ example frames (2 originals, 3 fakes) | the whole detector |

Held-out splits repeat the checkpoint's recorded seed and validation fraction, so a source the
model trained on is scored only on files it never saw; a source it never trained on is a test
of generalisation rather than memory (the checkpoint's `training.sources` says which).
Run: `python -m ml eval-cross --checkpoint PATH --out DIR` (writes cross.json and cross.md).
With the synthetic-face model loaded (the default) the whole-detector rows rank files by the
platform score of both detectors (ml/evaluate.py); `--no-synthetic` (`make eval-cross`, the
model card's table) scores the face-swap model alone.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from .datasets import Sample, group_split
from .detector import Detector, verdict_for
from .evaluate import EVALUATE_OPTIONS, Prediction, score_samples
from .metrics import roc_auc
from .sources import source_samples

CROP_SOURCES = ("dfdc", "inswapper", "celebdf", "utkface")
FFPP_REAL = ("ex_original.png", "ex_original_actors.png")
FFPP_FAKE = ("ex_deepfakes.png", "ex_neuraltextures.png", "ex_deepfakedetection.png")


def _held_out(detector: Detector, samples: list[Sample]) -> list[Sample]:
    training = detector.spec.training
    _, val = group_split(samples, val_fraction=training.get("val_fraction", 0.1), seed=training.get("seed", 0))
    return val


def row(name: str, predictions: list[Prediction], detector: Detector, trained_on: bool) -> dict:
    scored = [p for p in predictions if p.score is not None]
    labels = np.array([p.sample.label for p in scored])
    scores = np.array([p.score for p in scored])
    # the verdict the detector gave (holds included: ml/caution.py), else the score's band (crops
    # classified as they are carry no verdict)
    verdicts = [
        p.verdict or verdict_for(p.score, threshold=detector.threshold, threshold_real=detector.threshold_real) for p in scored
    ]

    def share(label: int, verdict: str) -> float | None:
        picked = [v for v, y in zip(verdicts, labels) if y == label]
        return sum(v == verdict for v in picked) / len(picked) if picked else None

    return {
        "name": name,
        "trained_on": trained_on,
        "n_real": int(np.sum(labels == 0)),
        "n_fake": int(np.sum(labels == 1)),
        "n_no_face": sum(p.status == "no_face" for p in predictions),
        "n_error": sum(p.status == "error" for p in predictions),
        "roc_auc": roc_auc(labels, scores) if len(set(labels.tolist())) == 2 else None,
        "real_called_fake": share(0, "fake"),
        "real_uncertain": share(0, "uncertain"),
        "fake_caught": share(1, "fake"),
        "fake_uncertain": share(1, "uncertain"),
        "real_called_fake_list": [p.sample.path.name for p, v in zip(scored, verdicts) if p.sample.label == 0 and v == "fake"],
    }


def cross_source_report(
    detector: Detector, data_root: str | Path, *, sources_cache: str | Path = "runs/sources", frames: int = 32
) -> list[dict]:
    data_root = Path(data_root)
    trained = set(detector.spec.training.get("sources", []) or (["dfdc"] if "dfdc" in str(detector.spec.training.get("data", "")) else []))
    options = replace(EVALUATE_OPTIONS, max_frames=frames)
    rows = []
    for name in CROP_SOURCES:
        samples = _held_out(detector, [s.sample for s in source_samples((name,), data_root, sources_cache)])
        rows.append(row(f"{name}-val", score_samples(detector, samples, cropped=True), detector, name in trained))
    videos = data_root / "videos"
    for label, folder in ((0, "real"), (1, "fake")):
        samples = [Sample(p, label, p.stem) for p in sorted((videos / folder).glob("*.mp4"))]
        rows.append(row(f"videos-{folder}", score_samples(detector, samples, cropped=False, options=options), detector, False))
    frames_dir = data_root / "frames" / "faceforensics_examples"
    samples = [Sample(frames_dir / n, 0, n) for n in FFPP_REAL] + [Sample(frames_dir / n, 1, n) for n in FFPP_FAKE]
    rows.append(row("ffpp-frames", score_samples(detector, samples, cropped=False, options=options), detector, False))
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_table(rows: list[dict], detector: Detector) -> str:
    lines = [
        f"model {detector.name} {detector.version}; real below {detector.threshold_real:.3f}, fake from {detector.threshold:.3f}",
        "",
        "| source | trained on | real / fake | no face | ROC AUC | real called fake | real uncertain | fakes caught | fakes uncertain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        auc = "-" if r["roc_auc"] is None else f"{r['roc_auc']:.3f}"
        lines.append(
            f"| {r['name']} | {'yes' if r['trained_on'] else 'no'} | {r['n_real']} / {r['n_fake']} | {r['n_no_face']} | {auc} | "
            f"{_pct(r['real_called_fake'])} | {_pct(r['real_uncertain'])} | {_pct(r['fake_caught'])} | {_pct(r['fake_uncertain'])} |"
        )
    return "\n".join(lines)


def write_report(rows: list[dict], detector: Detector, out: str | Path) -> str:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(rows, detector)
    (out / "cross.json").write_text(json.dumps({"model_version": detector.version, "rows": rows}, indent=2) + "\n")
    (out / "cross.md").write_text(table + "\n")
    return table
