"""Writes for accounts: create a user, change their e-mail address, make and revoke their API
tokens, count failed log-ins, sign-ups and e-mails asked for per client."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.db.models.functions import Coalesce
from django.utils import timezone

from detection.services import analysis_delete_all

from .models import PREFIX_LENGTH, ApiToken, key_digest, new_key


class EmailTaken(Exception):
    """Another account already uses this e-mail address (in any case)."""


class TooManyTokens(Exception):
    """The user holds API_TOKENS_PER_USER tokens already."""


def user_create(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """A new user, without an API token: a token is shown once, when it is made, so the user
    makes one on their profile page (or by logging in through the API) when they need it.
    The password must already have passed validation.

    Raises EmailTaken when the address is in use: the database refuses it even when two
    sign-ups race past the form's check.
    """
    users = get_user_model().objects
    try:
        with transaction.atomic():
            user = users.create_user(username=username, email=email, password=password)
    except IntegrityError:
        if email and users.filter(email__iexact=email).exists():
            raise EmailTaken("An account with this email address already exists.") from None
        raise
    return user


# --- E-mail address changes -----------------------------------------------------------------
# Where the site sends e-mail (EMAIL_CHANGE_BY_LINK), a new address is kept only once a link sent
# to it is opened by the account's owner: a typo would otherwise cut the account off from its
# password reset. The link is signed, names the address it changes from (so it works once, and
# no more after any other change) and lasts EMAIL_CHANGE_LINK_HOURS.
EMAIL_CHANGE_SALT = "accounts.email-change"
EMAIL_CHANGE_LINK_HOURS = 24


class EmailChangeLinkInvalid(Exception):
    """The link is broken, expired, someone else's, or for an address that changed since."""


def _email_in_use(*, email: str, user: AbstractBaseUser) -> bool:
    return get_user_model().objects.filter(email__iexact=email).exclude(pk=user.pk).exists()


def user_email_set(*, user: AbstractBaseUser, email: str) -> None:
    """Give the account the address `email` now, and tell its old address where the site sends
    mail. Raises EmailTaken when another account has it (the database refuses it even when two
    changes race)."""
    old = user.email
    try:
        with transaction.atomic():
            user.email = email
            user.save(update_fields=["email"])
    except IntegrityError:
        user.email = old
        if _email_in_use(email=email, user=user):
            raise EmailTaken("An account with this email address already exists.") from None
        raise
    if old and settings.EMAIL_CHANGE_BY_LINK and old.lower() != email.lower():
        context = {"user": user, "old": old, "new": email}
        send_mail(
            "The e-mail address of your deepfake detector account was changed",
            render_to_string("accounts/email_changed_notice.txt", context),
            None,
            [old],
        )


def user_email_change_request(*, user: AbstractBaseUser, email: str, confirm_url) -> None:
    """Mail `email` a link that changes the account's address to it. `confirm_url(token)` is the
    link's absolute address. Raises EmailTaken when another account has that address."""
    if _email_in_use(email=email, user=user):
        raise EmailTaken("An account with this email address already exists.")
    token = signing.dumps({"user": user.pk, "from": user.email, "to": email}, salt=EMAIL_CHANGE_SALT)
    context = {"user": user, "new": email, "link": confirm_url(token), "hours": EMAIL_CHANGE_LINK_HOURS}
    send_mail(
        "Confirm your new e-mail address for the deepfake detector",
        render_to_string("accounts/email_change_email.txt", context),
        None,
        [email],
    )
    _count(_email_change_key(user=user), window=HOUR)


def user_email_change_read(*, user: AbstractBaseUser, token: str) -> str:
    """The address a confirmation link changes this account to. Raises EmailChangeLinkInvalid."""
    try:
        change = signing.loads(token, salt=EMAIL_CHANGE_SALT, max_age=EMAIL_CHANGE_LINK_HOURS * HOUR)
    except signing.BadSignature:  # expired links too (SignatureExpired)
        raise EmailChangeLinkInvalid("This link is broken or has expired.") from None
    if change.get("user") != user.pk:
        raise EmailChangeLinkInvalid("This link was made for another account.")
    if change.get("to") == user.email:
        raise EmailChangeLinkInvalid(f"This link was used already: your address is {user.email}.")
    if change.get("from") != user.email:
        raise EmailChangeLinkInvalid("This link was used already, or your address changed since it was sent.")
    return change["to"]


def user_email_change_confirm(*, user: AbstractBaseUser, token: str) -> str:
    """Change the account's address to the one the link was sent to, and return it. Raises
    EmailChangeLinkInvalid or EmailTaken."""
    email = user_email_change_read(user=user, token=token)
    user_email_set(user=user, email=email)
    return email


def _email_change_key(*, user: AbstractBaseUser) -> str:
    return f"email-changes:user:{user.pk}"


def email_change_blocked(*, user: AbstractBaseUser) -> bool:
    """PASSWORD_RESET_LIMIT confirmation e-mails were sent for this account in the last hour."""
    return cache.get(_email_change_key(user=user), 0) >= settings.PASSWORD_RESET_LIMIT


# --- API tokens (accounts/models.py) ---------------------------------------------------------
DEFAULT_TOKEN_NAME = "API token"
LOG_IN_TOKEN_NAME = "API log-in"
LAST_USED_EVERY = 60  # seconds: how often a token's "last used" is written while it is in use


def user_delete(*, user: AbstractBaseUser) -> None:
    """Delete the account and everything it kept: its analyses with their files (deleted once
    the deletion is committed) and its API tokens. The profile page and the admin both delete
    accounts through here."""
    with transaction.atomic():
        analysis_delete_all(owner=user)
        user.delete()


def api_token_create(*, user: AbstractBaseUser, name: str = "", made_by: str = ApiToken.PROFILE) -> tuple[ApiToken, str]:
    """A new token for `user`, and its key. The key is returned this once and stored nowhere.

    Raises TooManyTokens when the user holds API_TOKENS_PER_USER tokens already."""
    with transaction.atomic():
        _lock(user=user)
        if ApiToken.objects.filter(user=user).count() >= settings.API_TOKENS_PER_USER:
            raise TooManyTokens(
                f"You have {settings.API_TOKENS_PER_USER} API tokens, as many as an account may have: "
                "revoke one you no longer use on your profile page first."
            )
        return _made(user=user, name=name.strip() or DEFAULT_TOKEN_NAME, made_by=made_by)


def api_token_log_in(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiToken, str]:
    """A new token for a script that logged in with its owner's password (the API's token
    endpoint), and its key. Each log-in makes its own token. When the user already holds
    API_TOKENS_PER_USER tokens, the log-in token used least lately gives way to the new one,
    so a script that logs in on every run does not fill the account up; tokens made on the
    profile page never give way. Raises TooManyTokens when every token was made there."""
    with transaction.atomic():
        _lock(user=user)
        tokens = ApiToken.objects.filter(user=user)
        excess = tokens.count() - settings.API_TOKENS_PER_USER + 1
        if excess > 0:
            oldest = list(
                tokens.filter(made_by=ApiToken.LOG_IN)
                .order_by(Coalesce("last_used", "created"), "id")
                .values_list("id", flat=True)[:excess]
            )
            if len(oldest) < excess:
                raise TooManyTokens(
                    f"You have {settings.API_TOKENS_PER_USER} API tokens made on your profile page, as many as an "
                    "account may have: revoke one you no longer use there first."
                )
            tokens.filter(id__in=oldest).delete()
        return _made(user=user, name=name.strip() or LOG_IN_TOKEN_NAME, made_by=ApiToken.LOG_IN)


def _lock(*, user: AbstractBaseUser) -> None:
    """Makes two requests of one user that count their tokens take turns (PostgreSQL; SQLite
    runs one writing transaction at a time anyway)."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()


def _made(*, user: AbstractBaseUser, name: str, made_by: str) -> tuple[ApiToken, str]:
    key = new_key()
    token = ApiToken.objects.create(
        user=user, name=name[: ApiToken._meta.get_field("name").max_length], digest=key_digest(key), prefix=key[:PREFIX_LENGTH], made_by=made_by
    )
    return token, key


def api_token_revoke(*, user: AbstractBaseUser, token_id: int) -> ApiToken | None:
    """Revoke one of the user's tokens: requests that send it are refused from now on. None
    when the user has no such token (another user's included)."""
    token = ApiToken.objects.filter(user=user, pk=token_id).first()
    if token is not None:
        token.delete()
    return token


def api_tokens_revoke_all(*, user: AbstractBaseUser) -> int:
    """Revoke every token of the user (their password changed); how many there were."""
    deleted, _ = ApiToken.objects.filter(user=user).delete()
    return deleted


def api_token_used(*, token: ApiToken) -> None:
    """Note that the token was just used: written at most once a minute per token, so that a
    script's requests do not each write to the database."""
    now = timezone.now()
    if token.last_used is None or (now - token.last_used).total_seconds() >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now


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
