import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from ml import load_detector
from ml.datasets import Sample
from ml.model import load_checkpoint
from ml.train import (
    BEST_NAME,
    LOG_NAME,
    REFRAME_SCALE,
    REFRAME_SHIFT,
    STATE_NAME,
    framing_crops,
    framing_loss,
    reframed,
    train,
)
from ml.training_data import augment, build_items

from .training import tiny_config

METRIC_KEYS = {
    "accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "eer",
    "confusion_matrix", "n_real", "n_fake", "threshold",
}


def test_a_two_epoch_run_writes_a_loadable_checkpoint_and_a_log(tiny_run):
    lines = (tiny_run / LOG_NAME).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    record = json.loads(lines[-1])
    assert METRIC_KEYS <= set(record["val"])
    model, spec = load_checkpoint(tiny_run / BEST_NAME, device="cpu")
    assert (spec.arch, spec.input_size, spec.version) == ("resnet18", 64, "test")
    assert spec.training["fakes"] == "real" and spec.training["val_fraction"] == 0.34
    assert abs(spec.face_margin - 1.0) < 0.15, "the measured framing of the tight crops is stored"
    detector = load_detector(tiny_run / BEST_NAME, device="cpu")
    assert 0 <= detector.classify([np.zeros((64, 64, 3), np.uint8)])[0] <= 1


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, tiny_dataset, tiny_run):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)  # a run asked for 3 epochs, stopped after its second
    assert torch.load(out / STATE_NAME, weights_only=True)["epoch"] == 1
    train(tiny_config(tiny_dataset, out, epochs=3))
    epochs = [json.loads(line)["epoch"] for line in (out / LOG_NAME).read_text().splitlines()]
    assert epochs == [1, 2, 3]


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


def test_a_shared_copy_is_the_same_face_smaller_and_with_its_fine_detail_gone(astronaut):
    from ml.training_data import as_shared_copy

    face = cv2.resize(astronaut[40:220, 140:320], (224, 224))

    copy = as_shared_copy(face, np.random.default_rng(3))

    assert 224 / 3.6 <= copy.shape[0] <= 224 / 1.4 and copy.shape[2] == 3
    back = cv2.resize(copy, (224, 224), interpolation=cv2.INTER_CUBIC)
    assert float(np.abs(back.astype(int) - face.astype(int)).mean()) < 20  # the same picture
    detail = lambda image: cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    assert detail(back) < 0.5 * detail(face)


def test_training_crops_become_shared_copies_only_when_asked(astronaut, monkeypatch):
    import ml.training_data as training_data

    made = []
    real = training_data.as_shared_copy
    monkeypatch.setattr(training_data, "as_shared_copy", lambda image, rng: made.append(1) or real(image, rng))
    crop = cv2.resize(astronaut[60:180, 160:280], (120, 120))

    for seed in range(20):
        augment(crop, np.random.default_rng(seed), 96)
    assert made == []
    always = [augment(crop, np.random.default_rng(seed), 96, shared_copies=1.0) for seed in range(5)]
    assert len(made) == 5 and all(a.shape == (96, 96, 3) for a in always)


def test_training_stores_a_temperature_and_the_uncertain_band(tiny_run):
    _, spec = load_checkpoint(tiny_run / BEST_NAME, device="cpu")
    report = spec.training["calibration"]
    assert spec.temperature == report["temperature"] > 0
    assert spec.threshold_real == report["threshold_real"] <= spec.threshold == report["threshold"]
    assert {"ece_before", "ece_after", "real_called_fake", "fake_recall"} <= set(report)


def test_reframing_moves_each_crop_by_a_few_percent_and_keeps_its_size():
    batch = torch.zeros(16, 3, 100, 100)
    batch[:, :, 48:52, 48:52] = 1.0  # a dot at the centre of each crop
    moved = reframed(batch, torch.Generator().manual_seed(0))
    again = reframed(batch, torch.Generator().manual_seed(0))

    assert moved.shape == batch.shape and torch.equal(moved, again)
    ys, xs = torch.meshgrid(torch.arange(100.0), torch.arange(100.0), indexing="ij")
    weight = moved[:, 0].sum(dim=(1, 2))
    centre_x = (moved[:, 0] * xs).sum(dim=(1, 2)) / weight
    centre_y = (moved[:, 0] * ys).sum(dim=(1, 2)) / weight
    offsets = torch.stack([centre_x - 49.5, centre_y - 49.5]).abs()
    farthest = 100 * REFRAME_SHIFT * (1 + REFRAME_SCALE) + 1
    assert (offsets <= farthest).all(), offsets.max()
    assert (offsets.amax(dim=0) > 0.5).sum() >= 12, "most crops moved"


def test_the_framing_term_is_zero_for_the_same_score_and_grows_with_the_difference():
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    assert framing_loss(logits, logits + 5.0).item() == 0.0  # the same fake-minus-real margin
    assert framing_loss(logits, logits + torch.tensor([[0.0, 2.0], [0.0, 0.0]])).item() == 2.0


def test_the_framing_term_can_leave_the_fakes_out():
    labels = torch.tensor([0, 1, 0, 1])
    assert framing_crops(labels, "real").tolist() == [True, False, True, False]
    assert framing_crops(labels, "all").tolist() == [True, True, True, True]
    with pytest.raises(ValueError, match="framing_on"):
        framing_crops(labels, "fake")


def test_a_run_with_an_unknown_framing_choice_stops_before_it_writes_anything(tmp_path, tiny_dataset):
    with pytest.raises(ValueError, match="framing_on"):
        train(tiny_config(tiny_dataset, tmp_path / "run", framing_consistency=1.0, framing_on="fakes"))
    assert not (tmp_path / "run").exists()


def test_a_run_with_the_framing_term_on_real_faces_trains_and_records_it(tmp_path, tiny_dataset):
    best = train(tiny_config(tiny_dataset, tmp_path / "run", epochs=1, framing_consistency=1.0, framing_on="real"))

    _, spec = load_checkpoint(best, device="cpu")
    assert (spec.training["framing_consistency"], spec.training["framing_on"]) == (1.0, "real")


def test_a_run_with_the_framing_term_trains_and_records_its_weight(tmp_path, tiny_dataset):
    best = train(tiny_config(tiny_dataset, tmp_path / "run", epochs=1, framing_consistency=1.0))

    _, spec = load_checkpoint(best, device="cpu")
    assert spec.training["framing_consistency"] == 1.0
    record = json.loads((tmp_path / "run" / LOG_NAME).read_text().splitlines()[-1])
    assert record["train_loss"] > 0
