"""What every API endpoint shares: the error format and the exception handler."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousMultipartForm,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404
from django.utils.cache import patch_cache_control
from rest_framework import serializers
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import NotAuthenticated, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger("deepfake_site.api")

INTERNAL_ERROR_DETAIL = "Internal server error. It has been logged; please try again later."
# What Django refuses to read in a request (the client's doing): answered 400, as outside the API.
# Other SuspiciousOperations (a storage path outside its folder) are the server's: 500.
UNREADABLE_REQUESTS = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent, SuspiciousMultipartForm, BadRequest)


class ErrorOutputSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person to read.")
    code = serializers.CharField(
        help_text="The kind of error, for a script to test (the `detail` wording may change): "
        "not_authenticated, authentication_failed, not_found, method_not_allowed, invalid, "
        "bad_request, parse_error, unsupported_media_type, permission_denied, throttled (too many log-ins), "
        "upload_rate_limited, too_many_pending, too_large, length_required, unsupported_type, "
        "quota_exceeded, insufficient_storage, not_finished, file_unreadable, internal_error."
    )


def error_data(detail: str, code: str, **extra) -> dict:
    """An error body outside DRF's views, in the API's shape: detail, code, then the rest."""
    return {"detail": detail, "code": code, **extra}


def _code(exc) -> str:
    if isinstance(exc, Http404):  # DRF answers these as its NotFound and PermissionDenied
        return "not_found"
    if isinstance(exc, PermissionDenied):
        return "permission_denied"
    detail = getattr(exc, "detail", None)
    code = getattr(detail, "code", None)  # an ErrorDetail's own code, else the exception's kind
    return code if isinstance(code, str) and code else getattr(exc, "default_code", "error")


class ValidationErrorOutputSerializer(ErrorOutputSerializer):
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="The messages for each invalid field; empty ({}) when no field is at fault (a "
        "body that could not be read at all, such as malformed JSON).",
    )


def _messages(errors, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        found = []
        for field, value in errors.items():
            label = field if field != "non_field_errors" else ""
            found += _messages(value, f"{prefix}{label}: " if label else prefix)
        return found
    if isinstance(errors, list):
        return [message for item in errors for message in _messages(item, prefix)]
    return [f"{prefix}{errors}"]


def exception_handler(exc, context):
    """DRF's handler, with validation errors also summed up in `detail` so that every error
    body has a `detail` string: {"detail": "file: No file was submitted.", "errors": {...}},
    every other 400 (a body that could not be parsed) with an empty `errors`, so that all 400s
    have one shape, and any other exception answered as a JSON 500 (logged with its
    traceback)."""
    response = drf_exception_handler(exc, context)
    if response is None and isinstance(exc, UNREADABLE_REQUESTS):
        return _unreadable_request(exc)
    if response is None:
        if settings.DEBUG:
            return None  # Django's debug page, with the traceback
        request = context.get("request")
        logger.error(
            "internal error on %s %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        response = Response(error_data(INTERNAL_ERROR_DETAIL, "internal_error"), status=500)
        response._has_been_logged = True  # above, with the traceback; Django's request log would repeat it
        return response
    if isinstance(exc, ValidationError):
        errors = response.data
        if not isinstance(errors, dict):
            errors = {"non_field_errors": errors}
        response.data = error_data(" ".join(_messages(errors)), "invalid", errors=errors)
    elif response.status_code == 400:
        response.data = error_data(response.data["detail"], _code(exc), errors={})
    elif isinstance(exc, NotAuthenticated) and _sent_basic(context.get("request")):
        # a user name and password, as `curl -u` sends them: said only once nothing else let the
        # request in (a proxy's own Basic log-in in front of the site must not lock it out)
        response.data = error_data(
            'This API takes a token, not a user name and password: send "Authorization: Token <token>". '
            "Get one with POST /api/v1/auth/token/ or on your profile page.",
            _code(exc),
        )
    else:
        response.data = error_data(response.data["detail"], _code(exc))
    return response


def _unreadable_request(exc: Exception) -> Response:
    """A 400, as Django answers outside the API, for a request Django refuses to read (too many
    fields or files, fields too large): the client's fault, not the server's, so logged as
    Django logs it (`django.security.<name>`) but as a warning, without a traceback."""
    if isinstance(exc, TooManyFilesSent):
        detail = f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files: send one file per upload."
    elif isinstance(exc, TooManyFieldsSent):
        detail = f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields or parameters."
    elif isinstance(exc, RequestDataTooBig):
        detail = (
            f"The request's fields, the file left aside, are over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes: "
            "send the file as a file part of a multipart body."
        )
    else:
        detail = "The request could not be read."
    logging.getLogger(f"django.security.{type(exc).__name__}").warning("%s", exc)
    return Response(error_data(detail, "bad_request", errors={}), status=400)


def _sent_basic(request) -> bool:
    return request is not None and get_authorization_header(request).split()[:1] == [b"Basic"]


class PrivateApiAnswersMiddleware:
    """An API answer that sets no cache policy of its own (an analysis, a list) is one person's
    and changes (a run, a rerun, a delete): private, and asked for again before it is shown from
    a cache. Images set theirs (`detection.downloads`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path_info.startswith("/api/") and not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_cache=True)
        return response
