"""`?wait=`: an API upload may hold its answer until the analysis finishes (30 s at most).

Not a selector: it blocks until the database changes, so it lives apart from the plain reads.
On SQLite it reads the analysis again as soon as the database's files change
(`detection.wakeup`), and at least every WAIT_CHECK_SECONDS; elsewhere every WAIT_POLL_SECONDS.

A waiting request holds one of the web process's threads. So that waits cannot take them all
(and the site with them), a process lets at most API_WAIT_SLOTS requests wait at once, and at
most API_WAITS_PER_USER of one user's; a request beyond either answers at once (202, queued or
running) as without `?wait`, and its client polls the analysis's `url` as it would after a
wait that ran out.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from time import monotonic
from typing import Iterator

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from .models import Analysis
from .selectors import analysis_get, analysis_get_detail
from .wakeup import DatabaseWatch

WAIT_POLL_SECONDS = 0.1
WAIT_CHECK_SECONDS = 1.0


_slots_lock = threading.Lock()
_waiting: Counter = Counter()  # user pk -> requests of that user waiting in this process


@contextmanager
def _wait_slot(owner: AbstractBaseUser) -> Iterator[bool]:
    """Whether this request may wait (a slot of this process is free for its user); the slot
    is given back when the block ends."""
    with _slots_lock:
        granted = (
            _waiting.total() < settings.API_WAIT_SLOTS
            and _waiting[owner.pk] < settings.API_WAITS_PER_USER
        )
        if granted:
            _waiting[owner.pk] += 1
    try:
        yield granted
    finally:
        if granted:
            with _slots_lock:
                _waiting[owner.pk] -= 1
                if _waiting[owner.pk] <= 0:
                    del _waiting[owner.pk]


def analysis_wait(
    *,
    owner: AbstractBaseUser,
    analysis_id,
    seconds: float,
) -> Analysis | None:
    """Wait until the analysis is done or failed, or `seconds` have passed; return its
    detail either way. Without a free wait slot (see the module's docstring) it does not wait."""
    if seconds <= 0:
        return analysis_get_detail(viewer=owner, analysis_id=analysis_id)
    with _wait_slot(owner) as granted:
        return _wait(owner=owner, analysis_id=analysis_id, seconds=seconds if granted else 0)


def _wait(*, owner: AbstractBaseUser, analysis_id, seconds: float) -> Analysis | None:
    deadline = monotonic() + seconds
    watch = DatabaseWatch()
    while True:
        mark = watch.mark()
        analysis = analysis_get(viewer=owner, analysis_id=analysis_id)
        remaining = deadline - monotonic()
        if analysis is None or analysis.is_finished or remaining <= 0:
            break
        watch.wait(mark, min(WAIT_CHECK_SECONDS if watch.active else WAIT_POLL_SECONDS, remaining))
    return analysis_get_detail(viewer=owner, analysis_id=analysis_id)
