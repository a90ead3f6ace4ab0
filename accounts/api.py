"""Token API: exchange a username and password for a new API token (POST), and revoke the token
a request is sent with (DELETE), as a script does when it is done."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth import authenticate
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import Throttled, UnsupportedMediaType, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from deepfake_site.api import ErrorOutputSerializer, ValidationErrorOutputSerializer

from . import services
from .authentication import ApiTokenAuthentication
from .selectors import client_network
from .serializers import TokenCreateInputSerializer, TokenOutputSerializer


class TokenRateThrottle(AnonRateThrottle):
    """Limits log-ins (POST) per client (its address, an IPv6 client's /64, as failed log-ins are
    counted), whoever they claim to be and whatever token they send. Only a POST tries a
    password: a DELETE (which needs a valid token) and any other method (a GET, an OPTIONS, all
    answered without a key) are not counted."""

    scope = "token"

    def get_rate(self) -> str:
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def allow_request(self, request, view) -> bool:
        return request.method != "POST" or super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_network(request)}


class TokenApi(APIView):
    """POST needs no token but a password; DELETE needs the token it revokes, and only that (a
    browser's session has no token to revoke)."""

    authentication_classes = [ApiTokenAuthentication]
    throttle_classes = [TokenRateThrottle]

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "DELETE" else [AllowAny()]

    def throttled(self, request, wait):
        """The log-in limit's 429 in the site's words ("Try again in 19 seconds"), not DRF's
        "Request was throttled. Expected available in 19 seconds."; `Retry-After` in seconds."""
        wait_s = max(1, math.ceil(wait or 0))
        later = f"{wait_s} second{'s' if wait_s != 1 else ''}"
        if wait_s >= 120:
            later = f"{math.ceil(wait_s / 60)} minutes"
        refusal = Throttled(detail=f"Too many log-in attempts from your address. Try again in {later}.")
        refusal.wait = wait_s
        raise refusal

    @method_decorator(never_cache)  # the answer holds a new token's key: no browser or proxy may keep a copy
    @extend_schema(
        operation_id="auth_token_create",
        summary="Get a new API token",
        description=(
            "Each call makes a new token, named `name` (shown on your profile page, where tokens are "
            "revoked). Keep it rather than logging in on every run: an account holds at most "
            "`API_TOKENS_PER_USER` tokens (20 by default), and past that a log-in replaces the token "
            "made by a log-in that was used least lately. The token is returned this once: the site "
            "keeps only its digest."
        ),
        request=TokenCreateInputSerializer,
        responses={
            200: TokenOutputSerializer,
            400: OpenApiResponse(
                ValidationErrorOutputSerializer,
                "Missing or wrong credentials, or the account holds as many tokens made on its profile page as it may.",
            ),
            401: OpenApiResponse(ErrorOutputSerializer, "A token was sent, and it is not valid (send none)."),
            415: OpenApiResponse(ErrorOutputSerializer, "A body that is not form data or JSON."),
            429: OpenApiResponse(ErrorOutputSerializer, "Too many attempts; retry later."),
        },
    )
    def post(self, request):
        try:
            data = request.data
        except UnsupportedMediaType:
            raise UnsupportedMediaType(
                request.content_type,
                detail=(
                    f"Send username and password as form fields (application/x-www-form-urlencoded or "
                    f"multipart/form-data) or as JSON (application/json), not {request.content_type or 'an untyped body'}."
                ),
            ) from None
        credentials = TokenCreateInputSerializer(data=data)
        credentials.is_valid(raise_exception=True)
        username = credentials.validated_data["username"]
        address = client_network(request)
        if services.login_blocked(username=username, address=address):
            window = settings.LOGIN_FAILURE_WINDOW
            refusal = Throttled(
                detail=f"Too many failed log-in attempts. Wait {max(1, round(window / 60))} minutes, then try again."
            )
            refusal.wait = window  # Retry-After, without DRF's "Expected available in ..." sentence
            raise refusal
        user = authenticate(request=request, username=username, password=credentials.validated_data["password"])
        if user is None or not user.is_active:
            services.login_failure_record(username=username, address=address)
            raise ValidationError("Unable to log in with this username and password.")
        services.login_failures_clear(username=username, address=address)
        try:
            token, key = services.api_token_log_in(user=user, name=credentials.validated_data.get("name", ""))
        except services.TooManyTokens as refusal:
            raise ValidationError(str(refusal)) from None
        return Response(TokenOutputSerializer({"token": key, "name": token.name, "created": token.created}).data)

    @extend_schema(
        operation_id="auth_token_destroy",
        summary="Revoke the token this request is sent with",
        description="Revokes the token in the request's `Authorization` header, as a script does when it is done; "
        "the account's other tokens keep working.",
        request=None,
        responses={
            204: OpenApiResponse(description="Revoked: requests with it are refused from now on."),
            401: OpenApiResponse(ErrorOutputSerializer, "No token, or one that is not (or no longer) valid."),
        },
    )
    def delete(self, request):
        services.api_token_revoke(user=request.user, token_id=request.auth.pk)
        return Response(status=204)
