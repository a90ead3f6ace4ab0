"""Token API: exchange a username and password for the user's API token."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from deepfake_site.api import ErrorOutputSerializer, ValidationErrorOutputSerializer

from . import services
from .selectors import client_network
from .serializers import TokenCreateInputSerializer, TokenOutputSerializer


class TokenRateThrottle(AnonRateThrottle):
    """Limits token requests per client address, whoever they claim to be."""

    scope = "token"

    def get_rate(self) -> str:
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]


class TokenCreateApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenRateThrottle]

    @extend_schema(
        operation_id="auth_token_create",
        summary="Get your API token",
        request=TokenCreateInputSerializer,
        responses={
            200: TokenOutputSerializer,
            400: OpenApiResponse(ValidationErrorOutputSerializer, "Missing or wrong credentials."),
            429: OpenApiResponse(ErrorOutputSerializer, "Too many attempts; retry later."),
        },
    )
    def post(self, request):
        credentials = TokenCreateInputSerializer(data=request.data)
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
        user = authenticate(request=request, **credentials.validated_data)
        if user is None or not user.is_active:
            services.login_failure_record(username=username, address=address)
            raise ValidationError("Unable to log in with this username and password.")
        services.login_failures_clear(username=username, address=address)
        token = services.token_get_or_create(user=user)
        return Response({"token": token.key})
