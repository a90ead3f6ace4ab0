"""What the site knows about its worker processes: each one's name (host:pid, stored on the
analysis it runs), whether a named worker or pusher is still alive on any host, the watch
that every worker keeps on the others, and the queue-key handshake that stops a worker which
could not read the site's messages from starting."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import connections
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.status import Stat

from .models import Analysis, QueueKey

logger = logging.getLogger(__name__)


def worker_name() -> str:
    """This process's name, as stored in Analysis.worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


# clusters_running()'s last answer and when it was read: every open result page polls it.
_clusters_seen: tuple[float, int | None] = (float("-inf"), None)
CLUSTERS_SEEN_FOR_SECONDS = 5.0


def clusters_running() -> int | None:
    """How many worker clusters are up, by the status each one refreshes every few seconds
    (django-q2's Stat: in the Django cache with the ORM broker, which web and workers must then
    share; in Redis with the Redis broker); None when that cannot be read. Read at most every
    CLUSTERS_SEEN_FOR_SECONDS per process."""
    global _clusters_seen
    seen_at, count = _clusters_seen
    if time.monotonic() - seen_at < CLUSTERS_SEEN_FOR_SECONDS:
        return count
    try:
        count = len(Stat.get_all())
    except Exception:  # a status that cannot be read must not break the page asking
        logger.warning("could not read the worker clusters' status", exc_info=True)
        count = None
    _clusters_seen = (time.monotonic(), count)
    return count


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process nobody has reaped yet (a zombie) is dead too
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# A live cluster saves its status (Stat: host, pusher and worker pids) every 0.5 s, for 3 s; a
# sentinel busy with the schedule or a slow store can miss a few. A process another host runs
# counts as dead only when no reading over HEARTBEAT_WATCH_SECONDS names it, and readings that
# succeeded span at least 10 of those 12 s (a store that answers only at one end proves
# nothing): its cluster has then saved nothing for at least 13 s (10 + the 3 s a status lives),
# over twenty times its refresh period.
HEARTBEAT_WATCH_SECONDS = 12.0
HEARTBEAT_READ_EVERY = 2.0  # below the 3 s a status lives: no save falls between two readings


def heartbeats_shared() -> bool:
    """Whether every host's cluster status can be read here: always with the Redis broker;
    with another broker only from a cache that hosts share (not one in a process's memory or
    in this host's files)."""
    broker = get_broker()
    if isinstance(broker, Redis):
        return True
    return broker.cache is not None and not isinstance(broker.cache, (LocMemCache, FileBasedCache, DummyCache))


def _reported(role: str) -> set[str] | None:
    """The names (host:pid) of the processes of `role` ("worker" or "pusher") that live
    clusters report now; None when the statuses cannot be read or none is there (an empty
    reading proves nothing: the store may be the one that is away)."""
    try:
        stats = Stat.get_all()
    except Exception:
        logger.warning("could not read the worker clusters' status", exc_info=True)
        return None
    names = set()
    for stat in stats:
        pids = stat.workers if role == "worker" else [stat.pusher]
        names.update(f"{stat.host}:{pid}" for pid in pids)
    return names or None


def _processes_judged(names: Iterable[str], *, role: str) -> tuple[set[str], set[str]]:
    """(dead, undecided) among the named processes of `role`. On this host a process is dead
    when its pid is gone. On another, when the shared cluster status has not named it for
    HEARTBEAT_WATCH_SECONDS; undecided when that status is not shared, when the readings that
    succeeded span less than all but one reading period of that time, and when the name is not
    host:pid."""
    here = socket.gethostname()
    dead, remote, unnamed = set(), set(), set()
    for name in names:
        host, _, pid = name.rpartition(":")
        if not pid.isdigit():
            unnamed.add(name)
        elif host == here:
            if not _pid_alive(int(pid)):
                dead.add(name)
        else:
            remote.add(name)
    if not remote:
        return dead, unnamed
    if not heartbeats_shared():
        return dead, remote | unnamed
    started = time.monotonic()
    first_read = last_read = None  # when readings succeeded: they must span most of the watch
    while remote:
        reported = _reported(role)
        if reported is not None:
            first_read = first_read if first_read is not None else time.monotonic()
            last_read = time.monotonic()
            remote -= reported
        if not remote or time.monotonic() >= started + HEARTBEAT_WATCH_SECONDS:
            break
        time.sleep(HEARTBEAT_READ_EVERY)
    watched = first_read is not None and last_read - first_read >= HEARTBEAT_WATCH_SECONDS - HEARTBEAT_READ_EVERY
    return (dead | remote, unnamed) if watched else (dead, remote | unnamed)


def workers_dead(names: Iterable[str]) -> set[str]:
    """The named worker processes (Analysis.worker) known to be dead, on any host. Waits up
    to HEARTBEAT_WATCH_SECONDS when one on another host seems gone; one that cannot be
    judged is not among them."""
    return _processes_judged(names, role="worker")[0]


def worker_is_alive(name: str) -> bool:
    """Whether the worker called `name` is known to be alive, on any host: False also when it
    cannot be judged (another host's, without a shared cluster status)."""
    dead, undecided = _processes_judged([name], role="worker")
    return name not in dead and name not in undecided


def pushers_dead(names: Iterable[str]) -> set[str]:
    """The named cluster pushers (host:pid, the owners of Redis held lists) known to be dead."""
    return _processes_judged(names, role="pusher")[0]


# Each worker process checks on the others this often; with HEARTBEAT_WATCH_SECONDS, a worker
# that died anywhere is noticed within about 45 s while any worker lives, busy or not.
WATCH_SECONDS = 30.0


def watch_start(*, check: Callable[[], object]) -> None:
    """Run `check` every WATCH_SECONDS in a thread of this (worker) process, beside its jobs:
    a scheduled sweep is a queued task, which waits while every worker is busy."""
    threading.Thread(target=_watch, args=(check,), name="worker-watch", daemon=True).start()


def _watch(check: Callable[[], object]) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        try:
            check()
        except Exception:  # the database or Redis may be briefly away: try again next time
            logger.exception("could not check on the other workers")
        finally:
            connections.close_all()  # this thread's own connections


def queue_key_fingerprint() -> str:
    """An HMAC of a fixed text under the key that signs queue messages: equal fingerprints
    mean equal keys, and the fingerprint reveals nothing about the key."""
    key = str(Conf.SECRET_KEY).encode()
    return hmac.new(key, b"deepfake-detector queue key check", hashlib.sha256).hexdigest()


_recorded_fingerprint: str | None = None


def queue_key_record() -> None:
    """Record (once per process) the fingerprint of the key this web process signs with."""
    global _recorded_fingerprint
    fingerprint = queue_key_fingerprint()
    if _recorded_fingerprint == fingerprint:
        return
    QueueKey.objects.update_or_create(
        pk=1,
        defaults={"fingerprint": fingerprint, "recorded_at": timezone.now(), "recorded_by": worker_name()},
    )
    _recorded_fingerprint = fingerprint


class QueueKeyMismatch(Exception):
    """This process signs queue messages with another key than the site's."""


def storage_check() -> str | None:
    """Why this process's MEDIA_ROOT seems not to be the storage the site writes uploads to (the
    newest upload is not there: every analysis would fail as the server's fault); None when it
    holds it, or when there is no upload yet."""
    newest = Analysis.objects.exclude(file="").order_by("-created_at").only("file", "created_at").first()
    if newest is None or newest.file.storage.exists(newest.file.name):
        return None
    return (
        f"the newest upload ({newest.file.name}, {newest.created_at:%Y-%m-%d %H:%M} UTC) is not in this "
        f"worker's MEDIA_ROOT ({settings.MEDIA_ROOT}): web and worker processes must share one "
        "MEDIA_ROOT (a shared file system such as NFS), or every analysis fails"
    )


def queue_key_check() -> None:
    """Raise QueueKeyMismatch when the site recorded a different queue key from this
    process's: such a worker could read none of the site's messages."""
    recorded = QueueKey.objects.filter(pk=1).first()
    if recorded is None or hmac.compare_digest(recorded.fingerprint, queue_key_fingerprint()):
        return
    raise QueueKeyMismatch(
        "This worker's QUEUE_SECRET_KEY differs from the one the site signs tasks with "
        f"(recorded by {recorded.recorded_by} at {recorded.recorded_at:%Y-%m-%d %H:%M} UTC): "
        "it could not read a single task. Give every web and worker process the same "
        "QUEUE_SECRET_KEY."
    )
