"""Error pages: JSON with a `detail` message under /api/ (and an empty `errors` in a 400, as the
API's own 400s have), Django's own pages elsewhere."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.http import JsonResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from .api import INTERNAL_ERROR_DETAIL, error_data
from .uploads import is_api_request


def bad_request(request, exception):
    if is_api_request(request):
        return JsonResponse(error_data("Bad request.", "bad_request", errors={}), status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if is_api_request(request):
        return JsonResponse(error_data("You do not have permission to do this.", "permission_denied"), status=403)
    return defaults.permission_denied(request, exception)


def csrf_failure(request, reason: str = ""):
    """The site's "form expired" page (CSRF_FAILURE_VIEW). When the CSRF cookie goes over HTTPS
    only, a form sent over plain HTTP comes without it (the browser refused to keep it), and
    reloading will not help: the page says so, rather than blaming an old tab."""
    # A proxy that says the browser came over HTTPS (though BEHIND_HTTPS_PROXY is not set to
    # trust it) rules the hint out: the cause is elsewhere.
    over_https = request.is_secure() or request.META.get("HTTP_X_FORWARDED_PROTO", "").lower() == "https"
    plain_http = reason == REASON_NO_CSRF_COOKIE and settings.CSRF_COOKIE_SECURE and not over_https
    context = {"plain_http": plain_http}
    return render(request, "403_csrf.html", context, status=403)


def page_not_found(request, exception):
    if is_api_request(request):
        return JsonResponse(error_data("Not found.", "not_found"), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api_request(request):
        return JsonResponse(error_data(INTERNAL_ERROR_DETAIL, "internal_error"), status=500)
    return defaults.server_error(request)


@csrf_exempt  # it changes nothing; a token client's POST must get this 404, not a CSRF 403 page
def api_path_not_found(request, rest: str = ""):
    """The last route under /api/v1/: a JSON 404 for any path no endpoint has, whatever the
    method, with DEBUG on or off. Without it Django would answer a path missing its final slash
    with a redirect (a POST or DELETE then lost, or an HTML error page with DEBUG on)."""
    detail = "No such API endpoint."
    analysis_id = re.match(r"analyses/([^/]+)(/|$)", rest)
    if analysis_id and not UUID_ROUTE.fullmatch(analysis_id.group(1)):
        # the route exists, but what stands for the id cannot be one: say what is wrong with it
        detail = f"No such analysis: {analysis_id.group(1)[:80]!r} is not an analysis id. " + _id_hint(analysis_id.group(1))
    elif not request.path_info.endswith("/"):
        try:
            match = resolve(request.path_info + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_path_not_found:
            detail += f" Did you mean {request.path}/ (API paths end with a slash)?"
    return JsonResponse(error_data(detail, "not_found"), status=404)


# how Django's <uuid:> route converter and the API write ids: lower case, with hyphens
UUID_ROUTE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _id_hint(text: str) -> str:
    try:
        written = str(uuid.UUID(text))
    except ValueError:
        return "Ids are UUIDs, such as 0f8fad5b-d9cb-469f-a165-70867728950e, as the upload and the list give them."
    return f"Write it as the API does, in lower case with hyphens: {written}."
