"""The database queue's leases (detection.broker.LeasedORM): a message held by a worker that
died comes back after one lease, not after django-q2's retry window."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ

from detection.broker import IDLE_CHECK_SECONDS, LeasedORM
from detection.wakeup import DatabaseWatch

LEASE = 60


@pytest.mark.skipif(settings.Q_BROKER != "orm", reason="the database queue only")
@override_settings(DETECTION_QUEUE_LEASE=LEASE)
class LeasedQueueTests(TestCase):
    def setUp(self) -> None:
        self.broker = get_broker()
        self.broker.purge_queue()
        self.renewing = mock.patch.object(LeasedORM, "_start_renewing").start()
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
        self.assertEqual(OrmQ.objects.get().lock, now + timedelta(seconds=LEASE))
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
        with (
            CaptureQueriesContext(connection) as queries,
            mock.patch.object(DatabaseWatch, "wait", return_value=False) as wait,
        ):
            self.assertIsNone(self.broker.dequeue())

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
