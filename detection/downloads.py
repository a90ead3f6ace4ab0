"""Stored files as responses, for the site's pages and the API alike: the original upload as a
download, and a 404 that says so when a stored file has gone from storage (a shared volume not
mounted, a backup restored without its media) rather than a 500."""

from __future__ import annotations

import logging

from django.http import FileResponse, Http404
from django.utils.cache import patch_cache_control

from . import inference
from .models import Analysis

logger = logging.getLogger(__name__)


def open_stored(file, *, what: str):
    """`file` (a FieldFile) opened for reading, or a 404 naming `what` when storage has lost it
    (logged as an error: the database and the storage disagree)."""
    try:
        return file.open("rb")
    except FileNotFoundError:
        logger.error("%s missing from storage: %s", what, file.name)
        raise Http404(f"The {what} is missing from the server's storage.") from None


def stored_image_response(file, *, content_type: str, what: str) -> FileResponse:
    """A stored image (thumbnail, frame, heatmap) for the site's pages and the API alike. It never
    changes once stored, so the signed-in browser may keep it for an hour; no shared cache may."""
    response = FileResponse(open_stored(file, what=what), content_type=content_type)
    patch_cache_control(response, private=True, max_age=3600)
    return response


def original_file_response(analysis: Analysis) -> FileResponse:
    """The stored upload as an attachment under its owner's name, never cached. Its content type
    comes from its content, not from that name: a JPEG uploaded as "page.html" is served as
    image/jpeg."""
    handle = open_stored(analysis.file, what="uploaded file")
    head = handle.read(inference.SNIFF_BYTES)
    handle.seek(0)
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=analysis.original_name,
        content_type=inference.sniff_content_type(head),
    )
    # a person's own photo or video, on a machine that may be shared (a newsroom's): kept by no
    # cache, the browser's included, once it is saved where they chose
    patch_cache_control(response, private=True, no_store=True)
    return response
