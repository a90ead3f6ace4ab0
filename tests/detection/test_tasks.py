import socket
from datetime import timedelta
from unittest import mock

from django.conf import settings
from django.utils import timezone
from django.db import OperationalError
from django_q.conf import Conf
from django_q.exceptions import TimeoutException
from django_q.models import Schedule
from django_q.signals import pre_execute
from django_q.tasks import async_task

from detection import services, tasks
from detection.broker import LeasedORM, ReliableRedis
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


class MessageGivenBackTests(BaseTestCase):
    """A stopping cluster gives the messages it holds back to the queue (detection.broker);
    the jobs already in its task queue must then not start there."""

    queue = ReliableRedis

    def setUp(self) -> None:
        super().setUp()
        self.broker = mock.create_autospec(self.queue, instance=True)
        mock.patch("detection.tasks.get_broker", return_value=self.broker).start()
        self.addCleanup(mock.patch.stopall)
        self.addCleanup(setattr, tasks, "_message_given_back", False)

    def start(self, analysis: Analysis) -> None:
        tasks.message_check(sender="django_q", func=tasks.analysis_run_task, task={"ack_id": ("held", b"payload")})
        with mock.patch("detection.inference.analyze", side_effect=services.inference.MediaError("bad")):
            tasks.analysis_run_task(analysis.pk)

    def test_a_job_whose_message_went_back_to_the_queue_does_not_start(self):
        analysis = self.analysis_for(self.alice)
        self.broker.holds.return_value = False

        with self.assertLogs("detection.tasks", "INFO"):
            self.start(analysis)

        analysis.refresh_from_db()
        self.assertEqual(analysis.status, Analysis.Status.QUEUED)

    def test_a_job_whose_message_its_cluster_still_holds_runs(self):
        analysis = self.analysis_for(self.alice)
        self.broker.holds.return_value = True

        self.start(analysis)

        analysis.refresh_from_db()
        self.assertEqual(analysis.status, Analysis.Status.FAILED)


class MessageCheckWithoutTheQueueTests(BaseTestCase):
    def test_a_job_starts_when_the_queue_cannot_be_asked_rather_than_killing_its_worker(self):
        """A database cut: a worker that died here was replaced in a loop, 20 times in 10 s."""
        self.addCleanup(setattr, tasks, "_message_given_back", False)
        with (
            mock.patch("detection.tasks.get_broker", side_effect=OperationalError("server closed the connection")),
            self.assertLogs("detection.tasks", "WARNING"),
        ):
            tasks.message_check(sender="django_q", func=tasks.analysis_run_task, task={"ack_id": 7, "name": "x"})

        self.assertFalse(tasks._message_given_back)


class DatabaseMessageGivenBackTests(MessageGivenBackTests):
    queue = LeasedORM


class WorkerStartTests(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.watch_start = mock.patch("detection.workers.watch_start").start()
        self.addCleanup(mock.patch.stopall)
        self.addCleanup(pre_execute.disconnect, dispatch_uid="detection_message_check")

    def test_a_new_worker_watches_the_others_and_checks_each_jobs_message(self):
        with (
            mock.patch.object(Conf, "SYNC", False),
            mock.patch("detection.tasks.analysis_sweep", return_value=services.SweepReport(0, 0, 0)),
            mock.patch("detection.inference.warm_up"),
            mock.patch("detection.inference.worker_threads_set"),
        ):
            tasks.on_worker_start(sender="django_q", proc_name="Process-1:1")

        self.watch_start.assert_called_once_with(check=services.analysis_sweep_dead)
        self.assertIn(tasks.message_check, [receiver[1]() for receiver in pre_execute.receivers])

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
