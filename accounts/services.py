"""Writes for accounts: create a user, create or replace their API token."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token


@transaction.atomic
def user_create(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """A new user with an API token. The password must already have passed validation."""
    user = get_user_model().objects.create_user(username=username, email=email, password=password)
    Token.objects.create(user=user)
    return user


def token_get_or_create(*, user: AbstractBaseUser) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token


@transaction.atomic
def token_regenerate(*, user: AbstractBaseUser) -> Token:
    """Replace the user's token: the old one stops working at once."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)
