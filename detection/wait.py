"""`?wait=`: an API upload may hold its answer until the analysis finishes (30 s at most).

Not a selector: it blocks until the database changes, so it lives apart from the plain reads.
On SQLite it reads the analysis again as soon as the database's files change
(`detection.wakeup`), and at least every WAIT_CHECK_SECONDS; elsewhere every WAIT_POLL_SECONDS.
"""

from __future__ import annotations

from time import monotonic

from django.contrib.auth.models import AbstractBaseUser

from .models import Analysis
from .selectors import analysis_get, analysis_get_detail
from .wakeup import DatabaseWatch

WAIT_POLL_SECONDS = 0.1
WAIT_CHECK_SECONDS = 1.0


def analysis_wait(
    *,
    owner: AbstractBaseUser,
    analysis_id,
    seconds: float,
) -> Analysis | None:
    """Wait until the analysis is done or failed, or `seconds` have passed; return its
    detail either way."""
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
