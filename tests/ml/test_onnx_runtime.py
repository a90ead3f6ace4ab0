"""The CPU worker's runtime (ml/onnx_runtime.py): the shipped models' ONNX exports must score,
and draw heatmaps, as the checkpoints do in torch, and a worker using them never loads torch."""

import json
import shutil
import subprocess
import threading
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml import load_detector
from ml.__main__ import main
from ml.detector import DEFAULT_CHECKPOINT
from ml.errors import CheckpointError
from ml.heatmaps import heatmap_of
from ml.onnx_runtime import OnnxFaceSwap, OnnxSyntheticModel, file_sha256, load_export
from ml.options import DetectorOptions
from ml.synthetic_spec import DEFAULT_SYNTHETIC_CHECKPOINT

from tests.media import faces_of_the_astronaut, moving_face_frames, write_video

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def both():
    """The installed models under each runtime."""
    return load_detector(device="cpu", runtime="onnx"), load_detector(device="cpu", runtime="torch")


def real_face_crops(detector, astronaut) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each model's crops of the faces found in the astronaut pictures (several framings)."""
    swap, synthetic = [], []
    for image in faces_of_the_astronaut(astronaut).values():
        boxes, _, _ = detector.find_confirmed_faces(image, DetectorOptions())
        for box in boxes:
            swap.append(detector.crop(image, box))
            synthetic.append(detector.synthetic.crop(image, box))
    assert len(swap) >= 4
    return swap, synthetic


@pytest.mark.parametrize(("checkpoint", "kind"), [(DEFAULT_CHECKPOINT, OnnxFaceSwap), (DEFAULT_SYNTHETIC_CHECKPOINT, OnnxSyntheticModel)])
def test_the_shipped_exports_were_made_from_the_shipped_checkpoints(checkpoint, kind):
    model, why = load_export(kind, checkpoint, file_sha256(checkpoint))
    assert why is None, f"{why}: after changing a checkpoint, run `make export-onnx`"
    assert model.source_sha256 == file_sha256(checkpoint)


def test_the_exports_score_real_faces_and_draw_heatmaps_as_torch_does(both, astronaut):
    onnx, torch_runtime = both
    assert (onnx.runtimes, torch_runtime.runtimes) == ("onnx", "torch")
    swap, synthetic = real_face_crops(onnx, astronaut)

    (scores, cams), (expected, expected_cams) = onnx.classify_with_cams(swap), torch_runtime.classify_with_cams(swap)
    assert np.abs(scores - expected).max() < 1e-5
    assert any(reference.max() > 0 for reference in expected_cams)  # a real face may show no fake evidence at all
    for crop, cam, reference in zip(swap, cams, expected_cams):
        assert cam.shape == reference.shape
        assert np.abs(heatmap_of(cam, crop.shape[:2]) - heatmap_of(reference, crop.shape[:2])).max() < 1e-4
    values = onnx.synthetic.score(synthetic)
    assert np.abs(values - torch_runtime.synthetic.score(synthetic)).max() < 1e-5
    assert values.dtype == scores.dtype == np.float64


def test_a_video_gets_the_same_analysis_from_either_runtime(both, astronaut, tmp_path):
    path = write_video(tmp_path / "clip.mp4", moving_face_frames(astronaut, 10, size=(480, 360)), fps=10)
    a, b = (detector.analyze(path) for detector in both)
    assert (a.verdict, a.fake_kind, a.faces_count) == (b.verdict, b.fake_kind, b.faces_count) and a.faces_count > 4
    assert a.fake_probability == pytest.approx(b.fake_probability, abs=1e-5)
    assert a.synthetic_probability == pytest.approx(b.synthetic_probability, abs=1e-5)
    for x, y in zip(a.frames, b.frames):
        assert [f.box for f in x.faces] == [f.box for f in y.faces]
        assert [f.fake_probability for f in x.faces] == pytest.approx([f.fake_probability for f in y.faces], abs=1e-5)
        assert [f.heatmap_png is None for f in x.faces] == [f.heatmap_png is None for f in y.faces]
    assert a.model_version == b.model_version and a.synthetic_model_version == b.synthetic_model_version


def test_the_default_detector_analyses_a_photo_without_loading_torch(tmp_path, astronaut):
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), astronaut)
    script = (
        "import json, sys\n"
        "from ml import load_detector\n"
        "detector = load_detector()\n"
        f"result = detector.analyze({str(photo)!r})\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'runtimes': detector.runtimes,"
        " 'faces': result.faces_count, 'verdict': result.verdict}))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""}  # the worker's case: no GPU to use
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"torch": False, "runtimes": "onnx", "faces": 1, "verdict": seen["verdict"]}
    assert seen["verdict"] in ("real", "uncertain", "fake")


def test_an_export_of_another_version_of_the_checkpoint_is_never_used(tmp_path, capsys):
    checkpoint = tmp_path / "detector.pt"
    assert main(["export", str(DEFAULT_CHECKPOINT), str(checkpoint), "--version", "retrained"]) == 0
    shutil.copy(DEFAULT_CHECKPOINT.with_suffix(".onnx"), tmp_path / "detector.onnx")  # the old model's export

    with pytest.raises(CheckpointError, match="exported from another version of detector.pt"):
        load_detector(checkpoint, device="cpu", synthetic=False, runtime="onnx")
    detector = load_detector(checkpoint, device="cpu", synthetic=False)  # auto: torch scores it
    assert detector.runtimes == "torch" and detector.spec.version == "retrained"
    (tmp_path / "detector.onnx").unlink()
    with pytest.raises(CheckpointError, match="no ONNX export"):
        load_detector(checkpoint, device="cpu", synthetic=False, runtime="onnx")
    with pytest.raises(ValueError, match="CPU"):
        load_detector(checkpoint, device="cuda", runtime="onnx")


def test_export_onnx_writes_an_export_that_scores_like_its_checkpoint(untrained_checkpoint, tmp_path, astronaut, capsys):
    checkpoint = tmp_path / "mine.pt"
    shutil.copy(untrained_checkpoint, checkpoint)
    assert main(["export-onnx", str(checkpoint)]) == 0
    assert "mine.onnx" in capsys.readouterr().out

    onnx = load_detector(checkpoint, device="cpu", synthetic=False)
    torch_runtime = load_detector(checkpoint, device="cpu", synthetic=False, runtime="torch")
    assert (onnx.runtimes, onnx.version) == ("onnx", torch_runtime.version)
    size = onnx.spec.input_size
    crops = [cv2.resize(astronaut[60:170, 170:280], (size, size)), cv2.resize(astronaut, (size, size))]
    (scores, cams), (expected, expected_cams) = onnx.classify_with_cams(crops), torch_runtime.classify_with_cams(crops)
    assert np.abs(scores - expected).max() < 1e-5
    for cam, reference in zip(cams, expected_cams):
        assert np.abs(heatmap_of(cam, (size, size)) - heatmap_of(reference, (size, size))).max() < 1e-4


def test_the_batches_run_on_the_model_lanes_and_score_as_one_after_the_other(both, astronaut, monkeypatch):
    onnx, _ = both
    swap, _ = real_face_crops(onnx, astronaut)
    crops = (swap * 3)[:10]  # three batches of up to 4
    in_turn = onnx.model.scores_and_cams(crops)  # one batch after the other, on this thread
    threads = []
    run_batch = onnx.model._batch
    monkeypatch.setattr(onnx.model, "_batch", lambda batch: threads.append(threading.current_thread().name) or run_batch(batch))

    scores, cams = onnx.classify_with_cams(crops)

    assert len(threads) == 3 and all(name.startswith("models") for name in threads)
    assert np.abs(scores - in_turn[0]).max() < 1e-6 and len(cams) == len(crops)
    assert all(np.abs(a - b).max() < 1e-5 for a, b in zip(cams, in_turn[1]))
