from ml.results import AnalysisResult, Box, Explanation, FaceResult, FrameResult

from detection import inference
from detection.models import Analysis

from .base import BaseTestCase, astronaut_jpeg, astronaut_mp4


def video_result() -> AnalysisResult:
    """Two sampled frames (file frames 3 and 7); frame 7 has two faces, one explained."""
    return AnalysisResult(
        media_type="video",
        verdict="fake",
        fake_probability=0.7,
        threshold=0.5,
        frames=(
            FrameResult(index=3, time=0.3, faces=(FaceResult(Box(1, 2, 30, 40), 0.6),)),
            FrameResult(
                index=7,
                time=0.7,
                faces=(FaceResult(Box(5, 6, 20, 20), 0.2), FaceResult(Box(50, 60, 20, 20), 0.8)),
            ),
        ),
        model_name="m",
        model_version="v",
        timings={"decode": 0.123456789},
        width=320,
        height=240,
        frame_count=10,
        duration=1.0,
        explanations=(Explanation(frame_index=7, face_index=1, fake_probability=0.8, png=b"PNG"),),
    )


class SniffMediaTypeTests(BaseTestCase):
    def test_it_knows_photos_and_videos_by_their_first_bytes(self):
        head = inference.SNIFF_BYTES
        self.assertEqual(inference.sniff_media_type(astronaut_jpeg()[:head]), Analysis.MediaType.IMAGE)
        self.assertEqual(inference.sniff_media_type(astronaut_mp4()[:head]), Analysis.MediaType.VIDEO)
        self.assertIsNone(inference.sniff_media_type(b"%PDF-1.7 not media at all"))


class ResultMappingTests(BaseTestCase):
    def test_it_fills_the_analysis_fields(self):
        fields = inference.result_fields(video_result())

        self.assertEqual(fields["verdict"], "fake")
        self.assertEqual(fields["frames_analysed"], 2)
        self.assertEqual(fields["faces_count"], 3)
        self.assertEqual(fields["frame_count"], 10)
        self.assertEqual(fields["timings"], {"decode": 0.1235})

    def test_it_maps_frames_faces_and_heatmaps_by_frame_number(self):
        analysis = self.analysis_for(self.alice)

        rows = inference.result_rows(analysis, video_result())

        self.assertEqual([(r.frame.index, r.frame.time) for r in rows], [(3, 0.3), (7, 0.7)])
        self.assertEqual([r.frame.fake_probability for r in rows], [0.6, 0.8])
        self.assertEqual([f.box for f in rows[1].faces], [[5, 6, 20, 20], [50, 60, 20, 20]])
        self.assertEqual([f.index for f in rows[1].faces], [0, 1])
        self.assertEqual(rows[0].heatmaps, [None])
        self.assertEqual(rows[1].heatmaps, [None, b"PNG"])
