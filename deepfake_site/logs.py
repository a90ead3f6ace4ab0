"""Logging helpers for settings.LOGGING."""

from __future__ import annotations

import logging


class OneLineWarning(logging.Filter):
    """Lets a record through as a warning without its traceback: for errors that are a client's
    doing and would otherwise fill the error log (settings.LOGGING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True
