"""django-q2 entry points. Thin: they take primary keys and call services."""

from __future__ import annotations

import logging

from django.conf import settings
from django_q.conf import Conf
from django_q.exceptions import TimeoutException

from . import inference
from .services import analysis_fail, analysis_fail_stale, analysis_run

logger = logging.getLogger(__name__)


def analysis_run_task(analysis_id) -> None:
    try:
        analysis_run(analysis_id=analysis_id)
    except TimeoutException:
        minutes = settings.DETECTION_JOB_TIMEOUT / 60
        analysis_fail(
            analysis_id=analysis_id,
            message=(
                f"The analysis took longer than {minutes:g} minutes and was stopped. "
                "Try a shorter video."
            ),
        )
        raise


def analysis_fail_stale_task() -> int:
    return analysis_fail_stale()


def on_worker_start(sender, proc_name: str, **kwargs) -> None:
    """django-q2's post_spawn: runs in each new worker process, after the fork.

    Fails the analyses a dead predecessor left running, then loads the detector so that the
    first upload does not wait for it. In sync mode (tests) no worker process starts.
    """
    if Conf.SYNC:
        return
    failed = analysis_fail_stale()
    if failed:
        logger.warning("%s: failed %d analyses left running by a dead worker", proc_name, failed)
    try:
        inference.get_detector()
    except Exception:
        logger.exception("%s: the detector could not be loaded; analyses will fail", proc_name)
