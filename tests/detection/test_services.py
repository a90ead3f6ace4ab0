import io
import logging
import os
import socket
from datetime import timedelta
from unittest import mock

from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from detection import services
from detection.inference import MediaError
from detection.models import Analysis

from .base import DEAD_PID, BaseTestCase, PipelineTestCase


def refresh(analysis: Analysis) -> Analysis:
    analysis.refresh_from_db()
    return analysis


class AnalysisRunTests(BaseTestCase):
    def test_a_media_error_fails_the_analysis_with_its_message(self):
        analysis = self.analysis_for(self.alice)
        with mock.patch("detection.inference.analyze", side_effect=MediaError("photo.jpg: truncated")):
            services.analysis_run(analysis_id=analysis.pk)

        analysis = refresh(analysis)
        self.assertEqual(analysis.status, Analysis.Status.FAILED)
        self.assertEqual(analysis.error, "photo.jpg: truncated")
        self.assertIsNotNone(analysis.finished_at)

    def test_an_unexpected_error_fails_the_analysis_with_a_generic_message_and_is_logged(self):
        analysis = self.analysis_for(self.alice)
        with (
            mock.patch("detection.inference.analyze", side_effect=RuntimeError("tensor shapes")),
            self.assertLogs("detection.services", level=logging.ERROR) as logs,
        ):
            services.analysis_run(analysis_id=analysis.pk)

        analysis = refresh(analysis)
        self.assertEqual(analysis.status, Analysis.Status.FAILED)
        self.assertEqual(analysis.error, services.INTERNAL_ERROR_MESSAGE)
        self.assertNotIn("tensor", analysis.error)
        self.assertIn("tensor shapes", "\n".join(logs.output))

    def test_a_missing_model_fails_the_analysis_with_a_message_for_the_user(self):
        analysis = self.analysis_for(self.alice)
        missing = self.media_root / "no-such-model.pt"
        with (
            override_settings(DEEPFAKE_MODEL_PATH=str(missing)),
            self.assertLogs("detection.services", level=logging.ERROR),
        ):
            services.analysis_run(analysis_id=analysis.pk)

        analysis = refresh(analysis)
        self.assertEqual(analysis.status, Analysis.Status.FAILED)
        self.assertEqual(analysis.error, services.MODEL_MISSING_MESSAGE)

    def test_it_records_progress_while_it_runs(self):
        analysis = self.analysis_for(self.alice)
        seen = []

        def analyze(path, *, progress):
            progress(0.5)
            seen.append(Analysis.objects.get(pk=analysis.pk))
            raise MediaError("stop here")

        with mock.patch("detection.inference.analyze", side_effect=analyze):
            services.analysis_run(analysis_id=analysis.pk)

        self.assertEqual(seen[0].status, Analysis.Status.RUNNING)
        self.assertEqual(seen[0].progress, 0.5)
        self.assertEqual(seen[0].worker, f"{socket.gethostname()}:{os.getpid()}")

    def test_a_deleted_analysis_is_skipped(self):
        analysis = self.analysis_for(self.alice)
        analysis_id = analysis.pk
        analysis.delete()
        with mock.patch("detection.inference.analyze") as analyze:
            services.analysis_run(analysis_id=analysis_id)
        analyze.assert_not_called()

    def test_a_finished_analysis_delivered_again_is_not_run_again(self):
        analysis = self.done_analysis_for(self.alice)
        with mock.patch("detection.inference.analyze") as analyze:
            services.analysis_run(analysis_id=analysis.pk)

        analyze.assert_not_called()
        self.assertEqual(refresh(analysis).status, Analysis.Status.DONE)

    def test_an_analysis_delivered_again_after_its_worker_died_fails_instead_of_hanging(self):
        analysis = self.analysis_for(
            self.alice, status=Analysis.Status.RUNNING, started_at=timezone.now(), worker="gone:1"
        )
        with mock.patch("detection.inference.analyze") as analyze:
            services.analysis_run(analysis_id=analysis.pk)

        analyze.assert_not_called()
        analysis = refresh(analysis)
        self.assertEqual(analysis.status, Analysis.Status.FAILED)
        self.assertEqual(analysis.error, services.INTERRUPTED_MESSAGE)


class AnalysisRunPipelineTests(PipelineTestCase):
    def test_a_photo_without_a_face_is_done_with_the_no_face_verdict(self):
        import cv2
        import numpy as np

        ok, grey = cv2.imencode(".png", np.full((128, 128, 3), 128, np.uint8))
        analysis = self.analysis_for(self.alice, content=grey.tobytes(), original_name="grey.png")

        services.analysis_run(analysis_id=analysis.pk)

        analysis = refresh(analysis)
        self.assertEqual(analysis.status, Analysis.Status.DONE, analysis.error)
        self.assertEqual(analysis.verdict, Analysis.Verdict.NO_FACE)
        self.assertIsNone(analysis.fake_probability)
        self.assertEqual(analysis.faces_count, 0)
        self.assertEqual(analysis.frames.get().faces.count(), 0)


class AnalysisEnqueueTests(BaseTestCase):
    def test_an_analysis_that_cannot_be_queued_fails_instead_of_waiting_forever(self):
        analysis = self.analysis_for(self.alice)
        with (
            mock.patch("detection.services.async_task", side_effect=ConnectionError("broker down")),
            self.assertLogs("detection.services", level=logging.ERROR),
        ):
            services.analysis_enqueue(analysis_id=analysis.pk)

        analysis = refresh(analysis)
        self.assertEqual(analysis.status, Analysis.Status.FAILED)
        self.assertEqual(analysis.error, services.QUEUE_DOWN_MESSAGE)


class AnalysisFailStaleTests(BaseTestCase):
    def running(self, *, worker: str, started_ago: timedelta = timedelta(seconds=5)) -> Analysis:
        return self.analysis_for(
            self.alice,
            status=Analysis.Status.RUNNING,
            worker=worker,
            started_at=timezone.now() - started_ago,
        )

    def test_it_fails_an_analysis_whose_worker_on_this_host_is_gone(self):
        host = socket.gethostname()
        dead = self.running(worker=f"{host}:{DEAD_PID}")
        alive = self.running(worker=f"{host}:{os.getpid()}")

        self.assertEqual(services.analysis_fail_stale(), 1)

        self.assertEqual(refresh(dead).status, Analysis.Status.FAILED)
        self.assertEqual(refresh(dead).error, services.INTERRUPTED_MESSAGE)
        self.assertEqual(refresh(alive).status, Analysis.Status.RUNNING)

    def test_it_fails_an_analysis_running_longer_than_the_job_timeout_on_any_host(self):
        limit = timedelta(seconds=settings.DETECTION_JOB_TIMEOUT) + services.STALE_MARGIN
        overdue = self.running(worker="other-host:1", started_ago=limit + timedelta(seconds=1))
        recent = self.running(worker="other-host:2", started_ago=limit - timedelta(seconds=30))

        services.analysis_fail_stale()

        self.assertEqual(refresh(overdue).status, Analysis.Status.FAILED)
        self.assertEqual(refresh(recent).status, Analysis.Status.RUNNING)

    def test_it_leaves_queued_and_finished_analyses_alone(self):
        old = timezone.now() - timedelta(days=2)
        done = self.done_analysis_for(self.alice, started_at=old)

        services.analysis_fail_stale()

        self.assertEqual(refresh(done).status, Analysis.Status.DONE)
        self.assertEqual(refresh(self.bobs_analysis).status, Analysis.Status.QUEUED)

    def test_the_management_command_reports_what_it_did(self):
        self.running(worker=f"{socket.gethostname()}:{DEAD_PID}")
        out = io.StringIO()
        call_command("fail_stale_analyses", stdout=out)
        self.assertEqual(out.getvalue(), "1 stale analyses marked failed\n")


class AnalysisDeleteManyTests(BaseTestCase):
    def test_it_deletes_only_the_owners_analyses_with_their_files(self):
        mine = self.done_analysis_for(self.alice, original_name="mine.jpg")
        my_files = [p for p in self.stored_files() if mine.pk.hex in str(p)]
        bobs_file = self.bobs_analysis.file.path

        with self.captureOnCommitCallbacks(execute=True):
            deleted = services.analysis_delete_many(
                owner=self.alice, analysis_ids=[mine.pk, self.bobs_analysis.pk]
            )

        self.assertEqual(deleted, 1)
        self.assertFalse(Analysis.objects.filter(pk=mine.pk).exists())
        self.assertEqual(len(my_files), 4)  # upload, thumbnail, photo, heatmap
        self.assertFalse(any(path.exists() for path in my_files))
        self.assertTrue(Analysis.objects.filter(pk=self.bobs_analysis.pk).exists())
        self.assertTrue(os.path.exists(bobs_file))
