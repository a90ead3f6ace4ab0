"""`python -m ml`: driven in-process through `main(argv)`, plus one real `python -m ml` run."""

import json
import subprocess
import sys

import cv2
import pytest

from ml.__main__ import EXIT_USAGE, main


def test_predict_json_prints_one_object_per_file_and_reports_bad_files(tmp_path, astronaut, untrained_checkpoint, capsys):
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    status = main(["predict", str(bad), str(photo), "--json", "--checkpoint", str(untrained_checkpoint)])
    out, err = capsys.readouterr()
    assert status == EXIT_USAGE
    [line] = out.splitlines()
    record = json.loads(line)
    assert record["file"] == str(photo)
    assert record["media_type"] == "image" and record["verdict"] in ("real", "fake")
    assert 0 <= record["fake_probability"] <= 1 and "threshold" in record
    [first] = record["frames"]
    assert first["index"] == 0 and first["time"] == 0.0
    assert len(first["faces"][0]["box"]) == 4 and "fake_probability" in first["faces"][0]
    [error] = err.splitlines()
    assert error.startswith("error: bad.jpg: not a supported image")


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
