import io
import logging
import os
import socket
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import Schedule
from django_q import core_signing
from django_q.signing import BadSignature, PickleSerializer, SignedPackage
from django_q.tasks import async_task

from detection import errors, selectors, services, workers
from detection.broker import ReliableRedis
from detection.inference import MediaError
from detection.models import Analysis, QueueKey

from .base import DEAD_PID, BaseTestCase, PipelineTestCase, astronaut_jpeg, disk_full, photo_upload, throttle_rates


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

    def test_a_run_that_fails_in_a_database_cut_still_records_its_failure_once_it_is_back(self):
        """It stayed "running" until the stale sweep (32 minutes) in a QA pass."""
        from django.db import OperationalError

        analysis = self.analysis_for(self.alice)
        real_fail = services.analysis_fail
        calls = []

        def fail_while_cut(**kwargs):
            calls.append(kwargs)
            if len(calls) < 3:
                raise OperationalError("server closed the connection unexpectedly")
            return real_fail(**kwargs)

        with (
            mock.patch("detection.inference.analyze", side_effect=OperationalError("server closed the connection")),
            mock.patch("detection.services.analysis_fail", side_effect=fail_while_cut),
            mock.patch("detection.services.time.sleep") as slept,
            self.assertLogs("detection.services", "WARNING"),
        ):
            services.analysis_run(analysis_id=analysis.pk)

        self.assertEqual(refresh(analysis).status, Analysis.Status.FAILED)
        self.assertEqual([c.args[0] for c in slept.call_args_list], [1, 2])

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

    def test_an_analysis_delivered_again_while_its_live_worker_runs_it_is_left_to_that_worker(self):
        here = f"{socket.gethostname()}:{os.getpid()}"
        analysis = self.analysis_for(
            self.alice, status=Analysis.Status.RUNNING, started_at=timezone.now(), worker=here
        )
        with mock.patch("detection.inference.analyze") as analyze, self.assertLogs("detection.services", "WARNING"):
            services.analysis_run(analysis_id=analysis.pk)

        analyze.assert_not_called()
        self.assertEqual(refresh(analysis).status, Analysis.Status.RUNNING)


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

    def test_an_animated_gif_uploaded_as_a_picture_is_recorded_as_the_video_it_was_analysed_as(self):
        from PIL import Image

        from tests.media import astronaut_bgr

        frames = [Image.fromarray(astronaut_bgr()[:, :, ::-1]).rotate(angle) for angle in (0, 3, 6)]
        content = io.BytesIO()
        frames[0].save(content, format="GIF", save_all=True, append_images=frames[1:], duration=100)
        analysis = self.analysis_for(self.alice, content=content.getvalue(), original_name="wave.gif")
        self.assertEqual(analysis.media_type, Analysis.MediaType.IMAGE)  # as sniffed at upload

        services.analysis_run(analysis_id=analysis.pk)

        analysis = refresh(analysis)
        self.assertEqual(analysis.status, Analysis.Status.DONE, analysis.error)
        self.assertEqual((analysis.media_type, analysis.frames.count()), (Analysis.MediaType.VIDEO, 3))

    def test_an_undecodable_picture_fails_naming_the_file_as_its_owner_did_and_no_server_folder(self):
        analysis = self.analysis_for(self.alice, content=b"GIF89a" + b"x" * 200, original_name='my "best" shot.gif')
        self.assertNotEqual(Path(analysis.file.name).name, analysis.original_name)  # stored under a safe name

        services.analysis_run(analysis_id=analysis.pk)

        analysis = refresh(analysis)
        self.assertEqual(analysis.status, Analysis.Status.FAILED)
        self.assertTrue(analysis.error.startswith('my "best" shot.gif: cannot decode the image'), analysis.error)
        self.assertNotIn(str(self.media_root), analysis.error)
        self.assertNotIn("/", analysis.error)
        self.assertTrue(analysis.file_unreadable)  # the file is at fault: no retry is offered

    def test_an_upload_gone_from_storage_fails_as_the_servers_fault_that_trying_again_can_mend(self):
        analysis = self.analysis_for(self.alice, content=astronaut_jpeg(), original_name="face.jpg")
        Path(analysis.file.path).unlink()

        with self.assertLogs("detection.services", "ERROR"):
            services.analysis_run(analysis_id=analysis.pk)

        analysis = refresh(analysis)
        self.assertEqual((analysis.status, analysis.error), (Analysis.Status.FAILED, services.INTERNAL_ERROR_MESSAGE))
        self.assertFalse(analysis.file_unreadable)

    def test_an_analysis_deleted_while_it_runs_ends_quietly_without_an_error_in_the_log(self):
        from detection.inference import MediaMissingError

        analysis = self.analysis_for(self.alice, content=astronaut_jpeg(), original_name="face.jpg")

        def deleted_meanwhile(path, **kwargs):
            services.analysis_delete(analysis=Analysis.objects.get(pk=analysis.pk))  # its owner, mid-run
            raise MediaMissingError("face.jpg is gone")

        with (
            mock.patch("detection.inference.analyze", side_effect=deleted_meanwhile),
            self.assertLogs("detection.services", "INFO") as logs,
        ):
            services.analysis_run(analysis_id=analysis.pk)

        self.assertIn("was deleted or stopped while it ran", "\n".join(logs.output))
        self.assertEqual([record.levelname for record in logs.records if record.levelno >= logging.WARNING], [])
        self.assertFalse(Analysis.objects.filter(pk=analysis.pk).exists())

    def test_a_gif_declaring_a_huge_screen_fails_with_the_pixel_limit_not_an_internal_error(self):
        from tests.media import hostile_gif

        folder = self.media_root / "made"
        folder.mkdir()
        for side in (9000, 13000):  # above the limit; above Pillow's own bomb limit too
            with self.subTest(side=side):
                content = hostile_gif(folder / f"{side}.gif", side=side, frames=40).read_bytes()
                analysis = self.analysis_for(self.alice, content=content, original_name="screen.gif")

                services.analysis_run(analysis_id=analysis.pk)

                analysis = refresh(analysis)
                self.assertEqual(analysis.status, Analysis.Status.FAILED)
                self.assertRegex(analysis.error, r"\.gif: the picture is .* the limit (is|of) 50 megapixels$")
                # a limit the operator may raise: it may be run again then, unlike a damaged file
                self.assertFalse(analysis.file_unreadable)

    def test_a_disk_full_while_writing_heatmaps_fails_the_analysis_and_leaves_no_heatmap(self):
        analysis = self.analysis_for(self.alice, content=astronaut_jpeg(), original_name="face.jpg")

        with (
            self.settings(DETECTION_HEATMAPS=2),
            disk_full(self.media_root, fail_on="/heatmaps/"),
            self.assertLogs("detection.services", "ERROR"),
        ):
            services.analysis_run(analysis_id=analysis.pk)

        analysis = refresh(analysis)
        self.assertEqual((analysis.status, analysis.error), (Analysis.Status.FAILED, services.DISK_FULL_MESSAGE))
        self.assertFalse(analysis.file_unreadable)  # the server is at fault: trying again may do
        self.assertFalse(analysis.frames.exists())
        folder = self.media_root / "analyses" / analysis.pk.hex
        self.assertEqual(sorted(p.name for p in folder.rglob("*")), ["face.jpg"])

    def test_the_pixel_budget_comes_from_the_settings(self):
        import cv2

        png = cv2.imencode(".png", cv2.imdecode(np.frombuffer(astronaut_jpeg(), np.uint8), cv2.IMREAD_COLOR))[1]
        analysis = self.analysis_for(self.alice, content=png.tobytes(), original_name="astronaut.png")  # a JPEG would be decoded smaller

        with self.settings(DETECTION_MAX_PIXELS=10_000):
            services.analysis_run(analysis_id=analysis.pk)

        analysis = refresh(analysis)
        self.assertEqual(analysis.status, Analysis.Status.FAILED)
        self.assertIn("256 x 256 pixels (0.0655 megapixels); the limit is 0.01 megapixels", analysis.error)


class UploadRateTests(BaseTestCase):
    """The upload rate limit is counted where an upload is stored, with its owner's row locked:
    uploads sent at once are counted one after the other (the API and the page used to check
    the count, then store, then count, so uploads in flight together all passed)."""

    def test_each_upload_is_counted_as_it_is_stored_and_the_next_past_the_limit_is_refused(self):
        stored_before = len(self.stored_files())
        with throttle_rates(uploads="1/hour"):
            services.analysis_create(owner=self.alice, file=photo_upload())
            with self.assertRaises(errors.UploadRateLimited) as refused:
                services.analysis_create(owner=self.alice, file=photo_upload())

        self.assertGreater(refused.exception.wait, 3500)
        self.assertIn("upload limit of 1 file an hour", str(refused.exception))
        self.assertEqual(Analysis.objects.filter(owner=self.alice).count(), 1)
        self.assertEqual(len(self.stored_files()), stored_before + 1)

    def test_an_upload_the_disk_could_not_store_uses_up_no_place_in_the_limit(self):
        with throttle_rates(uploads="1/hour"):
            with disk_full(self.media_root, fail_on="analyses/"), self.assertLogs("detection.services", "ERROR"):
                with self.assertRaises(errors.StorageFull):
                    services.analysis_create(owner=self.alice, file=photo_upload())
            services.analysis_create(owner=self.alice, file=photo_upload())

        self.assertEqual(Analysis.objects.filter(owner=self.alice).count(), 1)

    def test_a_run_again_is_counted_as_an_upload(self):
        analysis = self.done_analysis_for(self.alice)
        with throttle_rates(uploads="1/hour"):
            services.analysis_rerun(analysis=analysis)
            Analysis.objects.filter(pk=analysis.pk).update(status=Analysis.Status.FAILED)
            with self.assertRaises(errors.UploadRateLimited):
                services.analysis_rerun(analysis=analysis)

        self.assertEqual(refresh(analysis).status, Analysis.Status.FAILED)

    def test_a_run_again_that_could_not_start_uses_up_no_place_in_the_limit(self):
        from django.db import DatabaseError

        analysis = self.done_analysis_for(self.alice)
        with throttle_rates(uploads="1/hour"):
            with mock.patch.object(Analysis, "save", side_effect=DatabaseError("connection lost")):
                with self.assertRaises(DatabaseError):
                    services.analysis_rerun(analysis=analysis)
            services.analysis_rerun(analysis=analysis)  # not refused: the first was taken back

        self.assertEqual(refresh(analysis).status, Analysis.Status.QUEUED)

    def test_one_users_uploads_do_not_count_against_another(self):
        with throttle_rates(uploads="1/hour"):
            services.analysis_create(owner=self.alice, file=photo_upload())
            bobs = services.analysis_create(owner=self.bob, file=photo_upload())

        self.assertEqual(bobs.owner, self.bob)


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

    def remote_clusters(self, *readings):
        """The clusters' status as every reading finds it, read without waiting."""
        clock = SimpleNamespace(now=0.0)
        clock.monotonic = lambda: clock.now
        clock.sleep = lambda seconds: setattr(clock, "now", clock.now + seconds)
        mock.patch("detection.workers.time", clock).start()
        mock.patch("detection.workers.heartbeats_shared", return_value=True).start()
        self.addCleanup(mock.patch.stopall)
        return mock.patch("detection.workers.Stat.get_all", side_effect=list(readings))

    def test_it_fails_an_analysis_whose_worker_on_another_host_died_without_waiting_for_the_timeout(self):
        dead = self.running(worker="other-host:41")
        alive = self.running(worker="other-host:42")
        survivor = [SimpleNamespace(host="other-host", workers=[42], pusher=40)]

        with self.remote_clusters(*[survivor] * 20), self.assertLogs("detection.services", "WARNING"):
            self.assertEqual(services.analysis_fail_stale(), 1)

        self.assertEqual((refresh(dead).status, refresh(dead).error), (Analysis.Status.FAILED, services.INTERRUPTED_MESSAGE))
        self.assertEqual(refresh(alive).status, Analysis.Status.RUNNING)

    def test_it_does_not_fail_a_run_started_again_while_its_old_worker_was_watched(self):
        analysis = self.running(worker="other-host:41")
        others = [SimpleNamespace(host="other-host", workers=[42], pusher=40)]

        def readings():
            yield others
            # Meanwhile an administrator stopped it and its owner ran it again.
            Analysis.objects.filter(pk=analysis.pk).update(queue_token="n" * 32)
            while True:
                yield others

        with self.remote_clusters(), mock.patch("detection.workers.Stat.get_all", side_effect=readings()):
            self.assertEqual(services.analysis_fail_stale(), 0)

        self.assertEqual(refresh(analysis).status, Analysis.Status.RUNNING)

    def test_a_message_delivered_again_while_a_live_worker_on_another_host_runs_it_is_left_to_it(self):
        """A stopping cluster gives its messages back, the one its worker still runs too."""
        analysis = self.running(worker="other-host:42")
        live = [SimpleNamespace(host="other-host", workers=[42], pusher=40)]

        with self.remote_clusters(live), mock.patch("detection.inference.analyze") as analyze, self.assertLogs("detection.services", "WARNING"):
            services.analysis_run(analysis_id=analysis.pk, token=analysis.queue_token)

        analyze.assert_not_called()
        self.assertEqual(refresh(analysis).status, Analysis.Status.RUNNING)

    def test_a_message_delivered_again_after_its_worker_on_another_host_died_fails_the_analysis(self):
        analysis = self.running(worker="other-host:41")
        others = [SimpleNamespace(host="other-host", workers=[42], pusher=40)]

        with self.remote_clusters(*[others] * 20), mock.patch("detection.inference.analyze") as analyze, self.assertLogs("detection.services", "WARNING"):
            services.analysis_run(analysis_id=analysis.pk, token=analysis.queue_token)

        analyze.assert_not_called()
        self.assertEqual((refresh(analysis).status, refresh(analysis).error), (Analysis.Status.FAILED, services.INTERRUPTED_MESSAGE))

    def test_a_run_that_changed_while_its_old_worker_was_judged_is_left_to_its_new_worker(self):
        analysis = self.running(worker="other-host:41")

        def judged_while_another_worker_took_over(name):
            Analysis.objects.filter(pk=analysis.pk).update(worker="other-host:43")  # not under our lock
            return False

        with (
            mock.patch("detection.workers.worker_is_alive", side_effect=judged_while_another_worker_took_over),
            mock.patch("detection.inference.analyze") as analyze,
        ):
            services.analysis_run(analysis_id=analysis.pk, token=analysis.queue_token)

        analyze.assert_not_called()
        self.assertEqual((refresh(analysis).status, refresh(analysis).worker), (Analysis.Status.RUNNING, "other-host:43"))

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
        self.assertEqual(
            out.getvalue(),
            "1 stale analyses marked failed, 0 lost analyses queued again, "
            "0 lost analyses marked failed\n",
        )


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


class QueuedSweepTests(BaseTestCase):
    """Analyses left `queued` with no message that a live worker could still run."""

    def setUp(self) -> None:
        super().setUp()
        get_broker().purge_queue()
        self.addCleanup(get_broker().purge_queue)
        self.long_ago = timezone.now() - timedelta(seconds=settings.DETECTION_REQUEUE_AFTER + 60)

    def queued(self, *, token: str = "a" * 32, count: int = 1, enqueued_at=None) -> Analysis:
        return self.analysis_for(
            self.alice,
            queue_token=token,
            enqueue_count=count,
            enqueued_at=enqueued_at or self.long_ago,
        )

    def send_message(self, analysis: Analysis, token: str) -> None:
        """A real message in the configured broker (database or Redis), as the site sends it."""
        async_task("detection.tasks.analysis_run_task", analysis.pk, token, sync=False)

    def sweep(self):
        with mock.patch("detection.services.async_task") as sent:
            report = services.analysis_sweep()
        return report, sent

    def test_an_analysis_whose_message_was_lost_is_queued_again_with_a_new_token(self):
        lost = self.queued()

        with self.assertLogs("detection.services", level="WARNING"):
            report, sent = self.sweep()

        lost = refresh(lost)
        self.assertEqual(report.requeued, 1)
        self.assertEqual(lost.status, Analysis.Status.QUEUED)
        self.assertEqual(lost.enqueue_count, 2)
        self.assertNotEqual(lost.queue_token, "a" * 32)
        sent.assert_called_once()
        self.assertEqual(sent.call_args.args[1:], (lost.pk, lost.queue_token))

    def test_an_analysis_whose_message_waits_in_the_broker_is_left_alone(self):
        waiting = self.queued()
        self.send_message(waiting, "a" * 32)

        report, sent = self.sweep()

        self.assertEqual(report.requeued, 0)
        sent.assert_not_called()
        self.assertEqual(refresh(waiting).enqueue_count, 1)

    def test_a_message_the_site_cannot_read_does_not_count_as_waiting(self):
        unreadable = self.queued()
        with mock.patch.object(Conf, "SECRET_KEY", "a worker's other key"):
            self.send_message(unreadable, "a" * 32)

        with self.assertLogs("detection", level="WARNING"):
            report, _ = self.sweep()

        self.assertEqual(report.requeued, 1)

    def test_a_recent_upload_is_given_time_to_reach_the_queue(self):
        recent = self.queued(enqueued_at=timezone.now())

        report, sent = self.sweep()

        self.assertEqual(report.requeued, 0)
        self.assertEqual(refresh(recent).status, Analysis.Status.QUEUED)

    def test_an_analysis_lost_too_often_fails_with_a_message(self):
        lost = self.queued(count=settings.DETECTION_MAX_ENQUEUES)

        with self.assertLogs("detection.services", level="ERROR"):
            report, sent = self.sweep()

        lost = refresh(lost)
        self.assertEqual(report.queued_failed, 1)
        sent.assert_not_called()
        self.assertEqual((lost.status, lost.error), (Analysis.Status.FAILED, services.LOST_MESSAGE))

    def test_a_message_a_worker_took_from_the_database_queue_counts_as_waiting(self):
        if not isinstance(get_broker(), ORM):
            self.skipTest("the database queue only")
        taken = self.queued(token="b" * 32)
        self.send_message(taken, "b" * 32)
        self.assertEqual(len(get_broker().dequeue()), 1)  # locked until the queue's retry

        report, sent = self.sweep()

        self.assertEqual(report.requeued, 0)
        sent.assert_not_called()

    def test_the_message_of_a_run_whose_worker_died_goes_so_that_its_cluster_has_room_again(self):
        """A worker killed (out of memory) while its cluster lives on: the cluster's pusher still
        holds that run's message, which counted against the cluster's hold limit."""
        broker = get_broker()
        dying = self.analysis_for(
            self.alice, status=Analysis.Status.RUNNING, worker=f"{socket.gethostname()}:{DEAD_PID}",
            queue_token="d" * 32, started_at=timezone.now(),
        )
        waiting = self.queued(token="e" * 32, enqueued_at=timezone.now())
        self.send_message(dying, "d" * 32)
        broker.dequeue()  # this process plays the live cluster's pusher
        self.send_message(waiting, "e" * 32)

        with self.assertLogs("detection.services", "WARNING"):
            self.assertEqual(services.analysis_fail_stale(), 1)

        self.assertEqual(refresh(dying).status, Analysis.Status.FAILED)
        self.assertEqual(selectors.queue_tokens_waiting(), {"e" * 32})  # the other message stays

    def test_a_message_held_by_a_live_cluster_waits_and_one_held_by_a_dead_cluster_goes_back_to_the_queue(self):
        broker = get_broker()
        if isinstance(broker, ORM):
            self.skipTest("the Redis queue only")
        held, lost = self.queued(token="b" * 32), self.queued(token="c" * 32)
        self.send_message(held, "b" * 32)
        broker.dequeue()  # this process plays a live cluster's pusher
        self.send_message(lost, "c" * 32)
        dead_list = broker._held_key(socket.gethostname(), DEAD_PID)
        broker.connection.lmove(broker.list_key, dead_list, "LEFT", "RIGHT")  # a dead cluster's

        report, _ = self.sweep()

        self.assertEqual(report.requeued, 0)
        self.assertEqual(broker.connection.exists(dead_list), 0)
        self.assertEqual(broker.queue_size(), 1)  # the dead cluster's, waiting again
        self.assertEqual((refresh(held).enqueue_count, refresh(lost).enqueue_count), (1, 1))

    def test_a_dead_clusters_messages_go_back_even_when_no_analysis_has_waited_long(self):
        """Not only when the sweep for lost analyses finds one queued long ago."""
        broker = mock.create_autospec(ReliableRedis, instance=True)
        broker.release_dead.return_value = 2

        with mock.patch("detection.services.get_broker", return_value=broker):
            report, _ = self.sweep()

        self.assertEqual(report.requeued, 0)
        broker.release_dead.assert_called_once_with()

    def test_an_acknowledged_message_leaves_the_held_list(self):
        broker = get_broker()
        if isinstance(broker, ORM):
            self.skipTest("the Redis queue only")
        analysis = self.queued(token="b" * 32)
        self.send_message(analysis, "b" * 32)
        (ack_id, _), = broker.dequeue()
        self.assertEqual(len(broker.waiting_payloads()), 1)

        broker.acknowledge(ack_id)

        self.assertEqual(broker.waiting_payloads(), [])

    def test_a_superseded_message_is_skipped_and_the_current_one_runs_once(self):
        analysis = self.queued(token="n" * 32, count=2)

        with mock.patch("detection.inference.analyze", side_effect=MediaError("bad")) as analyze:
            with self.assertLogs("detection.services", level="INFO"):
                services.analysis_run(analysis_id=analysis.pk, token="o" * 32)
            self.assertEqual(refresh(analysis).status, Analysis.Status.QUEUED)
            services.analysis_run(analysis_id=analysis.pk, token="n" * 32)
            services.analysis_run(analysis_id=analysis.pk, token="o" * 32)

        self.assertEqual(analyze.call_count, 1)
        self.assertEqual(refresh(analysis).status, Analysis.Status.FAILED)

    def test_the_sweep_runs_on_the_schedule_every_configured_interval(self):
        with self.settings(DETECTION_SWEEP_MINUTES=3):
            services.sweep_schedule_update()

        schedule = Schedule.objects.get(name=services.SWEEP_SCHEDULE_NAME)
        self.assertEqual((schedule.func, schedule.minutes), ("detection.tasks.analysis_fail_stale_task", 3))

    def test_the_management_command_covers_queued_analyses_too(self):
        self.queued()
        out = io.StringIO()

        with mock.patch("detection.services.async_task"), self.assertLogs("detection", "WARNING"):
            call_command("fail_stale_analyses", stdout=out)

        self.assertIn("1 lost analyses queued again", out.getvalue())


class QueueKeyTests(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        patcher = mock.patch.object(workers, "_recorded_fingerprint", None)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_queue_messages_are_signed_with_the_queue_key_not_the_site_key(self):
        self.assertEqual(Conf.SECRET_KEY, settings.QUEUE_SECRET_KEY)
        self.assertNotEqual(settings.QUEUE_SECRET_KEY, settings.SECRET_KEY)
        forged = core_signing.dumps(
            {"func": "os.system", "args": ("id",)},
            key=settings.SECRET_KEY,
            salt=Conf.PREFIX,
            serializer=PickleSerializer,
        )
        with self.assertRaises(BadSignature):
            SignedPackage.loads(forged)

    def test_a_worker_with_another_queue_key_refuses_to_start(self):
        workers.queue_key_record()  # the site, on its first upload

        with (
            mock.patch.object(Conf, "SECRET_KEY", "the worker's own key"),
            mock.patch("django_q.management.commands.qcluster.Cluster") as cluster,
            self.assertRaisesMessage(CommandError, "differs from the one the site signs tasks with"),
        ):
            call_command("qcluster")

        cluster.assert_not_called()

    def test_a_worker_on_a_database_not_migrated_for_its_code_refuses_to_start(self):
        """Every analysis would fail at its first write (a column the code has and the table not)."""
        with (
            mock.patch("deepfake_site.management.commands.qcluster.migrations_missing", return_value=["detection.0099_new_column"]),
            mock.patch("django_q.management.commands.qcluster.Cluster") as cluster,
            self.assertRaisesMessage(CommandError, "lacks 1 migration this code needs (detection.0099_new_column)"),
        ):
            call_command("qcluster")

        cluster.assert_not_called()

    def test_a_worker_with_the_sites_key_starts(self):
        workers.queue_key_record()

        with mock.patch("django_q.management.commands.qcluster.Cluster") as cluster:
            call_command("qcluster", run_once=True)

        cluster.return_value.start.assert_called_once_with()

    def test_a_worker_that_does_not_see_the_newest_upload_warns_that_storage_is_not_shared(self):
        self.analysis_for(self.alice, original_name="older.jpg")
        newest = self.analysis_for(self.alice, original_name="newest.jpg")
        stderr = io.StringIO()
        with mock.patch("django_q.management.commands.qcluster.Cluster"):
            call_command("qcluster", run_once=True, stderr=stderr)
        self.assertEqual(stderr.getvalue(), "")  # it sees the uploads

        Path(newest.file.path).unlink()  # as a worker with its own MEDIA_ROOT would not see it
        with mock.patch("django_q.management.commands.qcluster.Cluster") as cluster:
            call_command("qcluster", run_once=True, stderr=stderr)

        self.assertIn("is not in this worker's MEDIA_ROOT", stderr.getvalue())
        self.assertIn(newest.file.name, stderr.getvalue())
        cluster.return_value.start.assert_called_once_with()  # a warning: it still starts

    def test_each_upload_records_the_key_it_was_signed_with(self):
        analysis = self.analysis_for(self.alice)
        with mock.patch("detection.services.async_task"):
            services.analysis_enqueue(analysis_id=analysis.pk)

        self.assertEqual(
            QueueKey.objects.get().fingerprint, workers.queue_key_fingerprint()
        )


class AnalysisRerunTests(BaseTestCase):
    def test_a_done_analysis_run_again_loses_its_result_and_result_files_but_keeps_its_upload(self):
        analysis = self.done_analysis_for(self.alice)
        upload = self.media_root / analysis.file.name
        results = [p for p in self.stored_files() if analysis.pk.hex in str(p) and p != upload]
        self.assertTrue(results)

        with mock.patch("detection.services.analysis_enqueue") as enqueue, self.captureOnCommitCallbacks(execute=True):
            services.analysis_rerun(analysis=analysis)

        again = refresh(analysis)
        self.assertEqual((again.status, again.verdict, again.fake_probability, again.progress), ("queued", "", None, 0.0))
        self.assertEqual((again.model_version, again.faces_count, again.timings, again.thumbnail.name), ("", 0, {}, ""))
        self.assertEqual((again.frames.count(), again.tracks.count()), (0, 0))
        self.assertEqual((again.original_name, again.created_at, again.file.name), (analysis.original_name, analysis.created_at, analysis.file.name))
        self.assertTrue(upload.exists())
        self.assertFalse(any(p.exists() for p in results))
        enqueue.assert_called_once_with(analysis_id=analysis.pk)

    def test_a_queued_or_running_analysis_is_not_run_again(self):
        for status in (Analysis.Status.QUEUED, Analysis.Status.RUNNING):
            analysis = self.analysis_for(self.alice, status=status)
            with self.assertRaisesMessage(errors.NotFinished, "still waiting or running"):
                services.analysis_rerun(analysis=analysis)
            self.assertEqual(refresh(analysis).status, status)

    def test_a_run_again_gets_its_own_tries_at_the_queue(self):
        lost = self.analysis_for(
            self.alice, status=Analysis.Status.FAILED, error=services.LOST_MESSAGE, enqueue_count=settings.DETECTION_MAX_ENQUEUES
        )

        with mock.patch("detection.services.async_task"), self.captureOnCommitCallbacks(execute=True):
            services.analysis_rerun(analysis=lost)

        self.assertEqual(refresh(lost).enqueue_count, 1)

    @override_settings(DETECTION_USER_PENDING=1)
    def test_it_counts_against_the_analyses_an_account_may_have_waiting(self):
        self.analysis_for(self.alice)  # queued
        failed = self.analysis_for(self.alice, status=Analysis.Status.FAILED, error="interrupted")

        with self.assertRaises(errors.TooManyPending):
            services.analysis_rerun(analysis=failed)

        self.assertEqual(refresh(failed).status, Analysis.Status.FAILED)


class AnalysisRerunPipelineTests(PipelineTestCase):
    def test_a_failed_analysis_run_again_is_judged_on_the_file_it_kept(self):
        analysis = self.analysis_for(self.alice, status=Analysis.Status.FAILED, error=services.INTERRUPTED_MESSAGE)

        with self.captureOnCommitCallbacks(execute=True):
            services.analysis_rerun(analysis=analysis)

        again = refresh(analysis)
        self.assertEqual(again.status, Analysis.Status.DONE, again.error)
        self.assertEqual((again.error, again.faces_count, again.enqueue_count), ("", 1, 1))
        self.assertIn(again.verdict, {"real", "uncertain", "fake"})


class AnOldRunAfterARerunTests(BaseTestCase):
    """A run stopped by an administrator while its worker still works, then run again: when
    the old worker ends, it must leave the new run alone however it ends."""

    def queued(self, analysis) -> str:
        with mock.patch("detection.services.async_task"), self.captureOnCommitCallbacks(execute=True):
            services.analysis_enqueue(analysis_id=analysis.pk)
        return refresh(analysis).queue_token

    def test_the_old_worker_can_neither_finish_fail_nor_move_the_new_run(self):
        analysis = self.analysis_for(self.alice)
        old_token = self.queued(analysis)
        old_run = services._analysis_start(analysis_id=analysis.pk, token=old_token)
        services.analysis_fail(analysis_id=analysis.pk, message="Stopped by an administrator.")
        with mock.patch("detection.services.async_task"), self.captureOnCommitCallbacks(execute=True):
            services.analysis_rerun(analysis=refresh(analysis))
        new_token = refresh(analysis).queue_token
        self.assertIsNotNone(services._analysis_start(analysis_id=analysis.pk, token=new_token))

        services._progress_recorder(analysis.pk, old_token)(0.9)
        failed = services.analysis_fail(analysis_id=analysis.pk, message="old run: broken", token=old_token)
        services._analysis_save_result(analysis=old_run, result=None)  # returns before reading it

        now = refresh(analysis)
        self.assertFalse(failed)
        self.assertEqual((now.status, now.progress, now.error, now.queue_token), ("running", 0.0, "", new_token))
        self.assertEqual(now.frames.count(), 0)

    def test_an_analysis_queued_before_tokens_is_guarded_too(self):
        analysis = self.analysis_for(self.alice)  # queue_token "": its messages carry none
        old_run = services._analysis_start(analysis_id=analysis.pk, token=None)
        services.analysis_fail(analysis_id=analysis.pk, message="Stopped by an administrator.")
        with mock.patch("detection.services.async_task"), self.captureOnCommitCallbacks(execute=True):
            services.analysis_rerun(analysis=refresh(analysis))
        services._analysis_start(analysis_id=analysis.pk, token=refresh(analysis).queue_token)

        failed = services.analysis_fail(analysis_id=analysis.pk, message="old run: broken", token=old_run.queue_token)

        self.assertFalse(failed)
        self.assertEqual(refresh(analysis).status, Analysis.Status.RUNNING)

    def test_a_message_of_the_old_run_does_not_start_the_new_one(self):
        analysis = self.analysis_for(self.alice)
        old_token = self.queued(analysis)
        services.analysis_fail(analysis_id=analysis.pk, message="Stopped by an administrator.")
        with mock.patch("detection.services.analysis_enqueue"), self.captureOnCommitCallbacks(execute=True):
            services.analysis_rerun(analysis=refresh(analysis))  # not yet queued again

        self.assertIsNone(services._analysis_start(analysis_id=analysis.pk, token=old_token))
        self.assertEqual(refresh(analysis).status, Analysis.Status.QUEUED)
