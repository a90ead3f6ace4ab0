"""A cluster's task queue freed from a worker that died waiting on it.

django-q2's workers take their jobs from the cluster's task queue (a `multiprocessing.Queue`
filled by the cluster's pusher) with a blocking `get`, which holds the queue's read lock for as
long as it waits for a message. A worker killed while it waits (SIGKILL, the out-of-memory
killer) never releases that lock: the worker started in its place, and every other worker, wait
for it forever. The cluster looks alive (its pusher takes a message, its sentinel saves its
status) but runs no job again, and a SIGTERM hangs, as nobody reads the stop messages
(reproduced 2026-11-27: an idle worker killed with `kill -9`, then an upload stayed queued).

So the sentinel, the cluster's process that guards the workers, watches the queue
(`TaskQueueWatch`, in a thread of its own). A job can sit in the queue's pipe while its read lock
stays taken only when the lock's holder does not read: a live worker holding it reads a waiting
job at once, and while every worker is busy no one holds it. When that has lasted
DETECTION_QUEUE_STUCK_AFTER seconds, and a worker has died since the lock was last seen free (so
a worker that is only paused, SIGSTOP or a debugger, keeps its lock), the sentinel releases the
lock, with an error in the log, and the next worker reads the job. The same holds for the stop
messages the sentinel sends its workers when the cluster stops. The qcluster command
(deepfake_site/management/commands/qcluster.py) starts clusters with `WatchedSentinel`.

The pipe itself is looked at (`poll`), never django-q2's `Queue.empty()`: that is a counter,
which a worker killed between taking a job and counting it leaves one too high for good (a
reviewer's reproduction, 2026-11-27): a live idle worker's lock would then look stuck."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django_q.cluster import Sentinel

logger = logging.getLogger(__name__)

CHECK_EVERY = 1.0  # seconds between two looks at the queue


class TaskQueueWatch:
    """Frees `queue`'s read lock when a job has waited in its pipe `stuck_after` seconds while
    the lock stayed taken and a worker has died since the lock was last seen free (see the
    module's docstring). `worker_died` is told of each worker the sentinel replaces."""

    def __init__(self, queue, *, stuck_after: float) -> None:
        self.queue = queue
        self.stuck_after = stuck_after
        self.stuck_since: float | None = None
        self.death_since_free = False  # a worker died since the lock was last seen free

    def worker_died(self) -> None:
        self.death_since_free = True

    def check(self, now: float) -> bool:
        """One look at the queue; whether the lock was released."""
        if not (self._lock_taken() and self._job_waits() and self.death_since_free):
            self.stuck_since = None
            return False
        if self.stuck_since is None:
            self.stuck_since = now
            return False
        if now - self.stuck_since < self.stuck_after:
            return False
        self.stuck_since = None
        try:
            self.queue._rlock.release()  # noqa: SLF001 (what the dead worker holds; see above)
        except ValueError:  # freed meanwhile after all: nothing to do
            return False
        self.death_since_free = False
        logger.error(
            "a job waited %.0f s in the task queue while its read lock stayed taken: the worker "
            "that held it died while waiting for a job (killed); the lock is released for the others",
            self.stuck_after,
        )
        return True

    def _lock_taken(self) -> bool:
        lock = self.queue._rlock  # noqa: SLF001
        if lock.acquire(block=False):  # free: a worker will take a job when it is ready
            lock.release()
            self.death_since_free = False
            return False
        return True

    def _job_waits(self) -> bool:
        """Whether bytes wait in the queue's pipe: a job the pusher put there or, once the
        sentinel has sent its workers their stop messages and closed its end of the queue, those."""
        reader = self.queue._reader  # noqa: SLF001
        try:
            return reader.closed or reader.poll(0)
        except OSError:  # closed meanwhile
            return True

    def run(self) -> None:
        """Look every CHECK_EVERY seconds, for as long as the process lives."""
        while True:
            time.sleep(CHECK_EVERY)
            try:
                self.check(time.monotonic())
            except Exception:  # never take the sentinel down with it
                logger.exception("could not check the task queue")


class WatchedSentinel(Sentinel):
    """django-q2's sentinel, with the task queue's read lock watched while it guards its
    workers and while it stops them."""

    def guard(self):
        self.queue_watch = TaskQueueWatch(self.task_queue, stuck_after=settings.DETECTION_QUEUE_STUCK_AFTER)
        threading.Thread(target=self.queue_watch.run, name="task-queue-watch", daemon=True).start()
        return super().guard()

    def reincarnate(self, process):
        if process in self.pool and hasattr(self, "queue_watch"):  # a worker, not the pusher or monitor
            self.queue_watch.worker_died()
        return super().reincarnate(process)
