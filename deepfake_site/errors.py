"""Error pages: JSON with a `detail` message under /api/, Django's own pages elsewhere."""

from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults

from .api import INTERNAL_ERROR_DETAIL
from .uploads import is_api_request


def bad_request(request, exception):
    if is_api_request(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if is_api_request(request):
        return JsonResponse({"detail": "You do not have permission to do this."}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if is_api_request(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api_request(request):
        return JsonResponse({"detail": INTERNAL_ERROR_DETAIL}, status=500)
    return defaults.server_error(request)
