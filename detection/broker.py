"""django-q2's brokers, made to lose nothing and to wait for no dead worker.

Database queue (`LeasedORM`): django-q2's ORM broker locks a message it hands out until
`retry` seconds have passed, and `retry` must exceed the longest job; a message held by a
killed cluster therefore waited that long (32 minutes by default) before anyone ran it. Here a
message is locked for a short lease (DETECTION_QUEUE_LEASE seconds) that a thread of the
cluster's pusher renews for as long as the message is held, until the job's result is
acknowledged (the message deleted). A cluster that dies stops renewing: its messages are
delivered again after one lease. The one its worker was running then finds its analysis
`running` and fails it (`services.analysis_run`); those it had taken ahead run. An idle
pusher on SQLite waits for the database's files to change (`detection.wakeup`) instead of
querying five times a second: a new task starts within milliseconds of its upload. A cluster
holds at most `most_held()` messages, and gives back those waiting when its pusher stops (as
on Redis, below): their leases end at once instead of after up to one lease. Each lease is
marked with its cluster (`_owner_tag`), so a cluster starts and deletes only what it holds.

Redis queue (`ReliableRedis`): a message a worker takes is not simply popped.

django-q2's own Redis broker pops a message when a cluster's pusher takes it; if the cluster
dies before the job ends (SIGKILL, out of memory, a lost machine), the message is gone and its
analysis stays `queued` forever. Here the pusher moves the message atomically (BLMOVE) to a
list of its own, `<queue>:held:<host>:<pusher pid>`, and the message leaves that list only
when the job's result is acknowledged. A held list whose pusher is dead (its pid gone on this
host, or named in no cluster's statistics for a while: `workers.pushers_dead`) belongs to a
dead cluster: `release_dead` gives its messages back to the head of the queue.

A cluster holds at most Q_CLUSTER's `workers` + `queue_limit` messages. django-q2's pusher
takes a message, then waits to put it in the cluster's task queue (`queue_limit` long): one
busy worker with queue_limit 1 held three (one running, one in the task queue, one in the
pusher's hand) that idle clusters could have run. When the pusher stops (the cluster is told
to stop, SIGTERM), it gives everything it holds back to the queue; a worker then starts no
message its cluster no longer holds (`tasks`), and finishes the job it runs.
"""

from __future__ import annotations

import logging
import multiprocessing.util
import os
import socket
import threading
import time
import zlib
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf

from . import workers
from .wakeup import DatabaseWatch

logger = logging.getLogger(__name__)

# An idle worker on SQLite queries the queue this often at least (it wakes up at once on a write).
IDLE_CHECK_SECONDS = 2.0
# A Redis pusher holding all it may looks again this often for a message acknowledged.
FULL_CHECK_SECONDS = 0.2


def _owner_tag() -> int:
    """Which cluster a lease is: written in its end's microseconds (0-999999), the same for a
    cluster's pusher, which takes and renews leases, and its workers, which ask whether their
    cluster still holds a job's message (both children of the cluster's own process). So a
    stopping cluster neither starts nor deletes a message another cluster has leased since."""
    parent = multiprocessing.parent_process()
    cluster = parent.pid if parent is not None else os.getpid()
    return zlib.crc32(f"{socket.gethostname()}:{cluster}".encode()) % 1_000_000


def _run_token(payload) -> str | None:
    from .selectors import queue_token_of  # (selectors imports this module)

    return queue_token_of(payload)


def _running_on_this_machine() -> set[str]:
    """The queue tokens of the analyses a worker of this machine is running."""
    from .models import Analysis

    running = Analysis.objects.filter(status=Analysis.Status.RUNNING, worker__startswith=f"{socket.gethostname()}:")
    return set(running.values_list("queue_token", flat=True))


def most_held() -> int | None:
    """How many messages a cluster may hold: one per worker and `queue_limit` ahead."""
    return Conf.WORKERS + Conf.QUEUE_LIMIT if Conf.QUEUE_LIMIT else None


class LeasedORM(ORM):
    def __init__(self, list_key: str | None = None):
        super().__init__(list_key=list_key)
        self._held: dict[int, float] = {}  # message id -> when it was taken (monotonic)
        self._held_lock = threading.Lock()
        self._renewer_pid: int | None = None
        self._give_back_pid: int | None = None
        # Held over each write of the held messages' locks, so that a renewal cannot lease
        # again what the stopping pusher has just given back.
        self._lease_write = threading.Lock()
        self._stopped = False

    @staticmethod
    def lease_seconds() -> float:
        return settings.DETECTION_QUEUE_LEASE

    def timeout(self, task):
        """The end of a lease this cluster takes or renews, marked as this cluster's (`_owner_tag`)."""
        ends = timezone.now() + timedelta(seconds=self.lease_seconds())
        return ends.replace(microsecond=_owner_tag())

    def dequeue(self):
        """Take the next message (with a lease) or, when there is none, wait for one: on
        SQLite until the database's files change (a new message is a write), checking at
        least every IDLE_CHECK_SECONDS; elsewhere for Q_CLUSTER's `poll`."""
        self._give_back_at_exit()
        watch = DatabaseWatch(Conf.ORM)
        mark = watch.mark()
        most = most_held()
        room = Conf.BULK if most is None else min(Conf.BULK, most - self._holding(most))
        if room <= 0:  # wait for a job to end (its message deleted)
            watch.wait(mark, IDLE_CHECK_SECONDS if watch.active else FULL_CHECK_SECONDS)
            return None
        taken = self._take(room)
        if taken:
            with self._held_lock:
                self._held.update((pk, time.monotonic()) for pk, _ in taken)
            self._start_renewing()
            return taken
        watch.wait(mark, IDLE_CHECK_SECONDS if watch.active else Conf.POLL)
        return None

    def _take(self, most: int) -> list[tuple[int, bytes]]:
        """django-q2's ORM dequeue without its sleep: lock up to `most` waiting messages, the
        oldest first (django-q2 asks for them in no order: PostgreSQL handed newer ones out
        before two that were given back)."""
        now = timezone.now()
        taken = []
        for message in self.get_connection().filter(key=self.list_key, lock__lt=now).order_by("pk")[:most]:
            # Another cluster may have been faster: then the lock has changed.
            locked = self.get_connection().filter(id=message.id, lock=message.lock)
            if locked.update(lock=self.timeout(message)):
                taken.append((message.pk, message.payload))
        return taken

    def _start_renewing(self) -> None:
        """One renewing thread per process (the pusher), started with its first message."""
        if self._renewer_pid == os.getpid():
            return
        self._renewer_pid = os.getpid()
        threading.Thread(target=self._renew_forever, name="queue-lease", daemon=True).start()

    def _renew_forever(self) -> None:
        while True:
            time.sleep(self.lease_seconds() / 4)
            try:
                self.renew_leases()
            except Exception:  # the database may be briefly away: try again next beat
                logger.exception("could not renew the leases of held queue messages")
            finally:
                connections.close_all()  # this thread's own connection

    @staticmethod
    def longest_hold() -> float:
        """No message can legitimately be held longer: the jobs queued ahead of it in the
        cluster, one running, then its own, each stopped at the job timeout. A message held
        longer belongs to a worker that died while its cluster lives on (its analysis was
        failed when the next worker started); it is let go and delivered again, then skipped."""
        return (Conf.QUEUE_LIMIT + 2) * Conf.TIMEOUT

    def renew_leases(self) -> int:
        """Extend the lease of every message this process holds; forget those acknowledged
        and those held too long. Returns how many are still held."""
        oldest = time.monotonic() - self.longest_hold()
        with self._held_lock:
            for pk in [pk for pk, taken_at in self._held.items() if taken_at < oldest]:
                logger.warning("queue message %s held too long: its worker died; letting it go", pk)
                del self._held[pk]
            held = set(self._held)
        if not held:
            return 0
        with self._lease_write:
            if self._stopped:
                return 0
            still = self._still_held(held)
            if still:
                self.get_connection().filter(pk__in=still).update(lock=self.timeout(None))
        return len(still)

    def _still_held(self, held: set[int]) -> set[int]:
        """Which of these held messages are not acknowledged yet; the others are forgotten."""
        messages = self.get_connection().filter(key=self.list_key, pk__in=held)
        still = set(messages.values_list("pk", flat=True))
        with self._held_lock:
            for pk in held - still:
                self._held.pop(pk, None)
        return still

    def _holding(self, most: int) -> int:
        """How many messages this pusher holds; the database is asked only when they are
        `most` or more by its own count (some may have been acknowledged since)."""
        with self._held_lock:
            held = set(self._held)
        return len(held) if len(held) < most else len(self._still_held(held))

    def _give_back_at_exit(self) -> None:
        """Have the pusher give back what it holds when it returns (the cluster stops). Only
        in a cluster's processes (children of the cluster's own): a process that takes a
        message itself (a test, a shell) keeps its leases, which run out."""
        if self._give_back_pid == os.getpid() or multiprocessing.parent_process() is None:
            return
        self._give_back_pid = os.getpid()
        multiprocessing.util.Finalize(None, self._give_back, exitpriority=10)

    def _give_back(self) -> None:
        try:
            given = self.give_back()
        except Exception:  # the database away: the leases end by themselves
            logger.exception("could not give the held queue messages back")
            return
        if given:
            logger.info("gave %d held queue messages back to the queue", given)

    def give_back(self) -> int:
        """End the lease of every message this pusher holds that no worker of this machine is
        running, so that any cluster may take them now; how many. The messages waiting in this
        cluster's task queue are then not started here (`holds`, `tasks.message_check`). The
        one a worker is finishing keeps its lease (no longer renewed) for that worker to
        acknowledge: given back, it went to a cluster on another machine, which without a cache
        shared with this one cannot see the worker and failed the analysis as interrupted while
        it was being finished (a QA pass, 2026-11-27)."""
        with self._lease_write:
            self._stopped = True
            with self._held_lock:
                held = set(self._held)
                self._held.clear()
            if not held:
                return 0
            messages = self.get_connection().filter(key=self.list_key, pk__in=held).values_list("pk", "payload")
            running = _running_on_this_machine()
            back = [pk for pk, payload in messages if _run_token(payload) not in running]
            ended = timezone.now() - timedelta(microseconds=1)
            return self.get_connection().filter(pk__in=back).update(lock=ended) if back else 0

    def acknowledge(self, task_id) -> None:
        """Delete the message of a job that ended, unless this cluster no longer holds it: it
        was given back (the cluster is stopping) and waits for another cluster or is leased by
        one, so the job was skipped here (`tasks.message_check`), or it ran and its analysis is
        done, which the next run skips. Never another cluster's lease."""
        for _ in range(3):  # again if this cluster's own renewal moved the lease meanwhile
            lock = self._own_live_lock(task_id)
            if lock is None or self.get_connection().filter(pk=task_id, lock=lock).delete()[0]:
                return

    def drop(self, unwanted) -> int:
        """Delete every message whose payload `unwanted(payload)` is true, held or not; how many.
        A held one's pusher then has room for another (`_holding`)."""
        messages = self.get_connection().filter(key=self.list_key).values_list("pk", "payload")
        doomed = [pk for pk, payload in messages if unwanted(payload)]
        return self.get_connection().filter(pk__in=doomed).delete()[0] if doomed else 0

    def holds(self, task_id) -> bool:
        """Whether this cluster still holds the message: leased, and by this cluster."""
        return self._own_live_lock(task_id) is not None

    def _own_live_lock(self, task_id):
        lock = self.get_connection().filter(pk=task_id).values_list("lock", flat=True).first()
        if lock is None or lock <= timezone.now() or lock.microsecond != _owner_tag():
            return None
        return lock


class ReliableRedis(Redis):
    def __init__(self, list_key: str | None = None):
        super().__init__(list_key=list_key)
        self._taken: dict[bytes, float] = {}  # payload held -> when it was taken (monotonic)
        self._give_back_pid: int | None = None

    def _held_key(self, host: str, pid: int) -> str:
        return f"{self.list_key}:held:{host}:{pid}"

    def dequeue(self):
        held = self._held_key(socket.gethostname(), os.getpid())  # runs in the pusher
        self._give_back_at_exit(held)
        most = most_held()
        if most is not None and self._holding(held) >= most:
            time.sleep(FULL_CHECK_SECONDS)
            return None
        payload = self.connection.blmove(self.list_key, held, 1, "LEFT", "RIGHT")
        if payload:
            self._taken[payload] = time.monotonic()
            return [((held, payload), payload)]
        return None

    def _holding(self, held: str) -> int:
        """How many messages this pusher holds, once those held longer than any job can run
        are let go (LeasedORM.longest_hold: their worker died while the cluster lived on; its
        analysis was failed, and were the message run again it would be skipped)."""
        payloads = self.connection.lrange(held, 0, -1)
        now = time.monotonic()
        self._taken = {payload: self._taken.get(payload, now) for payload in payloads}
        for payload, taken_at in list(self._taken.items()):
            if taken_at < now - LeasedORM.longest_hold():
                logger.warning("a queue message held too long: its worker died; letting it go")
                self.connection.lrem(held, 1, payload)
                del self._taken[payload]
        return len(self._taken)

    def _give_back_at_exit(self, held: str) -> None:
        """Have the pusher give back what it holds when it returns (the cluster stops). On its
        first call in a process, its list is given back at once too: a new pusher holds
        nothing yet, so what the list holds is a dead pusher's that had this pid (process ids
        come round again, in a container after every restart)."""
        if self._give_back_pid == os.getpid():
            return
        self._give_back_pid = os.getpid()
        self._give_back(held)
        multiprocessing.util.Finalize(None, self._give_back, args=(held,), exitpriority=10)

    def _give_back(self, held: str) -> None:
        try:
            given = self.give_back(held)
        except Exception:  # Redis away: the list stays, and is released once this pusher is dead
            logger.exception("could not give the held queue messages back")
            return
        if given:
            logger.info("gave %d held queue messages back to the queue", given)

    def give_back(self, held: str) -> int:
        """Move every message of a held list to the head of the queue, oldest first; how many.
        One a worker still runs comes back too: whoever takes it finds its analysis running
        and leaves it (services.analysis_run)."""
        given = 0
        while self.connection.lmove(held, self.list_key, "RIGHT", "LEFT"):
            given += 1
        return given

    def holds(self, task_id) -> bool:
        """Whether the message is still in the held list it was taken into: not given back."""
        held, payload = task_id
        return self.connection.lpos(held, payload) is not None

    def acknowledge(self, task_id) -> None:
        held, payload = task_id
        self.connection.lrem(held, 1, payload)

    def drop(self, unwanted) -> int:
        """Remove every message whose payload `unwanted(payload)` is true, waiting or held; how
        many. A held one's pusher then has room for another (`_holding`)."""
        dropped = 0
        for queue in [self.list_key, *self._held_lists().values()]:
            for payload in set(self.connection.lrange(queue, 0, -1)):
                if unwanted(payload):
                    dropped += self.connection.lrem(queue, 0, payload)
        return dropped

    def fail(self, task_id) -> None:
        self.acknowledge(task_id)  # unreadable: dropped (the sweep queues its analysis again)

    def purge_queue(self):
        for held in self.connection.scan_iter(match=f"{self.list_key}:held:*"):
            self.connection.delete(held)
        return super().purge_queue()

    def _held_lists(self) -> dict[str, str]:
        """Every held list, by its pusher's name (host:pid)."""
        prefix = f"{self.list_key}:held:"
        lists = {}
        for held in self.connection.scan_iter(match=f"{prefix}*"):
            held = held.decode() if isinstance(held, bytes) else held
            lists[held[len(prefix):]] = held
        return lists

    def release_dead(self) -> int:
        """Give the held lists of dead pushers back to the queue; how many messages."""
        lists = self._held_lists()
        released = 0
        for pusher in workers.pushers_dead(lists):
            given = self.give_back(lists[pusher])
            if given:
                logger.warning("gave back %d queue messages held by the dead cluster pusher %s", given, pusher)
            released += given
        return released

    def waiting_payloads(self) -> list[bytes]:
        """The messages waiting in the queue and those held, by live clusters or by dead
        ones not released yet (release_dead gives those back)."""
        payloads = list(self.connection.lrange(self.list_key, 0, -1))
        for held in self._held_lists().values():
            payloads += self.connection.lrange(held, 0, -1)
        return payloads
