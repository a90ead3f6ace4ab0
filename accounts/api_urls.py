"""Accounts' API routes, included under /api/v1/ by deepfake_site/urls.py (namespace
`accounts_api`)."""

from django.urls import path

from . import api

app_name = "accounts_api"

urlpatterns = [
    path("auth/token/", api.TokenApi.as_view(), name="token"),
]
