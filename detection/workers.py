"""What the site knows about its worker processes: each one's name (host:pid, stored on the
analysis it runs), whether a named worker on this host is still alive, and the queue-key
handshake that stops a worker which could not read the site's messages from starting."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
import time

from django.utils import timezone
from django_q.conf import Conf
from django_q.status import Stat

from .models import QueueKey

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


def worker_is_alive_here(name: str) -> bool:
    """Whether the worker called `name` is a live process on this host."""
    host, _, pid = name.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and _pid_alive(int(pid))


def worker_is_dead(name: str) -> bool:
    """Whether the worker called `name` ran on this host and its process is gone. A worker on
    another host cannot be checked from here: False."""
    host, _, pid = name.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


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
