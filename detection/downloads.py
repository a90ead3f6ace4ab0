"""The original upload as a download, for the site's page and the API alike."""

from __future__ import annotations

from django.http import FileResponse

from . import inference
from .models import Analysis


def original_file_response(analysis: Analysis) -> FileResponse:
    """The stored upload as an attachment under its owner's name. Its content type comes from
    its content, not from that name: a JPEG uploaded as "page.html" is served as image/jpeg."""
    handle = analysis.file.open("rb")
    head = handle.read(inference.SNIFF_BYTES)
    handle.seek(0)
    return FileResponse(
        handle,
        as_attachment=True,
        filename=analysis.original_name,
        content_type=inference.sniff_content_type(head),
    )
