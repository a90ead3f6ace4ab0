import subprocess
import sys
from unittest import mock

from ml.results import MEDIA_TYPES, VERDICTS, AnalysisResult, Box, FaceResult, FrameResult, TrackResult

from detection import inference
from detection.models import Analysis

from .base import BaseTestCase, PipelineTestCase, astronaut_jpeg, astronaut_mp4


def test_the_web_process_loads_no_decoder_or_model_to_check_an_upload():
    code = (
        "import sys, django; django.setup(); "
        "import deepfake_site.urls, detection.services; "
        "print(sorted(m for m in ('cv2', 'numpy', 'PIL', 'torch') if m in sys.modules))"
    )
    env_code = "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'deepfake_site.settings'); " + code
    result = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def video_result() -> AnalysisResult:
    """Two sampled frames (file frames 3 and 7); frame 7 has two people, one with a heatmap."""
    return AnalysisResult(
        media_type="video",
        verdict="uncertain",
        fake_probability=0.7,
        threshold=0.8,
        threshold_real=0.3,
        frames=(
            FrameResult(index=3, time=0.3, faces=(FaceResult(Box(1, 2, 30, 40), 0.6, track=1),), image_jpeg=b"JPEG3"),
            FrameResult(
                index=7,
                time=0.7,
                faces=(
                    FaceResult(Box(5, 6, 20, 20), 0.2, track=1),
                    FaceResult(Box(50, 60, 20, 20), 0.8, track=2, heatmap_png=b"PNG", crop=Box(47, 57, 26, 26)),
                ),
                faces_left_out=1,
                boxes_rejected=2,
            ),
        ),
        tracks=(
            TrackResult(id=1, fake_probability=0.4, frames=2, first_time=0.3, last_time=0.7, counted=True),
            TrackResult(id=2, fake_probability=0.8, frames=1, first_time=0.7, last_time=0.7, counted=False),
        ),
        model_name="m",
        model_version="v",
        timings={"decode": 0.123456789},
        width=320,
        height=240,
        frame_count=10,
        duration=1.0,
        thumbnail_jpeg=b"THUMB",
    )


def test_it_knows_photos_and_videos_by_their_first_bytes():
    head = inference.SNIFF_BYTES
    assert inference.sniff_media_type(astronaut_jpeg()[:head]) == Analysis.MediaType.IMAGE
    assert inference.sniff_media_type(astronaut_mp4()[:head]) == Analysis.MediaType.VIDEO
    assert inference.sniff_media_type(b"%PDF-1.7 not media at all") is None


def test_the_stored_verdicts_and_media_types_are_the_engines():
    assert tuple(Analysis.Verdict.values) == VERDICTS
    assert tuple(Analysis.MediaType.values) == MEDIA_TYPES


def test_it_fills_the_analysis_fields_media_type_included():
    fields = inference.result_fields(video_result())

    assert fields["verdict"] == "uncertain"
    assert (fields["threshold_real"], fields["threshold"]) == (0.3, 0.8)
    assert fields["frames_analysed"] == 2
    assert fields["faces_count"] == 3
    assert fields["frame_count"] == 10
    assert fields["timings"] == {"decode": 0.1235}
    assert fields["media_type"] == "video"  # the engine's: an animated GIF is sniffed as an image


class ResultRowsTests(BaseTestCase):
    def test_it_maps_frames_faces_tracks_and_their_files(self):
        analysis = self.analysis_for(self.alice)

        rows = inference.result_rows(analysis, video_result())

        self.assertEqual([(f.index, f.time, f.fake_probability) for f in rows.frames], [(3, 0.3, 0.6), (7, 0.7, 0.8)])
        self.assertEqual((rows.frames[1].faces_left_out, rows.frames[1].boxes_rejected), (1, 2))
        faces = [(frame.index, face.index, face.box, face.track) for frame, face in rows.faces]
        self.assertEqual([face.crop for _, face in rows.faces], [None, None, [47, 57, 26, 26]])
        self.assertEqual(faces, [(3, 0, [1, 2, 30, 40], 1), (7, 0, [5, 6, 20, 20], 1), (7, 1, [50, 60, 20, 20], 2)])
        self.assertEqual([(t.number, t.fake_probability, t.counted) for t in rows.tracks], [(1, 0.4, True), (2, 0.8, False)])
        files = {(type(row).__name__, field, name): content for row, field, name, content in rows.files}
        self.assertEqual(
            files,
            {
                ("Analysis", "thumbnail", "thumbnail.jpg"): b"THUMB",
                ("AnalysisFrame", "image", "3.jpg"): b"JPEG3",
                ("AnalysisFace", "heatmap", "7-1.png"): b"PNG",
            },
        )


class WarmUpTests(PipelineTestCase):
    def test_warming_up_loads_the_detector_and_runs_both_models(self):
        detector = inference.get_detector()
        with (
            mock.patch.object(detector, "classify_with_cams", wraps=detector.classify_with_cams) as classify,
            mock.patch.object(detector.synthetic, "score", wraps=detector.synthetic.score) as score,
        ):
            inference.warm_up()

        classify.assert_called()
        score.assert_called()
        self.assertIs(inference.get_detector(), detector)  # the first upload reuses it
