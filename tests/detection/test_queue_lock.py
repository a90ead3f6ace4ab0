"""The cluster's task queue freed from a worker that died waiting on it (detection/queue_lock.py),
on django-q2's own queue (as the sentinel holds it) and real processes; the whole cluster is
tested in test_workers.py."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
from django_q.queues import Queue

from detection.queue_lock import TaskQueueWatch

fork = multiprocessing.get_context("fork")


def take_one(queue, answers) -> None:
    """A worker: waits for one message and hands it on."""
    answers.put(queue.get())


def exit_on_message(queue) -> None:
    """A worker told to stop: exits 0 when it reads "STOP"."""
    os._exit(0 if queue.get() == "STOP" else 1)


def until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def lock_taken(queue) -> bool:
    if queue._rlock.acquire(block=False):
        queue._rlock.release()
        return False
    return True


@pytest.fixture
def queue():
    made = Queue(maxsize=1)  # what the sentinel's task queue is (cluster.py, Conf.QUEUE_LIMIT 1)
    yield made
    made.cancel_join_thread()


def waiting_worker(queue, answers=None):
    """A worker process blocked in `queue.get()`, holding the queue's read lock."""
    worker = fork.Process(target=take_one, args=(queue, answers or fork.Queue()), daemon=True)
    worker.start()
    until(lambda: lock_taken(queue))
    return worker


def killed(worker) -> None:
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()


def put_and_wait_until_in_the_pipe(queue, message) -> None:
    queue.put(message)
    until(lambda: queue._reader.poll(0))


def test_a_job_left_behind_the_lock_of_a_worker_killed_while_waiting_is_read_after_the_lock_is_freed(queue):
    watch = TaskQueueWatch(queue, stuck_after=2)
    watch.check(0.0)  # the lock is free: no worker yet
    killed(waiting_worker(queue))
    watch.worker_died()  # as the sentinel tells it when it replaces the worker
    answers = fork.Queue()
    replacement = fork.Process(target=take_one, args=(queue, answers), daemon=True)
    replacement.start()  # waits for the lock the dead worker holds
    put_and_wait_until_in_the_pipe(queue, "job")

    assert [watch.check(t) for t in (10.0, 11.0, 11.9)] == [False, False, False]
    assert answers.empty()  # still stuck
    assert watch.check(12.0) is True

    assert answers.get(timeout=10) == "job"
    replacement.join(timeout=10)


def test_a_live_worker_waiting_for_a_job_keeps_its_lock(queue):
    answers = fork.Queue()
    worker = waiting_worker(queue, answers)
    watch = TaskQueueWatch(queue, stuck_after=2)
    watch.worker_died()  # another worker died meanwhile (mid-job, say)
    queue.size.increment(1)  # and django-q2's count of jobs was left one too high (killed in get)

    assert queue.qsize() == 1 and not queue.empty()  # what the count says; the pipe is empty
    assert [watch.check(t) for t in (0.0, 5.0, 100.0)] == [False, False, False]

    queue.put("job")
    assert answers.get(timeout=10) == "job"
    worker.join(timeout=10)
    assert not lock_taken(queue)


def test_a_job_waiting_while_every_worker_is_busy_is_left_alone(queue):
    put_and_wait_until_in_the_pipe(queue, "job")  # no worker is reading: the lock is free
    watch = TaskQueueWatch(queue, stuck_after=2)

    assert [watch.check(t) for t in (0.0, 5.0, 100.0)] == [False, False, False]
    assert not lock_taken(queue)
    assert queue.get(timeout=5) == "job"


def test_a_paused_worker_holding_the_lock_keeps_it_while_no_worker_has_died(queue):
    watch = TaskQueueWatch(queue, stuck_after=2)
    worker = waiting_worker(queue)
    os.kill(worker.pid, signal.SIGSTOP)  # a debugger, a frozen container: alive, reads nothing
    try:
        put_and_wait_until_in_the_pipe(queue, "job")

        assert [watch.check(t) for t in (0.0, 5.0, 100.0)] == [False, False, False]
        assert lock_taken(queue)
    finally:
        killed(worker)


def test_a_stopping_cluster_reaches_its_workers_past_a_dead_workers_lock(queue):
    killed(waiting_worker(queue))
    survivor = fork.Process(target=exit_on_message, args=(queue,), daemon=True)
    survivor.start()
    queue.put("STOP")  # what the sentinel does when it stops: the stop messages, then close
    queue.close()
    queue.join_thread()
    watch = TaskQueueWatch(queue, stuck_after=2)
    watch.worker_died()

    assert watch.check(0.0) is False
    assert watch.check(2.0) is True

    survivor.join(timeout=10)
    assert survivor.exitcode == 0
