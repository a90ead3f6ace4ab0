"""Oversize request bodies are refused as early as possible, never read to the end.

Two layers, both sized from DETECTION_MAX_UPLOAD_BYTES:
- `BodySizeLimitMiddleware` answers 413 from the Content-Length header alone, before anything
  reads the body (Django never reads past Content-Length, and ignores bodies without one: a
  chunked body, which has none, gets 411);
- `UploadLimitHandler`, the first upload handler, stops reading a multipart body as soon as
  its files hold more than the limit, and marks the request so that the view can say why.
A proxy in front should refuse such bodies even earlier (README, "Beyond one machine").
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpResponse, JsonResponse

from .api import error_data

# Room for the multipart framing and the form's other fields around the file.
BODY_OVERHEAD_BYTES = 64 * 1024
TOO_LARGE_ATTRIBUTE = "upload_too_large"


def upload_limit_message() -> str:
    limit = settings.DETECTION_MAX_UPLOAD_BYTES / (1024 * 1024)
    return f"The file is too large; the limit is {limit:.1f} MB."


def upload_was_too_large(request) -> bool:
    """Whether `UploadLimitHandler` stopped reading this request's files."""
    return getattr(request, TOO_LARGE_ATTRIBUTE, False)


def is_api_request(request) -> bool:
    return request.path_info.startswith("/api/")


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.DETECTION_MAX_UPLOAD_BYTES + BODY_OVERHEAD_BYTES:
            return _refusal(request, upload_limit_message(), status=413, code="too_large")
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and request.method in ("POST", "PUT", "PATCH"):
            # Django would read such a body as empty, and the view answer "no file was sent"
            # (a GET or DELETE some clients send chunked and empty loses nothing)
            return _refusal(
                request,
                "Send the body with a Content-Length: this server does not read chunked uploads "
                "(curl -F file=@photo.jpg sends one).",
                status=411,
                code="length_required",
            )
        return self.get_response(request)


def _refusal(request, message: str, *, status: int, code: str) -> HttpResponse:
    if is_api_request(request):
        response = JsonResponse(error_data(message, code), status=status)
    else:
        response = HttpResponse(message, status=status, content_type="text/plain")
    response["Connection"] = "close"  # the unread body must not be taken as a request
    return response


class UploadLimitHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.DETECTION_MAX_UPLOAD_BYTES:
            setattr(self.request, TOO_LARGE_ATTRIBUTE, True)
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handlers store the file
