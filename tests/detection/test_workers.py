"""Real `qcluster` processes sharing one Redis queue and one PostgreSQL database.

Runs in the PostgreSQL + Redis pass of the suite (`make test-scale`); the embedded default
keeps its test database in memory, where no other process can see it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import TransactionTestCase, override_settings
from django_q.brokers import get_broker
from django_q.models import Task

from accounts.services import user_create
from detection import services
from detection.models import Analysis

from .base import PASSWORD, astronaut_mp4

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
