"""The API's `Authorization: Token <key>` header, checked against the digests the database keeps
(accounts/models.py). DRF's TokenAuthentication parses the header and words its errors; only
the lookup is ours."""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from . import selectors, services


class ApiTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        token = selectors.api_token_for_key(key=key)
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        services.api_token_used(token=token)
        return token.user, token
