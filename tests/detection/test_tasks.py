import socket
from datetime import timedelta
from unittest import mock

from django.conf import settings
from django.utils import timezone
from django_q.conf import Conf
from django_q.exceptions import TimeoutException
from django_q.models import Schedule
from django_q.tasks import async_task

from detection import services, tasks
from detection.models import Analysis

from .base import DEAD_PID, BaseTestCase


class AnalysisRunTaskTests(BaseTestCase):
    def test_a_job_stopped_by_the_queue_timeout_ends_failed_with_a_message(self):
        analysis = self.analysis_for(self.alice)
        with (
            mock.patch("detection.inference.analyze", side_effect=TimeoutException("too slow")),
            self.settings(DETECTION_JOB_TIMEOUT=600),
            self.assertRaises(TimeoutException),
        ):
            tasks.analysis_run_task(analysis.pk)

        analysis.refresh_from_db()
        self.assertEqual(analysis.status, Analysis.Status.FAILED)
        self.assertEqual(
            analysis.error,
            "The analysis took longer than 10 minutes and was stopped. Try a shorter video.",
        )

    def test_the_queue_runs_it_by_primary_key(self):
        analysis = self.analysis_for(self.alice)
        with mock.patch("detection.inference.analyze", side_effect=services.inference.MediaError("bad")):
            async_task("detection.tasks.analysis_run_task", analysis.pk)

        analysis.refresh_from_db()
        self.assertEqual((analysis.status, analysis.error), (Analysis.Status.FAILED, "bad"))


class WorkerStartTests(BaseTestCase):
    def test_a_new_worker_fails_what_a_dead_one_left_running_and_warms_the_detector(self):
        dead = self.analysis_for(
            self.alice, status=Analysis.Status.RUNNING, worker=f"{socket.gethostname()}:{DEAD_PID}"
        )
        lost = self.analysis_for(
            self.alice, queue_token="a" * 32, enqueue_count=1, enqueued_at=timezone.now() - timedelta(hours=1)
        )
        with (
            mock.patch.object(Conf, "SYNC", False),
            mock.patch("detection.inference.warm_up") as warm_up,
            mock.patch("detection.inference.worker_threads_set") as threads_set,
            mock.patch("detection.services.async_task") as sent,
            self.assertLogs("detection.tasks", level="INFO") as logs,
        ):
            tasks.on_worker_start(sender="django_q", proc_name="Process-1:1")

        dead.refresh_from_db()
        self.assertEqual(dead.status, Analysis.Status.FAILED)
        lost.refresh_from_db()
        self.assertEqual(lost.enqueue_count, 2)
        sent.assert_called_once()
        threads_set.assert_called_once_with(settings.DETECTION_THREADS)
        warm_up.assert_called_once_with()
        self.assertIn("Process-1:1: ready for analyses", logs.output[-1])

    def test_it_does_nothing_when_tasks_run_inline(self):
        running = self.analysis_for(
            self.alice, status=Analysis.Status.RUNNING, worker=f"{socket.gethostname()}:{DEAD_PID}"
        )
        with mock.patch("detection.inference.get_detector") as get_detector:
            tasks.on_worker_start(sender="django_q", proc_name="MainProcess")

        running.refresh_from_db()
        self.assertEqual(running.status, Analysis.Status.RUNNING)
        get_detector.assert_not_called()

    def test_it_is_connected_to_django_q2s_worker_start_signal(self):
        from django_q.signals import post_spawn

        with mock.patch.object(Conf, "SYNC", False), mock.patch(
            "detection.tasks.analysis_sweep", return_value=services.SweepReport(0, 0, 0)
        ) as sweep, mock.patch("detection.inference.get_detector"):
            post_spawn.send(sender="django_q", proc_name="Process-1:1")
        sweep.assert_called_once_with()

    def test_the_cluster_also_sweeps_every_ten_minutes(self):
        schedule = Schedule.objects.get(func="detection.tasks.analysis_fail_stale_task")
        self.assertEqual((schedule.schedule_type, schedule.minutes, schedule.repeats), ("I", 10, -1))
