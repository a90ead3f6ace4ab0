"""`ml.evaluate`: metrics, predictions and plots of a checkpoint over a folder or a split."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dataclasses import replace

from ml import load_detector
from ml.datasets import folder_samples, group_split
from ml.detector import platform_score
from ml.evaluate import evaluate, select_samples, uncalibrated_warning, warnings_for
from ml.faces import read_crop, resize_square
from ml.model import load_checkpoint, preprocess, save_checkpoint
from ml.train import BEST_NAME

from .training import write_made_from_dataset

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


@pytest.fixture()
def made_from_data(tmp_path, tiny_dataset):
    return write_made_from_dataset(tmp_path / "data", tiny_dataset)


@pytest.fixture()
def split_by_made_from(tmp_path, tiny_run):
    """tiny_run's checkpoint, recorded as trained on groups from the `made_from` column."""
    model, spec = load_checkpoint(tiny_run / BEST_NAME)
    training = {**spec.training, "group_by": "made_from"}
    return load_detector(save_checkpoint(model, tmp_path / "by-made-from.pt", replace(spec, training=training)), device="cpu")


def test_evaluate_repeats_a_split_made_by_the_column_the_checkpoint_was_trained_with(made_from_data, split_by_made_from):
    val = select_samples(made_from_data, split="val", detector=split_by_made_from)

    expected = group_split(folder_samples(made_from_data, group_by="made_from"), val_fraction=0.34, seed=3)[1]
    assert val == expected and {s.group for s in val} <= {f"person_p{n}" for n in range(12)}
    assert len(val) == 2 * len({s.group for s in val}), "each person's real and fake file"


def test_evaluate_refuses_to_split_by_a_column_other_than_the_checkpoints(made_from_data, split_by_made_from):
    with pytest.raises(ValueError, match="groups came from 'made_from', not 'group'"):
        select_samples(made_from_data, split="val", detector=split_by_made_from, group_by="group")
    assert select_samples(made_from_data, split="all", detector=split_by_made_from, group_by="group")[0].group == "fake_p0"


def metrics_of(*, files: int, no_face: int, cropped: bool, errors: int = 0) -> dict:
    return {"n_files": files, "n_no_face": no_face, "n_error": errors, "cropped": cropped}


def test_evaluate_says_how_many_files_are_left_out_of_the_metrics():
    assert warnings_for(metrics_of(files=10, no_face=0, cropped=False)) == []
    [line] = warnings_for(metrics_of(files=10, no_face=1, cropped=False, errors=1))
    assert line == "2 of 10 files are left out of the metrics (1 with no face found, 1 unreadable; listed in predictions.csv)"


def test_evaluate_suggests_cropped_when_most_files_show_no_face():
    left_out, hint = warnings_for(metrics_of(files=8, no_face=3, cropped=False))
    assert "no face was found in 38% of the files" in hint and "--cropped" in hint
    assert len(warnings_for(metrics_of(files=8, no_face=2, cropped=False))) == 1, "a quarter is not more than a quarter"


def test_an_uncalibrated_checkpoint_is_called_so_and_a_calibrated_one_is_not(untrained_checkpoint, tiny_run):
    line = uncalibrated_warning(load_checkpoint(untrained_checkpoint)[1], "untrained.pt")
    assert line.startswith("untrained.pt is not calibrated (temperature 1, threshold 0.5, no uncertain band)")
    assert uncalibrated_warning(load_checkpoint(tiny_run / BEST_NAME)[1]) is None
