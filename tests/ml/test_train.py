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
from ml.faces import crop_face, find_faces
from ml.model import load_checkpoint
from ml.train import TrainConfig, augment, build_items, train
from ml.datasets import Sample

METRIC_KEYS = {
    "accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "eer",
    "confusion_matrix", "n_real", "n_fake", "n_no_face", "threshold",
}


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, astronaut):
    """12 "people" (groups): a real crop and a fake one each. Fakes have a pasted patch
    of the wrong colour over the face, which a tiny model can learn in two epochs."""
    root = tmp_path_factory.mktemp("tiny")
    box = find_faces(astronaut)[0]
    rng = np.random.default_rng(0)
    rows = ["file,label,group"]
    for person in range(12):
        shifted = np.roll(astronaut, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
        real = crop_face(shifted, box, size=96, margin=1.0)
        real = cv2.convertScaleAbs(real, alpha=rng.uniform(0.9, 1.1), beta=rng.uniform(-10, 10))
        fake = real.copy()
        fake[30:66, 25:71] = (0, 160, 0)
        fake = cv2.GaussianBlur(fake, (3, 3), 0)
        for label, image in (("real", real), ("fake", fake)):
            (root / label).mkdir(exist_ok=True)
            cv2.imwrite(str(root / label / f"p{person}.png"), image)
            rows.append(f"{label}/p{person}.png,{label},person{person}")
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    return root


def tiny_config(data, out, **changes):
    base = dict(
        data=str(data), out=str(out), arch="resnet18", pretrained=False, fakes="real", cropped=True,
        epochs=2, batch_size=8, lr=1e-3, input_size=64, val_fraction=0.34, seed=3, version="test",
    )
    return TrainConfig(**{**base, **changes})


def test_a_two_epoch_run_writes_a_loadable_checkpoint_and_a_log(tmp_path, tiny_dataset):
    best = train(tiny_config(tiny_dataset, tmp_path / "run"))
    lines = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    record = json.loads(lines[-1])
    assert METRIC_KEYS - {"n_no_face"} <= set(record["val"])
    model, spec = load_checkpoint(best, device="cpu")
    assert (spec.arch, spec.input_size, spec.version) == ("resnet18", 64, "test")
    assert spec.training["fakes"] == "real" and spec.training["val_fraction"] == 0.34
    assert abs(spec.face_margin - 1.0) < 0.15, "the measured framing of the tight crops is stored"
    detector = load_detector(best, device="cpu")
    assert 0 <= detector.classify([np.zeros((64, 64, 3), np.uint8)])[0] <= 1


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, tiny_dataset):
    out = tmp_path / "run"
    train(tiny_config(tiny_dataset, out, epochs=1))
    state = torch.load(out / "last_state.pt", weights_only=True)
    assert state["epoch"] == 0
    train(tiny_config(tiny_dataset, out, epochs=2))
    epochs = [json.loads(line)["epoch"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


def test_self_blended_fakes_come_from_real_faces_with_the_fake_label():
    samples = [Sample("r1.png", 0, "a"), Sample("f1.png", 1, "a"), Sample("r2.png", 0, "b")]
    extra = [Sample("u1.jpg", 0, "u1")]
    sbi = build_items(samples, extra, "sbi")
    assert sorted((str(i.path), i.label, i.blend) for i in sbi) == [
        ("r1.png", 0, False), ("r1.png", 1, True), ("r2.png", 0, False), ("r2.png", 1, True),
        ("u1.jpg", 0, False), ("u1.jpg", 1, True),
    ]
    assert {(str(i.path), i.label) for i in build_items(samples, extra, "real")} == {
        ("r1.png", 0), ("f1.png", 1), ("r2.png", 0)
    }
    assert len(build_items(samples, extra, "both")) == 7


def test_augmentation_returns_the_training_size_and_varies(astronaut):
    crop = cv2.resize(astronaut[60:180, 160:280], (120, 120))
    a = augment(crop, np.random.default_rng(1), 96)
    b = augment(crop, np.random.default_rng(2), 96)
    assert a.shape == b.shape == (96, 96, 3) and a.dtype == np.uint8
    assert not np.array_equal(a, b)


def test_evaluate_writes_every_metric_predictions_and_plots(tmp_path, tiny_dataset):
    best = train(tiny_config(tiny_dataset, tmp_path / "run", epochs=1))
    detector = load_detector(best, device="cpu")
    out = tmp_path / "eval"
    metrics = evaluate(detector, tiny_dataset, out, cropped=True, split="val")
    saved = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(saved) and saved == metrics
    assert set(saved["confusion_matrix"]) == {"tn", "fp", "fn", "tp"}
    assert saved["n_real"] + saved["n_fake"] == sum(saved["confusion_matrix"].values())
    assert saved["roc_auc"] == pytest.approx(
        json.loads((tmp_path / "run" / "train_log.jsonl").read_text().splitlines()[-1])["val"]["roc_auc"]
    ), "evaluate --split val reproduces the validation numbers of training"
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


def test_training_stores_a_temperature_and_the_uncertain_band(tmp_path, tiny_dataset):
    best = train(tiny_config(tiny_dataset, tmp_path / "run", epochs=1))
    _, spec = load_checkpoint(best, device="cpu")
    report = spec.training["calibration"]
    assert spec.temperature == report["temperature"] > 0
    assert spec.threshold_real == report["threshold_real"] <= spec.threshold == report["threshold"]
    assert {"ece_before", "ece_after", "real_called_fake", "fake_recall"} <= set(report)


def test_evaluate_applies_the_checkpoints_temperature_exactly_as_the_detector(tmp_path, tiny_dataset):
    from ml.faces import read_crop, resize_square
    from ml.model import preprocess, save_checkpoint

    best = train(tiny_config(tiny_dataset, tmp_path / "run", epochs=1, calibrate=False))
    model, spec = load_checkpoint(best, device="cpu")
    hot = save_checkpoint(model, tmp_path / "hot.pt", spec, temperature=4.0)
    evaluate(load_detector(hot, device="cpu"), tiny_dataset, tmp_path / "eval", cropped=True, split="all")
    import csv

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
