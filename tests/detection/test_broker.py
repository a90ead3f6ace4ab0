"""The database queue's leases (detection.broker.LeasedORM): a message held by a worker that
died comes back after one lease, not after django-q2's retry window; a cluster holds a bounded
number and gives them back when it stops. The Redis queue's held lists (ReliableRedis):
bounded, given back when their cluster stops or dies."""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from detection.broker import IDLE_CHECK_SECONDS, LeasedORM, ReliableRedis, _owner_tag, most_held
from detection.wakeup import DatabaseWatch

from .base import DEAD_PID

GIVE_BACK_AT_EXIT = ReliableRedis._give_back_at_exit  # before any test patches it

LEASE = 60


@pytest.mark.skipif(settings.Q_BROKER != "orm", reason="the database queue only")
@override_settings(DETECTION_QUEUE_LEASE=LEASE)
class LeasedQueueTests(TestCase):
    def setUp(self) -> None:
        self.broker = get_broker()
        self.broker.purge_queue()
        self.renewing = mock.patch.object(LeasedORM, "_start_renewing").start()
        self.exit_hook = mock.patch.object(LeasedORM, "_give_back_at_exit")
        self.exit_hook.start()
        mock.patch.object(DatabaseWatch, "wait", return_value=False).start()
        self.addCleanup(mock.patch.stopall)

    def take(self, broker: LeasedORM, *, at=None):
        with mock.patch.object(timezone, "now", return_value=at or timezone.now()):
            return broker.dequeue()

    def test_the_site_sends_through_the_leased_broker(self):
        self.assertIsInstance(self.broker, LeasedORM)

    def test_a_message_a_worker_takes_is_held_for_one_lease_not_for_the_retry_window(self):
        self.broker.enqueue("payload")
        now = timezone.now()

        taken = self.take(self.broker, at=now)

        self.assertEqual([payload for _, payload in taken], ["payload"])
        lock = OrmQ.objects.get().lock
        self.assertEqual(lock.replace(microsecond=0), (now + timedelta(seconds=LEASE)).replace(microsecond=0))
        self.assertEqual(lock.microsecond, _owner_tag())  # this cluster's mark
        self.renewing.assert_called_once()

    def test_a_message_whose_holder_stopped_renewing_is_delivered_again_after_its_lease(self):
        self.broker.enqueue("payload")
        now = timezone.now()
        self.take(self.broker, at=now)
        other = get_broker()

        self.assertFalse(self.take(other, at=now + timedelta(seconds=LEASE - 1)))
        again = self.take(other, at=now + timedelta(seconds=LEASE + 1))

        self.assertEqual([payload for _, payload in again], ["payload"])

    def test_a_live_holder_keeps_its_message_by_renewing_the_lease(self):
        self.broker.enqueue("payload")
        now = timezone.now()
        self.take(self.broker, at=now)
        later = now + timedelta(seconds=LEASE - 1)

        with mock.patch.object(timezone, "now", return_value=later):
            self.assertEqual(self.broker.renew_leases(), 1)
        self.assertFalse(self.take(get_broker(), at=now + timedelta(seconds=LEASE + 1)))

    def test_an_idle_worker_waits_for_the_database_to_change_instead_of_polling_it(self):
        with CaptureQueriesContext(connection) as queries:
            self.assertIsNone(self.broker.dequeue())
        wait = DatabaseWatch.wait

        self.assertEqual(len(queries), 1)  # the one look at the queue
        if DatabaseWatch().active:  # SQLite in a file
            wait.assert_called_once_with(mock.ANY, IDLE_CHECK_SECONDS)

    def test_an_acknowledged_message_is_no_longer_renewed(self):
        self.broker.enqueue("payload")
        (ack_id, _), = self.take(self.broker)

        self.broker.acknowledge(ack_id)

        self.assertEqual(self.broker.renew_leases(), 0)
        self.assertEqual(self.broker._held, {})

    def test_a_message_held_longer_than_any_job_can_run_is_let_go(self):
        """Its worker died while the cluster lived on: it must not be renewed forever."""
        self.broker.enqueue("payload")
        now = timezone.now()
        self.take(self.broker, at=now)
        much_later = time.monotonic() + LeasedORM.longest_hold() + 1

        with mock.patch.object(time, "monotonic", return_value=much_later), self.assertLogs("detection.broker", "WARNING"):
            self.assertEqual(self.broker.renew_leases(), 0)
        again = self.take(get_broker(), at=now + timedelta(seconds=LEASE + 1))

        self.assertEqual([payload for _, payload in again], ["payload"])


    def test_a_cluster_holds_no_more_than_its_workers_and_the_jobs_ahead_it_may_take(self):
        for n in range(4):
            self.broker.enqueue(f"m{n}")

        taken = [self.broker.dequeue() for _ in range(4)]

        self.assertEqual(most_held(), Conf.WORKERS + Conf.QUEUE_LIMIT)
        self.assertEqual(sum(len(t) for t in taken if t), most_held())
        self.assertEqual(len(self.take(get_broker())), 1)  # another cluster takes the rest

    def test_an_acknowledged_message_makes_room_for_the_next(self):
        for n in range(most_held() + 1):
            self.broker.enqueue(f"m{n}")
        firsts = [self.broker.dequeue() for _ in range(most_held())]
        self.assertIsNone(self.broker.dequeue())

        self.broker.acknowledge(firsts[0][0][0])

        self.assertEqual([payload for _, payload in self.broker.dequeue()], [f"m{most_held()}"])

    def test_a_pusher_that_stops_gives_what_it_holds_back_for_any_cluster_to_take_now(self):
        self.broker.enqueue("m1")
        self.broker.enqueue("m2")
        self.take(self.broker), self.take(self.broker)
        self.assertFalse(self.take(get_broker()))

        with self.assertLogs("detection.broker", "INFO"):
            self.broker._give_back()  # what the pusher runs as it exits

        self.assertEqual(self.broker.renew_leases(), 0)  # not leased again by its renewals
        again = [payload for _ in range(2) for _, payload in self.take(get_broker())]
        self.assertEqual(sorted(again), ["m1", "m2"])

    def test_a_pusher_arranges_once_to_give_back_what_it_holds_when_it_exits(self):
        self.exit_hook.stop()
        with (
            mock.patch("detection.broker.multiprocessing.util.Finalize") as finalize,
            mock.patch("detection.broker.multiprocessing.parent_process", return_value=object()),  # a cluster's
        ):
            self.broker.dequeue(), self.broker.dequeue()
        with mock.patch("detection.broker.multiprocessing.util.Finalize") as not_in_a_cluster:
            get_broker().dequeue()  # this process was started by no cluster (a shell, a test)

        finalize.assert_called_once_with(None, self.broker._give_back, exitpriority=10)
        not_in_a_cluster.assert_not_called()

    def test_a_message_given_back_is_no_longer_held(self):
        self.broker.enqueue("m1")
        (ack_id, _), = self.broker.dequeue()
        self.assertTrue(self.broker.holds(ack_id))

        self.broker.give_back()

        self.assertFalse(self.broker.holds(ack_id))

    def test_a_stopping_cluster_neither_starts_nor_deletes_a_message_another_cluster_took_since(self):
        self.broker.enqueue("m1")
        (ack_id, _), = self.broker.dequeue()
        self.broker.give_back()  # cluster A stops
        with mock.patch("detection.broker._owner_tag", return_value=(_owner_tag() + 1) % 1_000_000):
            other = get_broker()  # cluster B takes the message
            self.assertEqual([payload for _, payload in other.dequeue()], ["m1"])

            self.assertTrue(other.holds(ack_id))
        self.assertFalse(self.broker.holds(ack_id))  # A's worker skips it
        self.broker.acknowledge(ack_id)  # A's monitor, after the skip

        self.assertEqual(OrmQ.objects.filter(pk=ack_id).count(), 1)  # B's to run and acknowledge

    def test_a_stopping_pusher_keeps_the_lease_of_the_job_its_worker_is_finishing(self):
        """Given back, it went to a cluster on another machine, which (without a shared cache)
        could not see the worker and failed the analysis while it was being finished."""
        from detection.models import Analysis

        owner = get_user_model().objects.create_user("finisher")
        running = Analysis.objects.create(
            owner=owner, original_name="a.mp4", media_type="video", size=1, sha256="0" * 64,
            status=Analysis.Status.RUNNING, worker=f"{socket.gethostname()}:{os.getpid()}", queue_token="r" * 32,
        )
        async_task("detection.tasks.analysis_run_task", running.pk, "r" * 32, sync=False)
        async_task("detection.tasks.analysis_run_task", running.pk, "w" * 32, sync=False)  # one waiting
        (finishing, _), = self.broker.dequeue()
        (waiting, _), = self.broker.dequeue()

        self.assertEqual(self.broker.give_back(), 1)

        self.assertTrue(self.broker.holds(finishing))  # for its worker to acknowledge
        self.assertFalse(self.broker.holds(waiting))

    def test_messages_given_back_are_taken_again_before_newer_ones(self):
        for n in range(1, 4):
            self.broker.enqueue(f"m{n}")
        self.broker.dequeue(), self.broker.dequeue()  # m1 and m2
        self.broker.give_back()

        self.assertEqual([payload for _, payload in self.take(get_broker())], ["m1"])

    def test_a_job_that_ends_after_its_message_was_given_back_leaves_the_message_queued(self):
        """The stopping cluster's worker skipped it (or ran it): another cluster must get it."""
        self.broker.enqueue("m1")
        (ack_id, _), = self.broker.dequeue()
        self.broker.give_back()

        self.broker.acknowledge(ack_id)  # the stopping cluster's monitor

        self.assertEqual([payload for _, payload in self.take(get_broker())], ["m1"])


def _take_two_and_stop() -> None:
    """A cluster's pusher, in a process of its own: takes what it may, then returns."""
    mock.patch.stopall()  # this process's copy of the test's patches
    broker = get_broker()
    broker.dequeue()
    broker.dequeue()


@pytest.mark.skipif(settings.Q_BROKER != "redis", reason="the Redis queue only")
class HeldRedisQueueTests(TestCase):
    """The Redis queue's held lists (detection.broker.ReliableRedis): a cluster holds no more
    than it can start soon, and gives back what it holds when it stops or dies."""

    def setUp(self) -> None:
        self.broker = get_broker()
        self.broker.purge_queue()
        self.addCleanup(self.broker.purge_queue)
        self.exit_hook = mock.patch.object(ReliableRedis, "_give_back_at_exit").start()
        mock.patch("detection.broker.time.sleep").start()
        self.addCleanup(mock.patch.stopall)
        self.held = self.broker._held_key(socket.gethostname(), os.getpid())  # this process plays the pusher

    def send(self, *payloads: bytes) -> None:
        for payload in payloads:
            self.broker.enqueue(payload)

    def test_a_cluster_holds_no_more_than_its_workers_and_the_jobs_ahead_it_may_take(self):
        self.send(b"m1", b"m2", b"m3", b"m4")

        taken = [self.broker.dequeue() for _ in range(4)]

        self.assertEqual(most_held(), Conf.WORKERS + Conf.QUEUE_LIMIT)
        self.assertEqual(sum(1 for t in taken if t), most_held())
        self.assertEqual(self.broker.queue_size(), 4 - most_held())

    def test_a_new_pusher_with_a_dead_ones_pid_gives_back_what_that_one_held_first(self):
        # a container restarted: the new pusher has the pid, so the held list, of a dead one
        self.send(b"m1", b"m2")
        self.broker.dequeue(), self.broker.dequeue()
        self.assertEqual(self.broker.queue_size(), 0)

        newcomer = get_broker()
        with mock.patch("detection.broker.multiprocessing.util.Finalize"):
            GIVE_BACK_AT_EXIT(newcomer, self.held)

        self.assertEqual(self.broker.connection.lrange(self.broker.list_key, 0, -1), [b"m1", b"m2"])
        self.assertEqual(self.broker.connection.llen(self.held), 0)

    def test_an_acknowledged_message_makes_room_for_the_next(self):
        self.send(*[b"m%d" % i for i in range(most_held() + 1)])
        firsts = [self.broker.dequeue() for _ in range(most_held())]
        self.assertIsNone(self.broker.dequeue())

        self.broker.acknowledge(firsts[0][0][0])

        self.assertIsNotNone(self.broker.dequeue())

    def test_a_message_held_longer_than_any_job_can_run_is_let_go(self):
        """Its worker died while the cluster lived on: it must not take room forever."""
        self.send(*[b"m%d" % i for i in range(most_held() + 1)])
        for _ in range(most_held()):
            self.broker.dequeue()
        much_later = time.monotonic() + LeasedORM.longest_hold() + 1

        with mock.patch("detection.broker.time.monotonic", return_value=much_later), self.assertLogs("detection.broker", "WARNING"):
            self.assertIsNotNone(self.broker.dequeue())

    def test_a_pusher_that_stops_gives_what_it_holds_back_to_the_head_of_the_queue(self):
        self.send(b"m1", b"m2", b"m3")
        self.exit_hook.stop()

        pusher = multiprocessing.get_context("fork").Process(target=_take_two_and_stop)
        pusher.start()
        pusher.join(timeout=30)

        self.assertEqual(pusher.exitcode, 0)
        self.assertEqual(self.broker.connection.lrange(self.broker.list_key, 0, -1), [b"m1", b"m2", b"m3"])
        self.assertEqual(list(self.broker.connection.scan_iter(match=f"{self.broker.list_key}:held:*")), [])

    def test_a_message_given_back_is_no_longer_held(self):
        self.send(b"m1")
        (ack_id, _), = self.broker.dequeue()
        self.assertTrue(self.broker.holds(ack_id))

        self.broker.give_back(self.held)

        self.assertFalse(self.broker.holds(ack_id))

    def test_the_held_list_of_a_dead_pusher_goes_back_to_the_queue_and_a_live_ones_stays(self):
        self.send(b"live", b"dead")
        self.broker.dequeue()
        dead = self.broker._held_key(socket.gethostname(), DEAD_PID)
        self.broker.connection.lmove(self.broker.list_key, dead, "LEFT", "RIGHT")

        with self.assertLogs("detection.broker", "WARNING"):
            self.assertEqual(self.broker.release_dead(), 1)

        self.assertEqual(self.broker.connection.lrange(self.broker.list_key, 0, -1), [b"dead"])
        self.assertEqual(self.broker.connection.lrange(self.held, 0, -1), [b"live"])
