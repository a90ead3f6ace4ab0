"""django-q2's Redis broker, made reliable: a message a worker takes is not simply popped.

django-q2's own Redis broker pops a message when a cluster's pusher takes it; if the cluster
dies before the job ends (SIGKILL, out of memory, a lost machine), the message is gone and its
analysis stays `queued` forever. Here the pusher moves the message atomically (BLMOVE) to a
list of its own, `<queue>:held:<host>:<pusher pid>`, and the message leaves that list only
when the job's result is acknowledged. A held list whose pusher no longer reports in the
cluster statistics (every cluster saves them twice a second, for three seconds) belongs to a
dead cluster: `waiting_payloads` leaves it out, so the sweep queues its analyses again.
"""

from __future__ import annotations

import os
import socket

from django_q.brokers.redis_broker import Redis
from django_q.status import Stat


class ReliableRedis(Redis):
    def _held_key(self, host: str, pid: int) -> str:
        return f"{self.list_key}:held:{host}:{pid}"

    def dequeue(self):
        held = self._held_key(socket.gethostname(), os.getpid())  # runs in the pusher
        payload = self.connection.blmove(self.list_key, held, 1, "LEFT", "RIGHT")
        if payload:
            return [((held, payload), payload)]
        return None

    def acknowledge(self, task_id) -> None:
        held, payload = task_id
        self.connection.lrem(held, 1, payload)

    def fail(self, task_id) -> None:
        self.acknowledge(task_id)  # unreadable: dropped (the sweep queues its analysis again)

    def purge_queue(self):
        for held in self.connection.scan_iter(match=f"{self.list_key}:held:*"):
            self.connection.delete(held)
        return super().purge_queue()

    def waiting_payloads(self) -> list[bytes]:
        """The messages waiting in the queue and those held by live clusters. Held lists of
        dead clusters are deleted: their messages are lost."""
        live = {self._held_key(stat.host, stat.pusher) for stat in Stat.get_all(self)}
        payloads = list(self.connection.lrange(self.list_key, 0, -1))
        for held in self.connection.scan_iter(match=f"{self.list_key}:held:*"):
            held = held.decode() if isinstance(held, bytes) else held
            if held in live:
                payloads += self.connection.lrange(held, 0, -1)
            else:
                self.connection.delete(held)
        return payloads
