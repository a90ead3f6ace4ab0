"""`python -m ml precision-faces` / `precision-check` (ml/precision_check.py). The numbers it is
for need a GPU; here its CPU half runs for real, and the GPU half on the CPU, where every
precision is the CPU's fp32 and nothing may move."""

import json

import cv2
import numpy as np
import pytest

from ml.__main__ import main
from ml.model import GPU_PRECISIONS, gpu_precision
from tests.media import faces_of_the_astronaut


@pytest.fixture
def two_sources(tmp_path, astronaut):
    pictures = faces_of_the_astronaut(astronaut)
    real, other = tmp_path / "data" / "real", tmp_path / "data" / "other"
    real.mkdir(parents=True)
    other.mkdir()
    cv2.imwrite(str(real / "astronaut.png"), pictures["astronaut"])
    cv2.imwrite(str(real / "mirrored.jpg"), pictures["mirrored"])
    cv2.imwrite(str(other / "darker.png"), pictures["darker"])
    cv2.imwrite(str(other / "grey.png"), np.full((200, 200, 3), 128, np.uint8))  # no face: skipped
    return real, other


def test_faces_are_cut_from_each_folder_and_every_precision_on_a_cpu_gives_the_cpus_scores(two_sources, tmp_path, capsys):
    from ml import load_detector

    out, report = tmp_path / "faces.npz", tmp_path / "report.json"
    assert main(["precision-faces", *map(str, two_sources), "--out", str(out), "--per-source", "2"]) == 0
    with np.load(out) as data:
        faces = dict(data)
    assert sorted(faces["sources"]) == ["data/other", "data/real", "data/real"]
    detector = load_detector(device="cpu", runtime="torch")
    assert faces["swap"].shape == (3, detector.spec.input_size, detector.spec.input_size, 3)
    assert np.allclose(faces["swap_cpu"], detector.classify(list(faces["swap"])), atol=1e-6)
    assert np.allclose(faces["synthetic_cpu"], detector.synthetic.score(list(faces["synthetic"])), atol=1e-6)

    assert main(["precision-check", str(out), "--device", "cpu", "--repeats", "1", "--json", str(report)]) == 0
    rows = json.loads(report.read_text())
    assert list(rows) == list(GPU_PRECISIONS)
    for row in rows.values():
        for model in ("swap", "synthetic"):
            assert row[model]["largest_change"] <= 1e-6
            assert row[model]["verdicts_changed"] == 0
            assert row[model]["faces"] == 3
        assert row["faces_per_s_classify"] > 0
    assert "fp16" in capsys.readouterr().out


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="bf16"):
        with gpu_precision("bf16"):
            pass


def test_folders_without_a_face_are_refused_with_a_clear_error(tmp_path):
    from ml import load_detector
    from ml.precision_check import cut_faces

    folder = tmp_path / "empty"
    folder.mkdir()
    cv2.imwrite(str(folder / "grey.png"), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="no face found"):
        cut_faces(load_detector(device="cpu"), [folder], per_source=5)
