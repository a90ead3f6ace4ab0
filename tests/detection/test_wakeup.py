"""detection.wakeup: a waiting process notices another process's write to SQLite without
querying the database."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from unittest import TestCase, mock

from detection import wakeup
from detection.wakeup import DatabaseWatch


class DatabaseWatchTests(TestCase):
    def setUp(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="wakeup-"))
        self.path = folder / "db.sqlite3"
        self.database = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(self.database.close)
        self.database.execute("PRAGMA journal_mode=WAL")
        self.database.execute("CREATE TABLE queue (payload TEXT)")
        self.watch = DatabaseWatch(paths=[self.path, Path(f"{self.path}-wal")])

    def test_a_commit_by_another_connection_ends_the_wait(self):
        mark = self.watch.mark()
        writer = sqlite3.connect(self.path, isolation_level=None)
        writer.execute("INSERT INTO queue VALUES ('task')")
        writer.close()

        self.assertTrue(self.watch.wait(mark, timeout=30))

    def test_without_a_write_the_wait_runs_out(self):
        mark = self.watch.mark()
        self.database.execute("SELECT * FROM queue").fetchall()  # reading changes nothing

        self.assertFalse(self.watch.wait(mark, timeout=0.05))

    def test_a_database_that_cannot_be_watched_makes_the_wait_a_plain_sleep(self):
        watch = DatabaseWatch(paths=[])
        with mock.patch.object(wakeup.time, "sleep") as sleep:
            self.assertFalse(watch.wait(watch.mark(), timeout=0.2))

        self.assertFalse(watch.active)
        sleep.assert_called_once_with(0.2)
