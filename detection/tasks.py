"""django-q2 entry points. Thin: they take primary keys and call services."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.exceptions import TimeoutException
from django_q.signals import pre_execute

from . import inference, workers
from .broker import LeasedORM, ReliableRedis
from .services import analysis_fail, analysis_run, analysis_sweep, analysis_sweep_dead

logger = logging.getLogger(__name__)

# Whether the message of the job this worker process is starting was given back to the queue
# (its cluster is stopping, or was thought dead): set by message_check before every job.
_message_given_back = False


def message_check(sender, func, task: dict, **kwargs) -> None:
    """django-q2's pre_execute, in the worker: note whether the cluster still holds the
    message (either queue, detection/broker.py). The pusher of a stopping cluster gives back
    what it holds, and the jobs already in the cluster's task queue must then not start here."""
    global _message_given_back
    _message_given_back = False
    ack_id = task.get("ack_id")
    try:
        broker = get_broker()
        if ack_id and isinstance(broker, (LeasedORM, ReliableRedis)):
            _message_given_back = not broker.holds(ack_id)
    except Exception:  # the queue away (a database cut: a worker that died here was replaced
        # in a loop, 20 times in 10 s): run the job, as before
        logger.warning("could not check the queue message of %s", task.get("name"), exc_info=True)


def analysis_run_task(analysis_id, token: str | None = None) -> None:
    if _message_given_back:
        logger.info("analysis %s: its message went back to the queue; another worker runs it", analysis_id)
        return
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
    again), starts the watch on the other workers (workers.watch_start) and the check of each
    job's message (message_check), sizes the thread pools, then loads the detector and runs it
    once, so that the first upload waits for neither; logs "ready for analyses" with the
    seconds it took. In sync mode (tests) no worker process starts.
    """
    if Conf.SYNC:
        return
    started = time.monotonic()
    pre_execute.connect(message_check, dispatch_uid="detection_message_check")
    report = analysis_sweep()
    workers.watch_start(check=analysis_sweep_dead)
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
