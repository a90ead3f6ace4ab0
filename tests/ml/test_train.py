import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from dataclasses import replace

from ml import load_detector
from ml.datasets import Sample, folder_samples, group_split
from ml.errors import CheckpointError
from ml.model import load_checkpoint, save_checkpoint
from ml.train import (
    BEST_NAME,
    LOG_NAME,
    REFRAME_SCALE,
    REFRAME_SHIFT,
    STATE_NAME,
    TrainingInterrupted,
    epoch_line,
    framing_crops,
    framing_loss,
    reframed,
    run_summary,
    train,
)
from ml.training_data import augment, build_items

from .training import interrupt_validation, tiny_config, write_made_from_dataset

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


def log_of(run) -> list[dict]:
    return [json.loads(line) for line in (run / LOG_NAME).read_text().splitlines()]


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory, tiny_dataset):
    """tiny_run's configuration stopped at the end of its second epoch's training, before that
    epoch was saved: (its folder, the message it stopped with). Copy it before resuming it."""
    out = tmp_path_factory.mktemp("interrupted") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        interrupt_validation(monkeypatch, at=2)
        with pytest.raises(KeyboardInterrupt) as stopped:
            train(tiny_config(tiny_dataset, out))
    return out, str(stopped.value)


def copy_of(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


def test_an_interruption_says_which_epoch_is_saved_and_how_to_go_on(interrupted_run):
    run, message = interrupted_run
    assert torch.load(run / STATE_NAME, weights_only=True)["epoch"] == 0
    assert message == (
        f"interrupted during epoch 2; the last finished epoch (1 of 2) is saved in {run / STATE_NAME}: "
        "run the same command again to resume"
    )


def test_an_interruption_before_any_epoch_finished_says_nothing_is_saved(tmp_path, tiny_dataset, monkeypatch):
    interrupt_validation(monkeypatch, at=1)
    with pytest.raises(TrainingInterrupted, match="during epoch 1, before any epoch finished: nothing is saved"):
        train(tiny_config(tiny_dataset, tmp_path / "run", epochs=1))
    assert not (tmp_path / "run" / STATE_NAME).exists()


def test_an_interrupted_run_resumes_where_it_stopped_on_the_same_schedule(tmp_path, tiny_dataset, tiny_run, interrupted_run, capsys):
    run = copy_of(interrupted_run[0], tmp_path)
    train(tiny_config(tiny_dataset, run))

    assert f"resuming from epoch 2 of 2 ({run / STATE_NAME})" in capsys.readouterr().out
    resumed, straight = log_of(run), log_of(tiny_run)
    assert [r["epoch"] for r in resumed] == [1, 2]
    assert [r["lr"] for r in resumed] == [r["lr"] for r in straight], "the learning rate goes on where it stopped"
    assert [r["train_loss"] for r in resumed] == pytest.approx([r["train_loss"] for r in straight], rel=1e-5)


def test_a_resumed_run_draws_the_dropout_it_would_have_drawn(tmp_path, tiny_dataset, monkeypatch):
    config = lambda out: tiny_config(tiny_dataset, out, arch="mobilenet_v2", calibrate=False)  # it has dropout
    train(config(tmp_path / "straight"))
    with monkeypatch.context() as patched:
        interrupt_validation(patched, at=2)
        with pytest.raises(KeyboardInterrupt):
            train(config(tmp_path / "resumed"))
    train(config(tmp_path / "resumed"))

    second = lambda run: log_of(run)[1]["train_loss"]
    assert second(tmp_path / "resumed") == pytest.approx(second(tmp_path / "straight"), rel=1e-5)


def test_it_refuses_to_resume_a_run_with_other_settings(tmp_path, tiny_dataset, tiny_run):
    run = copy_of(tiny_run, tmp_path)
    before = (run / LOG_NAME).read_text()

    with pytest.raises(ValueError) as refused:
        train(tiny_config(tiny_dataset, run, seed=4, val_fraction=0.5))

    message = str(refused.value)
    assert "--seed: 3 -> 4" in message and "--val-fraction: 0.34 -> 0.5" in message
    assert "another --out" in message and "--restart" in message
    assert (run / LOG_NAME).read_text() == before
    assert torch.load(run / STATE_NAME, weights_only=True)["epoch"] == 1


def test_it_refuses_to_resume_with_the_same_data_under_another_folder_name(tmp_path, tiny_dataset, tiny_run):
    run = copy_of(tiny_run, tmp_path)
    moved = shutil.copytree(tiny_dataset, tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="DATA: "):
        train(tiny_config(moved, run))


def test_it_refuses_to_resume_when_the_data_changed_under_it(tmp_path, tiny_dataset, monkeypatch):
    data = shutil.copytree(tiny_dataset, tmp_path / "data")
    with monkeypatch.context() as patched:
        interrupt_validation(patched, at=2)
        with pytest.raises(KeyboardInterrupt):
            train(tiny_config(data, tmp_path / "run", calibrate=False))
    with (data / "index.csv").open("a") as fh:  # two more people's files listed
        fh.write("real/p0.png,real,person12\nfake/p0.png,fake,person13\n")

    with pytest.raises(ValueError, match="the data changed since the run .* 16 training items, 8 validation files"):
        train(tiny_config(data, tmp_path / "run", calibrate=False))


def test_it_refuses_a_folder_holding_a_log_but_no_state_to_resume(tmp_path, tiny_dataset, tiny_run):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_run / LOG_NAME, run / LOG_NAME)
    with pytest.raises(ValueError, match="holds the log of an earlier run .* but no last_state.pt.*--restart"):
        train(tiny_config(tiny_dataset, run))
    assert (run / LOG_NAME).read_text() == (tiny_run / LOG_NAME).read_text()


def test_it_refuses_to_lengthen_a_run_and_says_how_to_train_on_from_it(tmp_path, tiny_dataset, tiny_run):
    run = copy_of(tiny_run, tmp_path)
    with pytest.raises(ValueError) as refused:
        train(tiny_config(tiny_dataset, run, epochs=3))
    message = str(refused.value)
    assert "--epochs: 2 -> 3" in message and "cosine" in message
    assert f"--init {run / BEST_NAME} --out NEW_FOLDER" in message
    assert "validation files into training" not in message, "only the epochs changed"


def test_a_restart_moves_the_earlier_run_aside_and_starts_over(tmp_path, tiny_dataset, tiny_run, capsys):
    run = copy_of(tiny_run, tmp_path)
    train(tiny_config(tiny_dataset, run, seed=4, epochs=1, calibrate=False), restart=True)

    [aside] = run.glob("replaced-*")
    assert f"moved to {aside}/" in capsys.readouterr().out
    assert (aside / LOG_NAME).read_text() == (tiny_run / LOG_NAME).read_text()
    assert (aside / BEST_NAME).read_bytes() == (tiny_run / BEST_NAME).read_bytes()
    assert [r["epoch"] for r in log_of(run)] == [1]
    assert load_checkpoint(run / BEST_NAME)[1].training["seed"] == 4


def test_a_finished_run_run_again_says_so_and_trains_nothing(tmp_path, tiny_dataset, tiny_run, capsys):
    run = copy_of(tiny_run, tmp_path)
    best = train(tiny_config(tiny_dataset, run))

    assert best == run / BEST_NAME and best.read_bytes() == (tiny_run / BEST_NAME).read_bytes()
    assert "this run is finished: all 2 epochs are done" in capsys.readouterr().out
    assert (run / LOG_NAME).read_text() == (tiny_run / LOG_NAME).read_text()


def test_a_finished_run_left_uncalibrated_is_calibrated_when_run_again_with_calibration(tmp_path, tiny_dataset, tiny_run):
    run = copy_of(tiny_run, tmp_path)
    model, spec = load_checkpoint(run / BEST_NAME)
    training = {k: v for k, v in spec.training.items() if k != "calibration"}
    save_checkpoint(model, run / BEST_NAME, replace(spec, training=training, temperature=1.0, threshold=0.5, threshold_real=None))
    assert any("not calibrated (--no-calibrate)" in line for line in run_summary(run / BEST_NAME, calibrate=False))

    train(tiny_config(tiny_dataset, run))

    assert "calibration" in load_checkpoint(run / BEST_NAME)[1].training


def test_a_state_that_cannot_be_read_is_named_with_the_way_out(tmp_path, tiny_dataset, tiny_run):
    run = copy_of(tiny_run, tmp_path)
    (run / STATE_NAME).write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(CheckpointError, match=f"{run / STATE_NAME} cannot be read.*--restart"):
        train(tiny_config(tiny_dataset, run))


def test_an_interruption_while_the_state_is_written_leaves_the_previous_state_whole(tmp_path, tiny_dataset, monkeypatch):
    real_save, states = torch.save, []

    def save(obj, path, *args, **kwargs):
        if STATE_NAME in str(path):
            states.append(path)
            if len(states) == 2:  # the second epoch's state: half written, then Ctrl-C
                open(path, "wb").write(b"PK\x03\x04 half")
                raise KeyboardInterrupt
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tiny_dataset, tmp_path / "run", calibrate=False))
    monkeypatch.undo()

    assert torch.load(tmp_path / "run" / STATE_NAME, weights_only=True)["epoch"] == 0
    assert [r["epoch"] for r in log_of(tmp_path / "run")] == [1], "no line for an epoch whose state was not saved"


def test_a_resumed_run_drops_log_lines_of_epochs_that_were_never_saved(tmp_path, tiny_dataset, interrupted_run):
    run = copy_of(interrupted_run[0], tmp_path)
    with (run / LOG_NAME).open("a") as fh:  # as the log was left when lines came before their state
        fh.write(json.dumps({"epoch": 2, "train_loss": 9.0}) + "\n")
    train(tiny_config(tiny_dataset, run, calibrate=False))

    assert [(r["epoch"], r["train_loss"] == 9.0) for r in log_of(run)] == [(1, False), (2, False)]


def test_a_resumed_run_restores_the_line_of_its_last_saved_epoch(tmp_path, tiny_dataset, interrupted_run):
    run = copy_of(interrupted_run[0], tmp_path)
    first = (run / LOG_NAME).read_text()
    (run / LOG_NAME).write_text("")  # interrupted between saving epoch 1 and writing its line
    train(tiny_config(tiny_dataset, run, calibrate=False))

    lines = (run / LOG_NAME).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2] and lines[0] + "\n" == first


def test_it_refuses_data_of_one_class_before_writing_anything(tmp_path, tiny_dataset):
    data = tmp_path / "reals"
    shutil.copytree(tiny_dataset / "real", data / "real")
    with pytest.raises(ValueError, match="holds only real files \\(12\\): validation needs both, fakes of the data's own"):
        train(tiny_config(data, tmp_path / "run", fakes="sbi"))
    assert not (tmp_path / "run" / STATE_NAME).exists() and not (tmp_path / "run" / BEST_NAME).exists()


def test_it_refuses_zero_epochs_before_writing_anything(tmp_path, tiny_dataset):
    with pytest.raises(ValueError, match="--epochs must be 1 or more"):
        train(tiny_config(tiny_dataset, tmp_path / "run", epochs=0))
    assert not (tmp_path / "run").exists()


def test_an_epoch_line_says_when_there_is_no_auc_and_what_accuracy_is_measured_at():
    metrics = {"roc_auc": None, "accuracy": 0.5, "f1": 0.0, "threshold": 0.5}
    line = epoch_line(2, 3, 0.69, metrics, 4.0)
    assert line == "epoch 2/3: loss 0.6900  val AUC n/a (validation holds one class)  acc 0.5000  F1 0.0000 (at 0.5, before calibration)  (4 s)"


def test_a_run_is_split_by_the_column_it_is_told_and_records_it(tmp_path, tiny_dataset):
    data = write_made_from_dataset(tmp_path / "data", tiny_dataset)
    _, by_file = group_split(folder_samples(data), val_fraction=0.3, seed=3)
    assert len(by_file) == 7, "split by each file's own group, 7 of 24 files are held out"

    best = train(tiny_config(data, tmp_path / "run", epochs=1, calibrate=False, group_by="made_from", val_fraction=0.3))

    training = load_checkpoint(best)[1].training
    assert training["group_by"] == "made_from"
    assert training["n_val"] == 8, "4 of 12 people held out, with their real and their fake file"


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
