"""The API's content negotiation (REST_FRAMEWORK's DEFAULT_CONTENT_NEGOTIATION_CLASS).

A module of its own because DRF imports it while `rest_framework.views` is being imported (the
setting is read in `APIView`'s class body): a module that itself imports `rest_framework.views`
would then be half-initialised, and the import fails whenever it comes first (as `manage.py
check` may do through CSRF_FAILURE_VIEW). Import nothing here beyond `rest_framework.negotiation`.
"""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation


class JsonAlways(DefaultContentNegotiation):
    """Every answer in JSON, whatever the client's Accept header or a `?format=` asks for: the
    API has one format, and an error a script cannot parse (or a 406 for asking for HTML) helps
    no one."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
