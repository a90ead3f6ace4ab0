import json
import subprocess
import sys

import cv2


def run_ml(*args):
    return subprocess.run([sys.executable, "-m", "ml", *args], capture_output=True, text=True, timeout=300)


def test_predict_json_prints_one_object_per_file_and_reports_bad_files(tmp_path, astronaut, untrained_checkpoint):
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    done = run_ml("predict", str(bad), str(photo), "--json", "--checkpoint", str(untrained_checkpoint))
    assert done.returncode == 2
    [line] = done.stdout.splitlines()
    record = json.loads(line)
    assert record["file"] == str(photo)
    assert record["media_type"] == "image" and record["verdict"] in ("real", "fake")
    assert 0 <= record["fake_probability"] <= 1 and "threshold" in record
    [first] = record["frames"]
    assert first["index"] == 0 and first["time"] == 0.0
    assert len(first["faces"][0]["box"]) == 4 and "fake_probability" in first["faces"][0]
    [error] = done.stderr.splitlines()
    assert error.startswith("error: bad.jpg: not a supported image")


def test_predict_refuses_to_run_without_a_trained_checkpoint(tmp_path, astronaut):
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), astronaut)
    done = run_ml("predict", str(photo), "--checkpoint", str(tmp_path / "none.pt"))
    assert done.returncode == 2
    assert "no model checkpoint" in done.stderr and done.stdout == ""


def test_export_writes_a_smaller_fp16_copy_with_a_new_threshold(tmp_path, untrained_checkpoint):
    from ml.model import load_checkpoint

    target = tmp_path / "shipped.pt"
    done = run_ml("export", str(untrained_checkpoint), str(target), "--threshold", "0.6", "--version", "v2")
    assert done.returncode == 0, done.stderr
    assert target.stat().st_size < 0.6 * untrained_checkpoint.stat().st_size
    _, spec = load_checkpoint(target)
    assert (spec.threshold, spec.version, spec.name) == (0.6, "v2", "untrained-test-model")
