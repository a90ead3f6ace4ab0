"""django-q2 entry points. Thin: they take primary keys and call services."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django_q.conf import Conf
from django_q.exceptions import TimeoutException

from . import inference
from .services import analysis_fail, analysis_run, analysis_sweep

logger = logging.getLogger(__name__)


def analysis_run_task(analysis_id, token: str | None = None) -> None:
    try:
        analysis_run(analysis_id=analysis_id, token=token)
    except TimeoutException:
        minutes = settings.DETECTION_JOB_TIMEOUT / 60
        analysis_fail(
            analysis_id=analysis_id,
            message=(
                f"The analysis took longer than {minutes:g} minutes and was stopped. "
                "Try a shorter video."
            ),
            token=token,
        )
        raise


def analysis_fail_stale_task() -> str:
    """The scheduled sweep (the name predates the queued half; schedules refer to it)."""
    return str(analysis_sweep())


def on_worker_start(sender, proc_name: str, **kwargs) -> None:
    """django-q2's post_spawn: runs in each new worker process, after the fork.

    Sweeps what a dead predecessor left (running analyses failed, lost queued ones sent
    again), sizes the thread pools, then loads the detector and runs it once, so that the
    first upload waits for neither; logs "ready for analyses" with the seconds it took. In
    sync mode (tests) no worker process starts.
    """
    if Conf.SYNC:
        return
    started = time.monotonic()
    report = analysis_sweep()
    if report.running_failed or report.requeued or report.queued_failed:
        logger.warning("%s: %s", proc_name, report)
    try:
        inference.worker_threads_set(settings.DETECTION_THREADS)
        inference.warm_up()
    except Exception:
        logger.exception("%s: the detector could not be loaded; analyses will fail", proc_name)
    else:
        logger.info(
            "%s: ready for analyses (model loaded and warmed in %.1f s, %d threads)",
            proc_name, time.monotonic() - started, settings.DETECTION_THREADS,
        )
