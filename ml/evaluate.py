"""Evaluation of a checkpoint on a labelled dataset: metrics, per-file predictions, plots.

Files are scored the way users' files are: full images and videos go through the whole
detector (frames, Haar faces, aggregation, both detectors) and are ranked by the platform score
(ml/detector.py: the face-swap probability, or the synthetic one on the same scale when it is
higher), so the metrics and the ROC AUC are those of what the platform says by default; a
detector loaded without the synthetic model (`--no-synthetic`) gives the face-swap model alone.
With `cropped=True` the files are face crops and are resized and classified by the face-swap
model directly, as training did. Files in which no face was found, and
files that cannot be read, are counted and listed in predictions.csv, never silently dropped;
the metrics are computed over the files that got a score, and `warnings_for` says so when they
leave out many files (face crops evaluated without `cropped` are re-cut by the face search,
which misses some tight crops even with its padded retry: 12 % of DFDC's, 2026-11-27).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import Sample, ffpp_samples, folder_samples, group_split, is_ffpp_root
from .detector import Detector, platform_score, verdict_for
from .options import DetectorOptions
from .errors import MediaError
from .faces import read_crop, resize_square
from .metrics import binary_metrics, roc_curve

log = logging.getLogger(__name__)

SPLITS = ("all", "train", "val", "test")
# Files are judged as the site judges them, without the pictures the site stores.
EVALUATE_OPTIONS = DetectorOptions(heatmaps=0, frame_image_size=0, thumbnail_size=0)


@dataclass(frozen=True)
class Prediction:
    sample: Sample
    score: float | None  # None: no face found, or unreadable
    status: str  # "ok", "no_face" or "error"
    detail: str = ""
    verdict: str = ""  # what the platform said (both detectors), when the whole detector ran
    fake_probability: float | None = None  # the face-swap model's, when it differs from `score`
    synthetic_probability: float | None = None  # the synthetic-face model's, when it ran

    @property
    def face_swap_probability(self) -> float | None:
        return self.score if self.fake_probability is None else self.fake_probability


# More than this share of files without a face, when the files are searched for faces, earns a
# warning: face crops evaluated without `cropped` can look like this (DFDC's tight crops: 77 %
# without a face before the padded retry, 12 % with it).
NO_FACE_WARNING_SHARE = 0.25


def select_samples(
    data: str | Path, *, split: str, detector: Detector, group_by: str | None = None
) -> list[Sample]:
    """The files to evaluate. For a folder dataset, "val"/"train" repeat the group split the
    checkpoint was trained with (its recorded seed, validation fraction and group column);
    `group_by` names the index column of the groups (for "val"/"train" it must be the one the
    checkpoint was trained with)."""
    data = Path(data)
    if is_ffpp_root(data):
        if group_by:
            raise ValueError(f"{data}: --group-by is for folder datasets; FaceForensics++ groups are its split's pairs")
        return ffpp_samples(data, split="test" if split == "all" else split)
    if split == "all":
        return folder_samples(data, group_by=group_by)
    if split == "test":
        raise ValueError("a folder dataset has no test split; use --split all or val")
    training = detector.spec.training
    trained_by = training.get("group_by") or None
    if group_by and group_by != trained_by:
        raise ValueError(
            f"--split {split} repeats the split this checkpoint was trained with, whose groups came from "
            f"{repr(trained_by) if trained_by else 'the index default (group or source_video)'}, not {group_by!r}; "
            "leave --group-by out"
        )
    train, val = group_split(
        folder_samples(data, group_by=trained_by),
        val_fraction=training.get("val_fraction", 0.1), seed=training.get("seed", 0),
    )
    return val if split == "val" else train


def score_samples(
    detector: Detector, samples: list[Sample], *, cropped: bool, batch: int = 64, options: DetectorOptions = EVALUATE_OPTIONS
) -> list[Prediction]:
    from tqdm import tqdm  # the [train] extra: the site's install has none

    predictions: list[Prediction] = []
    if cropped:
        size = detector.spec.input_size
        for start in tqdm(range(0, len(samples), batch), desc="crops", unit="batch"):
            chunk = samples[start : start + batch]
            scores = detector.classify([resize_square(read_crop(s.path), size) for s in chunk])
            predictions.extend(Prediction(s, float(p), "ok") for s, p in zip(chunk, scores))
        return predictions
    for sample in tqdm(samples, desc="files", unit="file"):
        try:
            result = detector.analyze(sample.path, options)
        except MediaError as exc:
            log.warning("%s", exc)
            predictions.append(Prediction(sample, None, "error", str(exc)))
            continue
        score = platform_score(
            result.fake_probability, result.synthetic_probability, threshold=detector.threshold,
            threshold_real=detector.threshold_real, synthetic_threshold=result.synthetic_threshold,
        )
        if score is None:
            predictions.append(Prediction(sample, None, "no_face"))
        else:
            predictions.append(Prediction(
                sample, score, "ok", verdict=result.verdict, fake_probability=result.fake_probability,
                synthetic_probability=result.synthetic_probability,
            ))
    return predictions


def summarize(predictions: list[Prediction], *, threshold: float, threshold_real: float | None = None) -> dict:
    """Metrics of the files' scores (the platform score, see the module's docstring) at the fake threshold over every scored file (`uncertain`
    counts as not fake); the three-way verdict counts per true label, which are the platform's
    own verdicts (both detectors) where the whole detector ran; and the metrics over the files
    given a definite verdict (`decided`: real or fake, leaving the uncertain ones out). The
    verdict counts and the choice of `decided` files include the holds of ml/caution.py (a
    verdict held at uncertain is uncertain there); the metrics at the threshold are of the
    scores, before any hold."""
    scored = [p for p in predictions if p.score is not None]
    if not scored:
        raise ValueError("no file got a score (no faces found or unreadable files)")
    threshold_real = threshold if threshold_real is None else threshold_real
    labels = np.array([p.sample.label for p in scored])
    scores = np.array([p.score for p in scored])
    metrics = binary_metrics(labels, scores, threshold=threshold)
    metrics["threshold_real"] = threshold_real
    verdicts = [
        p.verdict or verdict_for(p.score, threshold=threshold, threshold_real=threshold_real) for p in scored
    ]
    metrics["verdicts"] = {
        name: {v: sum(1 for x, y in zip(verdicts, labels) if x == v and y == label) for v in ("real", "uncertain", "fake")}
        for label, name in ((0, "true_real"), (1, "true_fake"))
    }
    decided = np.array([v != "uncertain" for v in verdicts])
    metrics["decided"] = (
        binary_metrics(labels[decided], scores[decided], threshold=threshold) if decided.any() else None
    )
    metrics["n_uncertain"] = int((~decided).sum())
    metrics["n_files"] = len(predictions)
    metrics["n_no_face"] = sum(p.status == "no_face" for p in predictions)
    metrics["n_error"] = sum(p.status == "error" for p in predictions)
    return metrics


def write_predictions(predictions: list[Prediction], path: Path, *, threshold: float, threshold_real: float) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([
            "file", "label", "group", "fake_probability", "synthetic_probability", "score", "predicted", "status", "detail",
        ])
        for p in predictions:
            predicted = "" if p.score is None else (
                p.verdict or verdict_for(p.score, threshold=threshold, threshold_real=threshold_real)
            )
            numbers = [
                "" if value is None else f"{value:.6f}"
                for value in (p.face_swap_probability, p.synthetic_probability, p.score)
            ]
            label = "fake" if p.sample.label == 1 else "real"
            writer.writerow([str(p.sample.path), label, p.sample.group, *numbers, predicted, p.status, p.detail])


def write_plots(predictions: list[Prediction], metrics: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = metrics["confusion_matrix"]
    grid = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(grid, cmap="Blues")
    for (i, j), value in np.ndenumerate(grid):
        ax.text(j, i, str(value), ha="center", va="center", color="black", fontsize=14)
    ax.set_xticks([0, 1], ["real", "fake"])
    ax.set_yticks([0, 1], ["real", "fake"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"threshold {metrics['threshold']:.2f}")
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png", dpi=120)
    plt.close(fig)

    scored = [p for p in predictions if p.score is not None]
    labels = np.array([p.sample.label for p in scored])
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if metrics["roc_auc"] is not None:
        fpr, tpr, _ = roc_curve(labels, np.array([p.score for p in scored]))
        ax.plot(fpr, tpr, label=f"AUC {metrics['roc_auc']:.3f}")
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "one class only: no ROC curve", ha="center")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate (real called fake)")
    ax.set_ylabel("true positive rate (fakes caught)")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=120)
    plt.close(fig)


def format_summary(metrics: dict) -> str:
    cm = metrics["confusion_matrix"]
    rows = [
        ("files", metrics["n_files"]),
        ("real / fake scored", f"{metrics['n_real']} / {metrics['n_fake']}"),
        ("no face / unreadable (left out)", f"{metrics['n_no_face']} / {metrics['n_error']}"),
        ("thresholds (real below, fake from)", f"{metrics['threshold_real']:.3f} {metrics['threshold']:.3f}"),
    ]
    if "score" in metrics:
        rows.append(("score ranked", {"platform": "platform score (both detectors)", "face_swap": "face-swap model alone"}[metrics["score"]]))
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "eer"):
        value = metrics[key]
        rows.append((key, "n/a" if value is None else f"{value:.4f}"))
    rows.append(("confusion (tn fp fn tp)", f"{cm['tn']} {cm['fp']} {cm['fn']} {cm['tp']}"))
    for name, counts in metrics["verdicts"].items():
        rows.append((f"{name}: real / uncertain / fake", f"{counts['real']} / {counts['uncertain']} / {counts['fake']}"))
    decided = metrics["decided"]
    if decided is not None:
        rows.append(("decided files: accuracy, F1", f"{decided['accuracy']:.4f} {decided['f1']:.4f}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def warnings_for(metrics: dict) -> list[str]:
    """What a person should know before trusting `metrics`: files left out of them."""
    left_out = metrics["n_no_face"] + metrics["n_error"]
    if not left_out:
        return []
    lines = [
        f"{left_out} of {metrics['n_files']} files are left out of the metrics "
        f"({metrics['n_no_face']} with no face found, {metrics['n_error']} unreadable; listed in predictions.csv)"
    ]
    if not metrics["cropped"] and metrics["n_no_face"] > NO_FACE_WARNING_SHARE * metrics["n_files"]:
        lines.append(
            f"no face was found in {metrics['n_no_face'] / metrics['n_files']:.0%} of the files: if they are "
            "face crops, evaluate them with --cropped (crops are classified as they are, without a face search)"
        )
    return lines


def uncalibrated_warning(spec, name: str = "this checkpoint") -> str | None:
    """A line saying that a checkpoint was never calibrated (an interrupted run, --no-calibrate),
    or None: its probabilities are raw, and it has no uncertain band."""
    if "calibration" in spec.training or spec.threshold_real is not None or spec.temperature != 1.0:
        return None
    return (
        f"{name} is not calibrated (temperature 1, threshold {spec.threshold:g}, no uncertain band): "
        "its probabilities are raw; finish its training run or use `python -m ml calibrate`"
    )


def evaluate(
    detector: Detector,
    data: str | Path,
    out: str | Path,
    *,
    cropped: bool = False,
    split: str = "all",
    options: DetectorOptions = EVALUATE_OPTIONS,
    group_by: str | None = None,
) -> dict:
    """Score every selected file, write metrics.json, predictions.csv and plots to `out`."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = select_samples(data, split=split, detector=detector, group_by=group_by)
    predictions = score_samples(detector, samples, cropped=cropped, options=options)
    metrics = summarize(predictions, threshold=detector.threshold, threshold_real=detector.threshold_real)
    metrics.update(
        data=str(data), split=split, cropped=cropped, model_name=detector.name, model_version=detector.version,
        score="platform" if detector.synthetic is not None and not cropped else "face_swap",
        synthetic_model_version=detector.synthetic.version if detector.synthetic is not None and not cropped else "",
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_predictions(
        predictions, out / "predictions.csv", threshold=detector.threshold, threshold_real=detector.threshold_real
    )
    write_plots(predictions, metrics, out)
    return metrics
