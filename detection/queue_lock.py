"""A cluster's task queue freed from a worker that died waiting on it.

django-q2's workers take their jobs from the cluster's task queue (a `multiprocessing.Queue`
filled by the cluster's pusher) with a blocking `get`, which holds the queue's read lock for as
long as it waits for a message. A worker killed while it waits (SIGKILL, the out-of-memory
killer) never releases that lock: the worker started in its place, and every other worker, wait
for it forever. The cluster looks alive (its pusher takes a message, its sentinel saves its
status) but runs no job again, and a SIGTERM hangs, as nobody reads the stop messages
(reproduced 2026-11-27: an idle worker killed with `kill -9`, then an upload stayed queued).

So the sentinel, the cluster's process that guards the workers, watches the queue
(`TaskQueueWatch`, in a thread of its own): a message can wait in the queue while its read lock
stays taken only when the lock's holder is gone. A live worker holding it takes a waiting
message at once, and while every worker is busy no one holds it. After
DETECTION_QUEUE_STUCK_AFTER seconds of that, the sentinel releases the lock, with an error in
the log, and the next worker reads the message. The same holds for the stop messages the
sentinel sends its workers when the cluster stops. The qcluster command
(deepfake_site/management/commands/qcluster.py) starts clusters with `WatchedSentinel`."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django_q.cluster import Sentinel

logger = logging.getLogger(__name__)

CHECK_EVERY = 1.0  # seconds between two looks at the queue


class TaskQueueWatch:
    """Frees `queue`'s read lock when a message has waited `stuck_after` seconds while the lock
    stayed taken (see the module's docstring)."""

    def __init__(self, queue, *, stuck_after: float) -> None:
        self.queue = queue
        self.stuck_after = stuck_after
        self.stuck_since: float | None = None

    def check(self, now: float) -> bool:
        """One look at the queue; whether the lock was released."""
        if not self._message_waits_on_a_taken_lock():
            self.stuck_since = None
            return False
        if self.stuck_since is None:
            self.stuck_since = now
            return False
        if now - self.stuck_since < self.stuck_after:
            return False
        self.stuck_since = None
        lock = self.queue._rlock  # noqa: SLF001 (what the dead worker holds; see above)
        try:
            lock.release()
        except ValueError:  # freed meanwhile after all: nothing to do
            return False
        logger.error(
            "a message waited %.0f s in the task queue while its read lock stayed taken: the worker "
            "that held it died while waiting for a job (killed); the lock is released for the others",
            self.stuck_after,
        )
        return True

    def _message_waits_on_a_taken_lock(self) -> bool:
        if not self._message_waits():
            return False
        lock = self.queue._rlock  # noqa: SLF001
        if lock.acquire(block=False):  # free: a worker will take the message when it is ready
            lock.release()
            return False
        return True

    def _message_waits(self) -> bool:
        """Whether a message waits in the queue: a job the pusher put there or, once the
        sentinel has sent its workers their stop messages and closed its end of the queue, those."""
        try:
            return self.queue._reader.closed or not self.queue.empty()  # noqa: SLF001
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
        watch = TaskQueueWatch(self.task_queue, stuck_after=settings.DETECTION_QUEUE_STUCK_AFTER)
        threading.Thread(target=watch.run, name="task-queue-watch", daemon=True).start()
        return super().guard()
