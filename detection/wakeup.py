"""Waiting for the database to change without asking it.

The worker waiting for a task and an API request waiting for a verdict (`?wait=`) both wait for
another process to write a row. On SQLite every commit writes the database's files (the `-wal`
file in WAL mode, the database file otherwise), so a `stat()` of them every few milliseconds
tells the waiting process that something may have changed: it queries only then (and, to be
safe, every `timeout` seconds), and wakes up within milliseconds of the write. An idle worker
then costs the database nothing but that occasional query. Other databases have no files
here to watch: waiting is a plain sleep, and the caller queries again after it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.db import connections

STAT_INTERVAL = 0.01  # seconds between two looks at the files


class DatabaseWatch:
    def __init__(self, alias: str = "default", *, paths: list[Path] | None = None):
        if paths is None:
            paths = _sqlite_files(alias)
        self.paths = paths

    @property
    def active(self) -> bool:
        """Whether changes can be seen (a database in files); else `wait` just sleeps."""
        return bool(self.paths)

    def mark(self) -> tuple:
        """The files' state now: take it before the query whose answer you wait to change."""
        state = []
        for path in self.paths:
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                state.append(None)
            else:
                state.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
        return tuple(state)

    def wait(self, mark: tuple, timeout: float) -> bool:
        """Return True as soon as the files differ from `mark`, False after `timeout` seconds
        (at once, after sleeping `timeout`, when nothing can be watched)."""
        if not self.active:
            time.sleep(max(0.0, timeout))
            return False
        deadline = time.monotonic() + timeout
        while True:
            if self.mark() != mark:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(STAT_INTERVAL, remaining))


def _sqlite_files(alias: str) -> list[Path]:
    connection = connections[alias]
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor != "sqlite" or not name or connection.creation.is_in_memory_db(name):
        return []
    return [Path(name), Path(f"{name}-wal")]
