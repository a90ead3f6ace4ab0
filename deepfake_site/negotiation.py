"""The API's content negotiation (REST_FRAMEWORK's DEFAULT_CONTENT_NEGOTIATION_CLASS).

A module of its own because DRF imports it while `rest_framework.views` is being imported (the
setting is read in `APIView`'s class body): a module that itself imports `rest_framework.views`
would then be half-initialised, and the import fails whenever it comes first (as `manage.py
check` may do through CSRF_FAILURE_VIEW). Import nothing here beyond `rest_framework.negotiation`
(and what it imports itself).
"""

from __future__ import annotations

from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class JsonAlways(DefaultContentNegotiation):
    """Every answer in JSON, whatever the client's Accept header or a `?format=` asks for: the
    API has one format, and an error a script cannot parse (or a 406 for asking for HTML) helps
    no one."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class SchemaFormats(DefaultContentNegotiation):
    """The schema view's: JSON for `?format=json` or a JSON Accept header
    (application/vnd.oai.openapi+json, application/json), else YAML, its first renderer, even
    for an Accept or a `?format=` it has no renderer for (rather than a 406 or a 404)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except (NotAcceptable, Http404):
            return renderers[0], renderers[0].media_type
