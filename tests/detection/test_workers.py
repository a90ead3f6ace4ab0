"""Real `qcluster` processes sharing one queue and one database: the database queue on SQLite
(the embedded default; tests/conftest.py keeps the test database in a file the clusters can
open) and the Redis queue on PostgreSQL (`make test-scale`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import TestCase, TransactionTestCase, override_settings
from django_q.brokers import get_broker
from django_q.models import Task

from accounts.services import user_create
from detection import services, workers
from detection.models import Analysis

from .base import DEAD_PID, PASSWORD, astronaut_mp4

ROOT = Path(__file__).resolve().parents[2]
RUN_TASK = "detection.tasks.analysis_run_task"
REQUEUE_AFTER = 3  # seconds: DETECTION_REQUEUE_AFTER for these tests
DEADLINE = 300  # seconds for every analysis to finish, on a busy 2-core machine

LEASE = 2  # seconds: DETECTION_QUEUE_LEASE of the database queue for these tests
STUCK_AFTER = 2  # seconds: DETECTION_QUEUE_STUCK_AFTER for these tests


def database_url() -> str:
    """The test database, as DATABASE_URL for another process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(db["NAME"])
        assert "memory" not in name, "the clusters need the test database in a file"
        return f"sqlite:///{Path(name).resolve()}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.usefixtures("detector_checkpoint")
class TwoClustersTests(TransactionTestCase):
    @pytest.fixture(autouse=True)
    def _shared_media_and_model(self, detector_checkpoint):
        self.media_root = Path(tempfile.mkdtemp(prefix="media-workers-"))
        self.model = detector_checkpoint
        with override_settings(
            MEDIA_ROOT=str(self.media_root),
            DETECTION_REQUEUE_AFTER=REQUEUE_AFTER,
            DEEPFAKE_MODEL_PATH=str(detector_checkpoint),
        ):
            yield
        shutil.rmtree(self.media_root, ignore_errors=True)

    def setUp(self) -> None:
        get_broker().purge_queue()
        self.clusters: list[subprocess.Popen] = []
        self.addCleanup(self.stop_clusters)
        self.user = user_create(username="loader", email="loader@example.org", password=PASSWORD)

    def start_cluster(self, name: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DETECTION_QUEUE_LEASE": str(LEASE),
            "MEDIA_ROOT": str(self.media_root),
            "DEEPFAKE_MODEL_PATH": str(self.model),
            "DETECTION_REQUEUE_AFTER": str(REQUEUE_AFTER),
            "DETECTION_HEATMAPS": "0",
            "DETECTION_QUEUE_STUCK_AFTER": str(STUCK_AFTER),
        }
        log = open(self.media_root / f"{name}.log", "wb")
        self.addCleanup(log.close)
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so it can be killed whole
        )
        self.clusters.append(cluster)
        return cluster

    def stop_clusters(self) -> None:
        for cluster in self.clusters:
            if cluster.poll() is None:
                cluster.send_signal(signal.SIGTERM)
        for cluster in self.clusters:
            try:
                cluster.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
                cluster.wait()

    def upload(self, count: int) -> list[Analysis]:
        return [
            services.analysis_create(
                owner=self.user, file=SimpleUploadedFile(f"clip{i}.mp4", astronaut_mp4())
            )
            for i in range(count)
        ]

    def wait_until(self, condition, *, sweep: bool = False, deadline: float | None = None) -> None:
        """Poll the database until `condition()` holds; with `sweep`, run the scheduled
        sweep each time as the cluster's schedule would (its shortest interval is a minute)."""
        deadline = time.monotonic() + (deadline or DEADLINE)
        while not condition():
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in self.media_root.glob("*.log"))
                self.fail(f"timed out; statuses {self.statuses()}\n{logs}")
            if sweep:
                services.analysis_sweep()
            time.sleep(0.2)

    def statuses(self) -> Counter:
        return Counter(Analysis.objects.values_list("status", flat=True))

    def all_finished(self) -> bool:
        return not Analysis.objects.exclude(status__in=Analysis.FINISHED).exists()

    def runs_per_analysis(self) -> Counter:
        """How many times a worker ran each analysis's job to its end (django-q2's results)."""
        return Counter(
            str(task.args[0]) for task in Task.objects.filter(func=RUN_TASK) if task.args
        )

    def test_two_clusters_share_the_queue_and_no_job_is_done_twice(self):
        self.start_cluster("a")
        self.start_cluster("b")
        analyses = self.upload(8)

        self.wait_until(self.all_finished)

        self.assertEqual(self.statuses(), Counter({Analysis.Status.DONE: 8}))
        # django-q2 saves a job's result just after the job has saved its analysis.
        self.wait_until(lambda: sum(self.runs_per_analysis().values()) >= 8)
        runs = self.runs_per_analysis()
        self.assertEqual(runs, Counter({str(a.pk): 1 for a in analyses}))

    def test_a_cluster_killed_mid_job_loses_nothing_and_runs_nothing_twice(self):
        victim = self.start_cluster("victim")
        self.start_cluster("survivor")
        analyses = self.upload(8)

        def victim_is_busy() -> bool:
            for worker in Analysis.objects.filter(status=Analysis.Status.RUNNING).values_list("worker", flat=True):
                pid = int(worker.rsplit(":", 1)[1])
                try:
                    if os.getpgid(pid) == victim.pid:
                        return True
                except ProcessLookupError:
                    continue
            return False

        self.wait_until(victim_is_busy)
        os.killpg(victim.pid, signal.SIGKILL)  # the machine dies: the cluster and its workers
        victim.wait()
        killed_mid_job = set(
            Analysis.objects.filter(status=Analysis.Status.RUNNING).values_list("pk", flat=True)
        )

        self.wait_until(self.all_finished, sweep=True)

        statuses = dict(Analysis.objects.values_list("pk", "status"))
        self.assertEqual(len(statuses), 8)
        for pk, status in statuses.items():
            expected = Analysis.FINISHED if pk in killed_mid_job else (Analysis.Status.DONE,)
            self.assertIn(status, expected, f"analysis {pk}")
        interrupted = Analysis.objects.filter(status=Analysis.Status.FAILED)
        self.assertTrue(all(a.error == services.INTERRUPTED_MESSAGE for a in interrupted))
        runs = self.runs_per_analysis()
        self.assertTrue(all(count == 1 for count in runs.values()), runs)
        self.assertLessEqual(set(runs), {str(a.pk) for a in analyses})


    def log_of(self, name: str) -> str:
        return (self.media_root / f"{name}.log").read_text(errors="replace")

    def test_a_worker_killed_while_waiting_for_a_job_leaves_its_cluster_working_and_stoppable(self):
        # django-q2's idle worker holds the task queue's read lock while it waits; killed, it
        # never gives it back (detection/queue_lock.py). Killed here while it waits so.
        cluster = self.start_cluster("cluster")
        self.wait_until(lambda: self.log_of("cluster").count("ready for analyses") == 1, deadline=60)
        [worker] = [int(pid) for pid in re.findall(r"ready for work at (\d+)", self.log_of("cluster"))]
        self.wait_until(lambda: waiting_for_a_job(worker), deadline=60)
        os.kill(worker, signal.SIGKILL)
        self.wait_until(lambda: self.log_of("cluster").count("ready for analyses") == 2, deadline=60)

        [analysis] = self.upload(1)
        self.wait_until(self.all_finished, deadline=120)

        analysis.refresh_from_db()
        self.assertEqual(analysis.status, Analysis.Status.DONE)
        self.assertIn("the lock is released for the others", self.log_of("cluster"))
        [replacement] = [int(pid) for pid in re.findall(r"ready for work at (\d+)", self.log_of("cluster"))][1:]
        self.wait_until(lambda: waiting_for_a_job(replacement), deadline=60)
        os.kill(replacement, signal.SIGKILL)  # killed waiting again, then the cluster is stopped
        self.wait_until(lambda: self.log_of("cluster").count("ready for analyses") == 3, deadline=60)
        cluster.send_signal(signal.SIGTERM)
        self.assertEqual(cluster.wait(timeout=60), 0)  # it hung before: nobody read the stop message


def waiting_for_a_job(pid: int) -> bool:
    """Whether a worker process is blocked reading its cluster's task queue (holding the queue's
    read lock), as the kernel says where its main thread sleeps."""
    return "pipe_read" in Path(f"/proc/{pid}/wchan").read_text()


class Clock:
    """time.monotonic and time.sleep for detection.workers: sleeping moves the clock, at once."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def cluster(host: str, *, workers: list[int], pusher: int = 1) -> SimpleNamespace:
    """A cluster's status as django-q2's Stat.get_all returns it."""
    return SimpleNamespace(host=host, workers=workers, pusher=pusher)


class WorkerLivenessTests(TestCase):
    """Whether a worker (or a cluster's pusher) on any host is dead, from the status each
    cluster saves: a false "dead" would fail a healthy analysis."""

    def setUp(self) -> None:
        self.clock = Clock()
        mock.patch("detection.workers.time", self.clock).start()
        self.shared = mock.patch("detection.workers.heartbeats_shared", return_value=True).start()
        self.addCleanup(mock.patch.stopall)

    def statuses(self, *readings):
        return mock.patch("detection.workers.Stat.get_all", side_effect=list(readings))

    def test_a_worker_on_another_host_that_no_cluster_names_for_the_whole_watch_is_dead(self):
        others = [cluster("b", workers=[7])]
        with self.statuses(*[others] * 20):
            self.assertEqual(workers.workers_dead(["a:5", "b:7"]), {"a:5"})
        self.assertGreaterEqual(self.clock.slept, workers.HEARTBEAT_WATCH_SECONDS)

    def test_a_worker_on_another_host_missing_from_some_readings_is_not_dead(self):
        blip = [cluster("b", workers=[7])]
        back = [cluster("a", workers=[5]), *blip]
        with self.statuses(blip, blip, back):
            self.assertEqual(workers.workers_dead(["a:5"]), set())

    def test_a_worker_a_live_cluster_names_is_alive_without_waiting(self):
        with self.statuses([cluster("a", workers=[4, 5])]):
            self.assertTrue(workers.worker_is_alive("a:5"))
        self.assertEqual(self.clock.slept, 0)

    def test_a_status_that_cannot_be_read_or_names_no_cluster_proves_nothing(self):
        with self.statuses(*[RuntimeError("Redis away"), []] * 10), self.assertLogs("detection.workers", "WARNING"):
            self.assertEqual(workers.workers_dead(["a:5"]), set())
            self.assertFalse(workers.worker_is_alive("a:5"))  # nor is it known alive

    def test_a_status_read_at_the_start_of_the_watch_but_not_at_its_end_proves_nothing(self):
        others = [cluster("b", workers=[7])]
        with self.statuses(others, *[RuntimeError("Redis away")] * 20), self.assertLogs("detection.workers", "WARNING"):
            self.assertEqual(workers.workers_dead(["a:5"]), set())

    def test_a_name_that_is_not_host_and_pid_is_neither_dead_nor_known_alive(self):
        with self.statuses(*[[cluster("b", workers=[7])]] * 20):
            for name in ("", "host:abc"):
                self.assertEqual(workers.workers_dead([name]), set())
                self.assertFalse(workers.worker_is_alive(name))

    def test_another_hosts_workers_are_not_judged_without_a_status_every_host_shares(self):
        self.shared.return_value = False
        with self.statuses() as read:
            self.assertEqual(workers.workers_dead(["a:5"]), set())
        read.assert_not_called()

    def test_a_worker_on_this_host_is_judged_by_its_process(self):
        here = socket.gethostname()
        with self.statuses() as read:
            self.assertEqual(workers.workers_dead([f"{here}:{os.getpid()}", f"{here}:{DEAD_PID}"]), {f"{here}:{DEAD_PID}"})
        read.assert_not_called()

    def test_a_pusher_is_judged_by_the_pusher_each_cluster_names(self):
        with self.statuses(*[[cluster("b", workers=[5], pusher=6)]] * 20):
            self.assertEqual(workers.pushers_dead(["b:6", "b:5"]), {"b:5"})


class HeartbeatsSharedTests(TestCase):
    @pytest.mark.skipif(settings.Q_BROKER != "orm", reason="the database queue only")
    def test_with_the_database_queue_only_a_cache_every_host_reaches_is_shared(self):
        local = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": "/tmp/x"}}
        remote = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/9"}}
        with override_settings(CACHES=local):
            self.assertFalse(workers.heartbeats_shared())
        with override_settings(CACHES=remote):
            self.assertTrue(workers.heartbeats_shared())

    @pytest.mark.skipif(settings.Q_BROKER != "redis", reason="the Redis queue only")
    def test_with_the_redis_queue_the_clusters_status_is_in_redis(self):
        self.assertTrue(workers.heartbeats_shared())
