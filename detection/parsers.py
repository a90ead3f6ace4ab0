"""What the upload endpoint does with a body that is not multipart/form-data."""

from __future__ import annotations

from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.parsers import BaseParser

HOW_TO_SEND = "Send the file as multipart/form-data in a field named `file` (curl -F file=@photo.jpg)."


class NotMultipartParser(BaseParser):
    """Listed after MultiPartParser, it takes any other body (JSON, a raw file, a plain form)
    and refuses it with 415, as DRF would, but saying how a file is sent."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        raise UnsupportedMediaType(
            media_type, detail=f'Unsupported media type "{media_type}" in request. {HOW_TO_SEND}'
        )
