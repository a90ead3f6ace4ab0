"""Writes for accounts: create a user, create or replace their API token, count failed
log-ins, sign-ups and password-reset e-mails per client."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token


class EmailTaken(Exception):
    """Another account already uses this e-mail address (in any case)."""


def user_create(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """A new user with an API token. The password must already have passed validation.

    Raises EmailTaken when the address is in use: the database refuses it even when two
    sign-ups race past the form's check.
    """
    users = get_user_model().objects
    try:
        with transaction.atomic():
            user = users.create_user(username=username, email=email, password=password)
            token_get_or_create(user=user)
    except IntegrityError:
        if email and users.filter(email__iexact=email).exists():
            raise EmailTaken("An account with this email address already exists.") from None
        raise
    return user


def token_get_or_create(*, user: AbstractBaseUser) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token


@transaction.atomic
def token_regenerate(*, user: AbstractBaseUser) -> Token:
    """Replace the user's token: the old one stops working at once."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


# --- Failed log-ins ---------------------------------------------------------------------------
# Counted in the cache (give several web processes a shared one: CACHE_URL), per account and
# client address and per client address alone, over a sliding window of LOGIN_FAILURE_WINDOW.


def _login_keys(*, username: str, address: str) -> list[str]:
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"login-failures:account:{account}:{address}", f"login-failures:address:{address}"]


def _login_limits() -> list[int]:
    return [settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_LIMIT * 4]


def _count(key: str, *, window: int) -> None:
    """One more in the count under `key`, which is forgotten `window` seconds after the last."""
    if cache.add(key, 1, timeout=window):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return
    # Each one starts the window again (Django's file cache would otherwise give the
    # incremented count its default 5 minutes, whatever the window says).
    cache.touch(key, timeout=window)


def login_failure_record(*, username: str, address: str) -> None:
    for key in _login_keys(username=username, address=address):
        _count(key, window=settings.LOGIN_FAILURE_WINDOW)


def login_failures_clear(*, username: str, address: str) -> None:
    """After a successful log-in, that account's count from that address starts again."""
    cache.delete(_login_keys(username=username, address=address)[0])


def login_blocked(*, username: str, address: str) -> bool:
    """Too many failed log-ins lately for this account from this address, or from it at all."""
    keys = _login_keys(username=username, address=address)
    counts = cache.get_many(keys)
    return any(counts.get(key, 0) >= limit for key, limit in zip(keys, _login_limits()))


# --- Sign-ups and password-reset e-mails ------------------------------------------------------
# Counted like failed log-ins, over an hour after the last one.
HOUR = 3600


def signup_record(*, address: str) -> None:
    _count(f"signups:address:{address}", window=HOUR)


def signup_blocked(*, address: str) -> bool:
    """SIGNUP_LIMIT accounts were made from this client lately."""
    return cache.get(f"signups:address:{address}", 0) >= settings.SIGNUP_LIMIT


def _reset_keys(*, email: str, address: str) -> list[str]:
    mailbox = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return [f"password-resets:address:{address}", f"password-resets:email:{mailbox}"]


def password_reset_record(*, email: str, address: str) -> None:
    for key in _reset_keys(email=email, address=address):
        _count(key, window=HOUR)


def password_reset_blocked(*, email: str, address: str) -> bool:
    """PASSWORD_RESET_LIMIT reset e-mails were asked for lately from this client, or for this
    address (whether or not an account has it: the answer must not tell)."""
    counts = cache.get_many(_reset_keys(email=email, address=address))
    return any(count >= settings.PASSWORD_RESET_LIMIT for count in counts.values())
