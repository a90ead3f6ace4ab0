"""`?wait=`: an API upload may hold its answer until the analysis finishes (30 s at most).

Not a selector: it blocks, polling the database, so it lives apart from the plain reads.
"""

from __future__ import annotations

from time import monotonic, sleep

from django.contrib.auth.models import AbstractBaseUser

from .models import Analysis
from .selectors import analysis_get, analysis_get_detail

WAIT_POLL_SECONDS = 0.25


def analysis_wait(
    *,
    owner: AbstractBaseUser,
    analysis_id,
    seconds: float,
) -> Analysis | None:
    """Poll until the analysis is done or failed, or `seconds` have passed; return its
    detail either way."""
    deadline = monotonic() + seconds
    while True:
        analysis = analysis_get(viewer=owner, analysis_id=analysis_id)
        remaining = deadline - monotonic()
        if analysis is None or analysis.is_finished or remaining <= 0:
            break
        sleep(min(WAIT_POLL_SECONDS, remaining))
    return analysis_get_detail(viewer=owner, analysis_id=analysis_id)
