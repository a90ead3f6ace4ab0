import json

import cv2
import numpy as np
import pytest

from ml import load_detector
from ml.detector import file_score, verdict_for
from ml.errors import CheckpointError, MediaError
from ml.explain import gradcam
from ml.results import Box, FaceResult, FrameResult

from .factories import moving_face_frames, write_video


def frame(*scores):
    return FrameResult(0, 0.0, tuple(FaceResult(Box(0, 0, 1, 1), s) for s in scores))


def test_a_frame_scores_as_its_most_suspicious_face():
    assert frame(0.1, 0.9, 0.3).fake_probability == 0.9
    assert frame().fake_probability is None


def test_a_file_scores_as_the_mean_of_frames_that_have_a_face():
    frames = [frame(0.2), frame(), frame(0.9, 0.1), frame(0.7)]
    assert file_score([f.fake_probability for f in frames]) == pytest.approx((0.2 + 0.9 + 0.7) / 3)


def test_the_verdict_follows_the_threshold_and_is_never_real_without_a_face():
    assert verdict_for(0.6, 0.6) == "fake"
    assert verdict_for(0.59, 0.6) == "real"
    assert verdict_for(None, 0.6) == "no_face"
    assert file_score([None, None]) is None


def test_it_analyses_a_photo_down_to_each_face(tmp_path, astronaut, detector):
    path = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(path), astronaut)
    seen = []
    result = detector.analyze(path, progress=seen.append)
    assert (result.media_type, result.width, result.height, result.frame_count) == ("image", 512, 512, 1)
    [only] = result.frames
    [face] = only.faces
    assert 190 <= face.box.x + face.box.w / 2 <= 250
    assert result.fake_probability == face.fake_probability
    assert 0.0 <= result.fake_probability <= 1.0
    assert result.verdict == ("fake" if result.fake_probability >= result.threshold else "real")
    assert result.model_name == "untrained-test-model"
    assert set(result.timings) == {"decode", "faces", "classify", "explain"}
    assert seen == sorted(seen) and seen[-1] == 1.0
    [explanation] = result.explanations[:1]
    heat = cv2.imdecode(np.frombuffer(explanation.png, np.uint8), cv2.IMREAD_COLOR)
    assert heat.shape == (224, 224, 3)
    json.dumps(result.to_json_dict())  # plain values only


def test_it_analyses_sampled_frames_of_a_video(tmp_path, astronaut, detector):
    path = write_video(tmp_path / "clip.mp4", moving_face_frames(astronaut, 12), fps=12)
    result = detector.analyze(path, max_frames=4, explain=1)
    assert result.media_type == "video"
    assert [f.index for f in result.frames] == [0, 4, 7, 11]
    assert [f.time for f in result.frames] == pytest.approx([0, 4 / 12, 7 / 12, 11 / 12], abs=1e-3)
    assert all(len(f.faces) == 1 for f in result.frames)
    assert result.duration == pytest.approx(1.0)
    assert result.fake_probability == pytest.approx(np.mean([f.fake_probability for f in result.frames]))
    assert len(result.explanations) == 1


def test_a_photo_without_a_face_is_no_face_not_real(tmp_path, detector):
    path = tmp_path / "wall.png"
    cv2.imwrite(str(path), np.full((300, 400, 3), 128, np.uint8))
    result = detector.analyze(path)
    assert result.verdict == "no_face"
    assert result.fake_probability is None
    assert result.faces_count == 0 and result.explanations == ()


def test_unreadable_files_raise_media_errors(tmp_path, detector):
    text = tmp_path / "photo.jpg"
    text.write_text("hello")
    with pytest.raises(MediaError):
        detector.analyze(text)


def test_gradcam_gives_a_heatmap_over_the_crop(astronaut, detector):
    crop = cv2.resize(astronaut[60:170, 170:280], (224, 224))
    heat = gradcam(detector.model, detector.spec, crop)
    assert heat.shape == (224, 224) and heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0


def test_loading_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="no model checkpoint"):
        load_detector(tmp_path / "missing.pt")
