"""`python -m ml`: driven in-process through `main(argv)`, plus one real `python -m ml` run."""

import json
import shutil
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from ml.__main__ import EXIT_INTERRUPTED, EXIT_USAGE, main
from ml.model import load_checkpoint
from ml.train import BEST_NAME, STATE_NAME

from .training import interrupt_validation

# tiny_config's settings (tests/ml/training.py) as the command line gives them
TINY_ARGS = [
    "--arch", "resnet18", "--pretrained", "none", "--fakes", "real", "--cropped", "--epochs", "2", "--batch-size", "8",
    "--lr", "1e-3", "--input-size", "64", "--val-fraction", "0.34", "--seed", "3",
]


def errors_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def test_predict_json_prints_one_object_per_file_and_reports_bad_files(tmp_path, astronaut, untrained_checkpoint, capsys):
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    status = main(["predict", str(bad), str(photo), "--json", "--checkpoint", str(untrained_checkpoint)])
    out, err = capsys.readouterr()
    assert status == EXIT_USAGE
    failed, line = out.splitlines()
    [error] = errors_in(err)
    assert error.startswith("error: bad.jpg: not a supported image")
    assert json.loads(failed) == {"file": str(bad), "error": error.removeprefix("error: ")}, "the same message"
    record = json.loads(line)
    assert record["file"] == str(photo)
    assert record["media_type"] == "image" and record["verdict"] in ("real", "fake")
    assert 0 <= record["fake_probability"] <= 1 and "threshold" in record
    [first] = record["frames"]
    assert first["index"] == 0 and first["time"] == 0.0
    assert len(first["faces"][0]["box"]) == 4 and "fake_probability" in first["faces"][0]


def test_predict_warns_once_that_an_uncalibrated_checkpoint_is_uncalibrated(tmp_path, astronaut, untrained_checkpoint, capsys):
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut)
    assert main(["predict", str(photo), str(photo), "--checkpoint", str(untrained_checkpoint)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: {untrained_checkpoint} is not calibrated (temperature 1, threshold 0.5, no uncertain band): "
        "its probabilities are raw; finish its training run or use `python -m ml calibrate`"
    ]


def test_a_device_torch_cannot_use_is_refused_with_a_clear_error(tmp_path, untrained_checkpoint, capsys):
    assert main(["predict", "x.jpg", "--device", "gpu", "--checkpoint", str(untrained_checkpoint)]) == EXIT_USAGE
    assert errors_in(capsys.readouterr().err) == ["error: --device gpu: not a device torch knows; use cpu, cuda or cuda:N"]
    if not torch.cuda.is_available():
        assert main(["predict", "x.jpg", "--device", "cuda", "--checkpoint", str(untrained_checkpoint)]) == EXIT_USAGE
        [error] = errors_in(capsys.readouterr().err)
        assert error.startswith("error: --device cuda: torch sees no CUDA GPU here")


def test_train_refuses_zero_epochs_and_names_no_checkpoint(tmp_path, tiny_dataset, capsys):
    status = main(["train", str(tiny_dataset), "--out", str(tmp_path / "run"), *TINY_ARGS, "--epochs", "0"])
    out, err = capsys.readouterr()
    assert status == EXIT_USAGE and "--epochs must be 1 or more" in err
    assert "best checkpoint" not in out and not (tmp_path / "run").exists()


def test_train_says_what_it_saved_when_interrupted_and_exits_130(tmp_path, tiny_dataset, monkeypatch, capsys):
    out = tmp_path / "run"
    interrupt_validation(monkeypatch, at=2)
    assert main(["train", str(tiny_dataset), "--out", str(out), *TINY_ARGS, "--no-calibrate"]) == EXIT_INTERRUPTED
    stdout, err = capsys.readouterr()
    assert err.splitlines()[-1] == (
        f"interrupted during epoch 2; the last finished epoch (1 of 2) is saved in {out / STATE_NAME}: "
        "run the same command again to resume"
    )
    assert "Traceback" not in err and "best checkpoint" not in stdout


def test_train_stopped_by_sigterm_says_what_it_saved_as_for_ctrl_c(tmp_path, tiny_dataset, monkeypatch, capsys):
    def terminate():  # what the process would do on SIGTERM, without sending one to the test run
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)

    interrupt_validation(monkeypatch, at=1, action=terminate)
    args = ["train", str(tiny_dataset), "--out", str(tmp_path / "run"), *TINY_ARGS, "--epochs", "1"]
    assert main(args) == EXIT_INTERRUPTED
    assert "interrupted during epoch 1, before any epoch finished" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, "the handler is put back"


def test_train_ends_by_saying_which_epoch_it_kept_and_how_it_was_calibrated(tmp_path, tiny_dataset, tiny_run, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")  # finished: says so, then sums it up
    assert main(["train", str(tiny_dataset), "--out", str(run), *TINY_ARGS]) == 0

    out = capsys.readouterr().out.splitlines()
    spec = load_checkpoint(run / BEST_NAME)[1]
    kept, report = spec.training["epochs"], spec.training["calibration"]
    assert out[0] == f"this run is finished: all 2 epochs are done ({run / STATE_NAME})"
    assert out[1].startswith(f"best epoch: {kept} of 2: validation AUC ")
    assert "at 0.5 before calibration (4 real, 4 fake validation files)" in out[1]
    assert out[2].startswith(f"calibrated on the validation split: temperature {report['temperature']:.3f}; real below")
    assert out[3] == f"best checkpoint: {run / BEST_NAME}"


def test_train_without_calibration_says_it_was_skipped(tmp_path, tiny_dataset, capsys):
    args = ["train", str(tiny_dataset), "--out", str(tmp_path / "run"), *TINY_ARGS, "--epochs", "1", "--no-calibrate"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "not calibrated (--no-calibrate): temperature 1, threshold 0.5, no uncertain band" in out
    assert out.splitlines()[0].startswith("epoch 1/1: loss ") and "(at 0.5, before calibration)" in out


def test_train_on_sources_says_where_it_looked_for_the_data_before_writing_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--source", "dfdc", "--out", "run"]) == EXIT_USAGE
    [error] = errors_in(capsys.readouterr().err)
    assert f"no data folder at ../shared/data (looked in {(tmp_path / '../shared/data').resolve()})" in error
    assert "--data-root PATH" in error
    assert list(tmp_path.iterdir()) == [], "neither runs/sources nor the run folder"


def test_evaluate_warns_of_files_left_out_and_of_an_uncalibrated_checkpoint(tmp_path, astronaut, untrained_checkpoint, capsys):
    data = tmp_path / "photos"
    for label, image in (("real", astronaut), ("fake", astronaut[:, ::-1])):
        (data / label).mkdir(parents=True)
        cv2.imwrite(str(data / label / "face.jpg"), image)
    cv2.imwrite(str(data / "real" / "wall.jpg"), np.full((200, 200, 3), 100, np.uint8))

    args = ["evaluate", str(data), "--out", str(tmp_path / "eval"), "--checkpoint", str(untrained_checkpoint)]
    assert main(args) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert [w.split(":")[1].strip() for w in warnings] == [
        f"{untrained_checkpoint} is not calibrated (temperature 1, threshold 0.5, no uncertain band)",
        "1 of 3 files are left out of the metrics (1 with no face found, 0 unreadable; listed in predictions.csv)",
        "no face was found in 33% of the files",
    ]
    assert "--cropped" in warnings[-1]


def test_prepare_refuses_data_of_one_class(tmp_path, tiny_dataset, capsys):
    shutil.copytree(tiny_dataset / "fake", tmp_path / "data" / "fake")
    assert main(["prepare", str(tmp_path / "data"), "--out", str(tmp_path / "crops")]) == EXIT_USAGE
    assert "holds only fake files (12)" in capsys.readouterr().err
    assert not (tmp_path / "crops").exists()


def test_prepare_keeps_the_column_it_is_told_to_group_by(tmp_path, astronaut):
    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    (data / "fake").mkdir()
    frame = cv2.resize(astronaut, (192, 192))
    cv2.imwrite(str(data / "real" / "p0.png"), frame)
    cv2.imwrite(str(data / "fake" / "p0.png"), frame[:, ::-1])
    (data / "index.csv").write_text(
        "file,label,group,made_from\nreal/p0.png,real,real_p0,person_0\nfake/p0.png,fake,fake_p0,person_0\n"
    )
    assert main(["prepare", str(data), "--out", str(tmp_path / "crops"), "--group-by", "made_from"]) == 0
    rows = (tmp_path / "crops" / "index.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and {row.split(",")[2] for row in rows} == {"person_0"}


def test_predict_refuses_to_run_without_a_trained_checkpoint(tmp_path, astronaut, capsys):
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), astronaut)
    status = main(["predict", str(photo), "--checkpoint", str(tmp_path / "none.pt")])
    out, err = capsys.readouterr()
    assert status == EXIT_USAGE
    assert "no model checkpoint" in err and out == ""


def test_export_writes_a_smaller_fp16_copy_with_a_new_threshold(tmp_path, untrained_checkpoint):
    from ml.model import load_checkpoint

    target = tmp_path / "shipped.pt"
    assert main(["export", str(untrained_checkpoint), str(target), "--threshold", "0.6", "--version", "v2"]) == 0
    assert target.stat().st_size < 0.6 * untrained_checkpoint.stat().st_size
    _, spec = load_checkpoint(target)
    assert (spec.threshold, spec.version, spec.name) == (0.6, "v2", "untrained-test-model")


def test_python_dash_m_ml_runs_and_exits_with_the_commands_status(tmp_path, astronaut, untrained_checkpoint):
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut)
    done = subprocess.run(
        [sys.executable, "-m", "ml", "predict", str(photo), "--checkpoint", str(untrained_checkpoint)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{photo}: ") and "fake probability" in done.stdout


def test_predict_needs_nothing_from_the_training_extra(tmp_path, astronaut, untrained_checkpoint):
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut)
    code = (
        "import runpy, sys\n"
        "sys.modules['tqdm'] = None  # as on a site install, without the [train] extra\n"
        f"sys.argv = ['ml', 'predict', {str(photo)!r}, '--checkpoint', {str(untrained_checkpoint)!r}]\n"
        "runpy.run_module('ml', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "fake probability" in done.stdout, done.stderr



@pytest.mark.parametrize(
    "setting, why", [("1.2", "expected STEP:NEIGHBOURS"), ("x:y", "expected STEP:NEIGHBOURS"), ("1.0:3", "must be over 1")]
)
def test_check_faces_refuses_a_search_setting_it_cannot_use(setting, why, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["check-faces", "boxes.csv", "--search", setting])
    assert stopped.value.code == EXIT_USAGE
    assert why in capsys.readouterr().err
