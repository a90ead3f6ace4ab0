"""Workers: what detection/workers.py knows about them (names, liveness, the queue-key
handshake), and real `qcluster` processes sharing one Redis queue and one PostgreSQL database.

The clusters run in the PostgreSQL + Redis pass of the suite (`make test-scale`); the embedded
default keeps its test database in memory, where no other process can see it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import TransactionTestCase, override_settings
from django_q import core_signing
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import Task
from django_q.signing import BadSignature, PickleSerializer, SignedPackage

from accounts.services import user_create
from detection import services, workers
from detection.models import Analysis, QueueKey

from .base import DEAD_PID, PASSWORD, BaseTestCase, astronaut_mp4

ROOT = Path(__file__).resolve().parents[2]
RUN_TASK = "detection.tasks.analysis_run_task"
REQUEUE_AFTER = 3  # seconds: DETECTION_REQUEUE_AFTER for these tests
DEADLINE = 300  # seconds for every analysis to finish, on a busy 2-core machine

shared_services = pytest.mark.skipif(
    settings.Q_BROKER != "redis" or connection.vendor != "postgresql",
    reason="needs the PostgreSQL + Redis run (make test-scale)",
)


@shared_services
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
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "MEDIA_ROOT": str(self.media_root),
            "DEEPFAKE_MODEL_PATH": str(self.model),
            "DETECTION_REQUEUE_AFTER": str(REQUEUE_AFTER),
            "DETECTION_HEATMAPS": "0",
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

    def wait_until(self, condition, *, sweep: bool = False) -> None:
        """Poll the database until `condition()` holds; with `sweep`, run the scheduled
        sweep each time as the cluster's schedule would (its shortest interval is a minute)."""
        deadline = time.monotonic() + DEADLINE
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

    def test_a_worker_with_the_sites_key_starts(self):
        workers.queue_key_record()

        with mock.patch("django_q.management.commands.qcluster.Cluster") as cluster:
            call_command("qcluster", run_once=True)

        cluster.return_value.start.assert_called_once_with()

    def test_each_upload_records_the_key_it_was_signed_with(self):
        analysis = self.analysis_for(self.alice)
        with mock.patch("detection.services.async_task"):
            services.analysis_enqueue(analysis_id=analysis.pk)

        self.assertEqual(
            QueueKey.objects.get().fingerprint, workers.queue_key_fingerprint()
        )


class WorkerLivenessTests(BaseTestCase):
    def test_a_worker_on_this_host_is_dead_once_its_process_is_gone(self):
        host = socket.gethostname()
        self.assertTrue(workers.worker_is_dead(f"{host}:{DEAD_PID}"))
        self.assertFalse(workers.worker_is_dead(f"{host}:{os.getpid()}"))
        self.assertFalse(workers.worker_is_dead(workers.worker_name()))

    def test_a_worker_on_another_host_is_never_declared_dead_from_here(self):
        self.assertFalse(workers.worker_is_dead(f"other-host:{DEAD_PID}"))
        self.assertFalse(workers.worker_is_dead(""))
