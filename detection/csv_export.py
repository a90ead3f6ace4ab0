"""A history as CSV: one row per analysis, for people who keep a record of what they checked
(a newsroom's log, a moderation ticket) in a spreadsheet.

Text cells that a spreadsheet would run as a formula (starting with =, +, -, @, a tab or a
carriage return: a file name is whatever its uploader called it) get a leading apostrophe, the
escape spreadsheets show as text. The file starts with a UTF-8 byte order mark, without which
Excel reads accented file names as another encoding (Python reads it with `encoding="utf-8-sig"`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator

from django.utils import timezone

from .models import Analysis

COLUMNS = (
    "id",
    "file",
    "type",
    "uploaded",
    "status",
    "verdict",
    "fake_kind",
    "probability",
    "face_swap_probability",
    "ai_generated_probability",
    "faces",
    "frames_analysed",
    "duration_s",
    "width",
    "height",
    "bytes",
    "sha256",
    "model_version",
    "synthetic_model_version",
    "finished",
    "error",
    "page",
    # added 2026-11-27, at the end so that a sheet reading columns by position still reads them
    "uncertain_reason",  # why a verdict was held at uncertain (ml/caution.py)
    "probability_of",  # what `probability` measures: "fake" (face swap) or "AI-generated"
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BYTE_ORDER_MARK = "\ufeff"


def spreadsheet_safe(value):
    """`value`, or for text a spreadsheet would take as a formula, that text as text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _moment(value) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else ""


def _blank(value):
    return "" if value is None else value


def analysis_row(analysis: Analysis, *, page_url: str) -> list:
    """One analysis's cells, in COLUMNS' order; probabilities as fractions (0 to 1)."""
    cells = [
        str(analysis.pk),
        analysis.original_name,
        analysis.media_type,
        _moment(analysis.created_at),
        analysis.status,
        analysis.verdict,
        analysis.fake_kind,
        _blank(analysis.verdict_probability),
        _blank(analysis.fake_probability),
        _blank(analysis.synthetic_probability),
        analysis.faces_count,
        analysis.frames_analysed,
        "" if analysis.duration is None else round(analysis.duration, 3),
        _blank(analysis.width),
        _blank(analysis.height),
        analysis.size,
        analysis.sha256,
        analysis.model_version,
        analysis.synthetic_model_version,
        _moment(analysis.finished_at),
        analysis.error,
        page_url,
        analysis.uncertain_reason,
        analysis.probability_label if analysis.verdict_probability is not None else "",
    ]
    return [spreadsheet_safe(cell) for cell in cells]


class _Line:
    """What csv.writer writes to: each row comes back as its line."""

    def write(self, line: str) -> str:
        return line


def csv_lines(analyses: Iterable[Analysis], *, page_url: Callable[[Analysis], str]) -> Iterator[str]:
    """The CSV file, a line at a time (for a streamed answer: a long history is never held in
    memory whole)."""
    writer = csv.writer(_Line())
    yield BYTE_ORDER_MARK + writer.writerow(COLUMNS)
    for analysis in analyses:
        yield writer.writerow(analysis_row(analysis, page_url=page_url(analysis)))
