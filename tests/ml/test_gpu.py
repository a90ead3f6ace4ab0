"""The installed models on a CUDA GPU against the CPU, on real faces: a GPU worker must give the
CPU's verdicts, so the models score in true fp32 there (`ml.model.scoring_precision`; cuDNN's default,
TF32, moved probabilities by up to 0.005, fp16 autocast by up to 0.019).

CI has no GPU, so these are skipped there. On a machine with one:
`python -m pytest --noconftest tests/ml/test_gpu.py` (this module uses no fixture of the
conftest files, so it also runs where Django is not installed). Faces are confirmed with the
eye cascade here: the verifier runs on the CPU on both sides and is not what is compared.
It needs OpenCV 4 (`opencv-python-headless==4.14.0.94`): OpenCV 5 has no Haar cascades, and a
machine image that ships 5 fails the photo test with "no attribute 'CascadeClassifier'".
Last run: 5 passed on an NVIDIA H200 (torch 2.11.0+cu130, OpenCV 4.14 carried: the image's is
5.0.0), 2026-11-27, with the face search's padded retry and the verdict holds of ml/caution.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ml import load_detector
from ml.options import DetectorOptions
from tests.media import astronaut_bgr, faces_of_the_astronaut

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

OPTIONS = DetectorOptions(verifier="eyes", frame_image_size=0, thumbnail_size=0)


@pytest.fixture(scope="module")
def cpu():
    return load_detector(device="cpu", runtime="torch")


@pytest.fixture(scope="module")
def gpu():
    return load_detector(device="cuda")


def many_crops_of_the_astronaut(size: int) -> list[np.ndarray]:
    """70 crops of the real face, framed a little differently each time, some mirrored or darker:
    more than one GPU batch (64)."""
    photo = astronaut_bgr()
    crops = []
    for shift in range(-15, 20, 5):
        for scale in (0.8, 0.9, 1.0, 1.1, 1.2):
            x, y, w = 170 + shift, 30 + shift // 2, round(150 * scale)
            crop = cv2.resize(photo[y : y + w, x : x + w], (size, size), interpolation=cv2.INTER_AREA)
            crops += [crop, np.ascontiguousarray(cv2.convertScaleAbs(crop[:, ::-1], alpha=0.7, beta=0))]
    return crops


def test_on_a_gpu_the_models_leave_cudnns_precision_setting_as_they_found_it(gpu):
    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    gpu.classify(many_crops_of_the_astronaut(gpu.spec.input_size)[:2])
    gpu.synthetic.score(many_crops_of_the_astronaut(gpu.synthetic.spec.input_size)[:2])
    assert gpu.device.type == "cuda"
    assert conv.fp32_precision == before


# 1e-3, not the 0.01 a verdict allows: TF32 stays within 0.01 on most faces, and this is to
# catch it.
def test_on_a_gpu_face_swap_scores_equal_the_cpus(cpu, gpu):
    crops = many_crops_of_the_astronaut(cpu.spec.input_size)
    on_cpu, on_gpu = cpu.classify(crops), gpu.classify(crops)
    assert len(on_gpu) == len(crops) == 70
    assert np.abs(on_cpu - on_gpu).max() <= 1e-3


def test_on_a_gpu_synthetic_face_scores_equal_the_cpus(cpu, gpu):
    crops = many_crops_of_the_astronaut(cpu.synthetic.spec.input_size)
    on_cpu, on_gpu = cpu.synthetic.score(crops), gpu.synthetic.score(crops)
    assert len(on_gpu) == len(crops)
    assert np.abs(on_cpu - on_gpu).max() <= 1e-3


def test_a_photo_analysed_on_a_gpu_gets_the_cpus_verdict_and_heatmaps(cpu, gpu, tmp_path):
    for name, image in faces_of_the_astronaut(astronaut_bgr()).items():
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), image)
        a, b = cpu.analyze(path, OPTIONS), gpu.analyze(path, OPTIONS)
        assert a.faces_count == b.faces_count > 0, name
        assert (a.verdict, a.fake_kind) == (b.verdict, b.fake_kind), name
        assert a.fake_probability == pytest.approx(b.fake_probability, abs=1e-3), name
        assert a.synthetic_probability == pytest.approx(b.synthetic_probability, abs=1e-3), name
        heat_a = [face.heatmap_png for frame in a.frames for face in frame.faces if face.heatmap_png]
        heat_b = [face.heatmap_png for frame in b.frames for face in frame.faces if face.heatmap_png]
        assert len(heat_a) == len(heat_b) > 0, name


def test_on_a_gpu_calibration_sees_the_logits_the_cpu_gives(cpu, gpu):
    """The temperature and thresholds fitted at the end of training on a GPU come from these."""
    from ml.model import preprocess
    from ml.train import predict_logits

    batch = preprocess(many_crops_of_the_astronaut(cpu.spec.input_size), cpu.spec)
    loader = [(batch[i : i + 32], torch.zeros(len(batch[i : i + 32]), dtype=torch.long)) for i in range(0, len(batch), 32)]
    _, on_cpu = predict_logits(cpu.model, loader, cpu.device)
    _, on_gpu = predict_logits(gpu.model, loader, gpu.device)
    assert on_gpu.shape == on_cpu.shape == (70, 2)
    assert np.abs(on_cpu - on_gpu).max() <= 1e-3
