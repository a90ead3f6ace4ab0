"""The API's `Authorization: Token <key>` header, checked against the digests the database keeps
(accounts/models.py). DRF's TokenAuthentication parses the header and words its errors; only
the lookup is ours."""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from . import selectors, services


class ApiTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        # OAuth's scheme is what most HTTP clients send by default: say which one this API takes
        # (DRF would answer "credentials were not provided").
        if get_authorization_header(request).split()[:1] == [b"Bearer"]:
            raise AuthenticationFailed('Send the token as "Authorization: Token <token>", not "Bearer <token>".')
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        token = selectors.api_token_for_key(key=key)
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        services.api_token_used(token=token)
        return token.user, token
