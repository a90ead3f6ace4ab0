"""`ml.evaluate`: metrics, predictions and plots of a checkpoint over a folder or a split."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ml import load_detector
from ml.detector import platform_score
from ml.evaluate import evaluate
from ml.faces import read_crop, resize_square
from ml.model import load_checkpoint, preprocess, save_checkpoint
from ml.train import BEST_NAME

METRIC_KEYS = {
    "accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "eer",
    "confusion_matrix", "n_real", "n_fake", "n_no_face", "threshold",
}


def test_evaluate_writes_every_metric_predictions_and_plots(tmp_path, tiny_dataset, tiny_run):
    best = tiny_run / BEST_NAME
    out = tmp_path / "eval"
    metrics = evaluate(load_detector(best, device="cpu"), tiny_dataset, out, cropped=True, split="val")
    saved = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(saved) and saved == metrics
    assert set(saved["confusion_matrix"]) == {"tn", "fp", "fn", "tp"}
    assert saved["n_real"] + saved["n_fake"] == sum(saved["confusion_matrix"].values())
    _, spec = load_checkpoint(best, device="cpu")
    assert saved["roc_auc"] == pytest.approx(
        spec.training["val_metrics"]["roc_auc"]
    ), "evaluate --split val reproduces the validation numbers of the kept epoch"
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows[0].startswith("file,label,group,fake_probability") and len(rows) == 1 + saved["n_files"]
    assert (out / "roc.png").stat().st_size > 0 and (out / "confusion_matrix.png").stat().st_size > 0


def test_evaluate_counts_files_without_a_face_instead_of_dropping_them(tmp_path, astronaut, untrained_checkpoint):
    data = tmp_path / "photos"
    (data / "real").mkdir(parents=True)
    (data / "fake").mkdir()
    cv2.imwrite(str(data / "real" / "astronaut.jpg"), astronaut)
    cv2.imwrite(str(data / "fake" / "astronaut_copy.jpg"), astronaut[:, ::-1])
    cv2.imwrite(str(data / "real" / "wall.jpg"), np.full((200, 200, 3), 100, np.uint8))
    metrics = evaluate(load_detector(untrained_checkpoint, device="cpu"), data, tmp_path / "eval")
    assert (metrics["n_files"], metrics["n_no_face"], metrics["n_real"], metrics["n_fake"]) == (3, 1, 1, 1)
    assert "wall.jpg" in (tmp_path / "eval" / "predictions.csv").read_text()


def test_evaluate_applies_the_checkpoints_temperature_exactly_as_the_detector(tmp_path, tiny_dataset, tiny_run):
    model, spec = load_checkpoint(tiny_run / BEST_NAME, device="cpu")
    hot = save_checkpoint(model, tmp_path / "hot.pt", spec, temperature=4.0)
    evaluate(load_detector(hot, device="cpu"), tiny_dataset, tmp_path / "eval", cropped=True, split="all")

    with (tmp_path / "eval" / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    crops = [resize_square(read_crop(row["file"]), spec.input_size) for row in rows]
    with torch.inference_mode():
        logits = model(preprocess(crops, spec)).float().numpy()
    expected = 1 / (1 + np.exp(-(logits[:, 1] - logits[:, 0]) / 4.0))
    assert [float(row["fake_probability"]) for row in rows] == pytest.approx(expected.tolist(), abs=2e-6)


def test_evaluate_counts_the_platforms_own_verdicts_and_can_leave_out_the_second_detector(
    tmp_path, astronaut, untrained_checkpoint
):
    data = tmp_path / "photos"
    (data / "real").mkdir(parents=True)
    (data / "fake").mkdir()
    cv2.imwrite(str(data / "real" / "astronaut.jpg"), astronaut)
    cv2.imwrite(str(data / "fake" / "astronaut_copy.jpg"), astronaut[:, ::-1])
    both = load_detector(untrained_checkpoint, device="cpu")
    said = {name: both.analyze(data / folder / name).verdict for folder, name in (("real", "astronaut.jpg"), ("fake", "astronaut_copy.jpg"))}

    metrics = evaluate(both, data, tmp_path / "eval")

    assert metrics["verdicts"]["true_real"][said["astronaut.jpg"]] == 1
    assert metrics["verdicts"]["true_fake"][said["astronaut_copy.jpg"]] == 1
    assert metrics["score"] == "platform"
    with (tmp_path / "eval" / "predictions.csv").open() as fh:
        rows = {Path(row["file"]).name: row for row in csv.DictReader(fh)}
    result = both.analyze(data / "real" / "astronaut.jpg")
    expected = platform_score(
        result.fake_probability, result.synthetic_probability, threshold=both.threshold,
        threshold_real=both.threshold_real, synthetic_threshold=result.synthetic_threshold,
    )
    assert float(rows["astronaut.jpg"]["score"]) == pytest.approx(expected, abs=1e-6)
    assert float(rows["astronaut.jpg"]["synthetic_probability"]) == pytest.approx(result.synthetic_probability, abs=1e-6)
    alone = load_detector(untrained_checkpoint, device="cpu", synthetic=False)
    assert alone.synthetic is None
    assert alone.analyze(data / "real" / "astronaut.jpg").synthetic_probability is None
