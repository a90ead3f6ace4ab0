"""Writes for accounts: create a user, change their e-mail address (and record each change),
make and revoke their API tokens, count failed log-ins, sign-ups, e-mails asked for and taken
addresses told, per account, client and address."""

from __future__ import annotations

import hashlib
import smtplib
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.utils import timezone

from detection.services import analysis_delete_all

from .models import PREFIX_LENGTH, ApiToken, key_digest, new_key
from .selectors import (
    EMAIL_CHANGE_LINK_HOURS,
    EMAIL_CHANGE_SALT,
    email_change_link_read,
    email_changed_key,
    email_change_stamp,
    email_in_use,
    email_pending_key,
)


class EmailTaken(Exception):
    """Another account already uses this e-mail address (in any case)."""


class UsernameTaken(Exception):
    """Another account has this username (two sign-ups raced past the form's check)."""


class MailNotSent(Exception):
    """The mail server could not be reached or failed; nothing was kept or counted."""


class MailboxBusy(Exception):
    """Links to this address reached their hourly limit; nothing was sent."""


class AddressRefused(MailNotSent):
    """The mail server refuses to deliver to this address at all (trying again will not help)."""


class TooManyTokens(Exception):
    """The user holds API_TOKENS_PER_USER tokens already."""


class TokenFormSentAgain(Exception):
    """The profile page's token form was sent again (a reload, a double click): its token was
    made the first time, and its key shown then."""


def user_create(*, username: str, email: str, password: str) -> AbstractBaseUser:
    """A new user, without an API token: a token is shown once, when it is made, so the user
    makes one on their profile page (or by logging in through the API) when they need it.
    The password must already have passed validation.

    Raises EmailTaken when the address is in use, UsernameTaken when the username is: the
    database refuses them even when two sign-ups race past the form's check.
    """
    users = get_user_model().objects
    try:
        with transaction.atomic():
            user = users.create_user(username=username, email=email, password=password)
    except IntegrityError:
        if email and email_in_use(email=email):
            raise EmailTaken("An account with this email address already exists.") from None
        if users.filter(username=username).exists():
            raise UsernameTaken("A user with that username already exists.") from None
        raise
    return user


def user_sign_up(
    *, username: str, email: str, password: str, address: str, confirm_url, log_in_url: str = ""
) -> tuple[AbstractBaseUser, bool]:
    """A new account, asked for from the client network `address` (`log_in_url`: the log-in
    page's absolute address, for the notice below). Where the site sends e-mail
    (EMAIL_CHANGE_BY_LINK) it starts without an address, and `email` is mailed a link that gives
    it one, as a change of address does (`confirm_url(token)`: the link's absolute address). An
    address nobody showed to be theirs would get the account's password resets (after a typo: a
    stranger, who could then take the account and its analyses), and would keep its owner from
    signing up with it. An address another account has gets a notice instead (its owner learns
    their username and where to reset the password), and the page says the same as for any
    other address, so nobody learns from signing up whose address is whose. The account is
    committed before the mail goes out (no transaction, so no database lock, waits on a mail
    server) and deleted again when the mail cannot be sent. When links to that address reached
    their limit from all networks (someone may be flooding it), the account is kept without an
    address and nothing is sent: its owner adds the address from the profile later. Returns
    the account and whether a mail went out. Without mail, raises EmailTaken; with it,
    UsernameTaken or MailNotSent (AddressRefused)."""
    if not settings.EMAIL_CHANGE_BY_LINK:
        return user_create(username=username, email=email, password=password), False
    user = user_create(username=username, email="", password=password)
    try:
        user_email_change_request(
            user=user, email=email, address=address, confirm_url=confirm_url, new_account=True, log_in_url=log_in_url
        )
    except MailboxBusy:
        return user, False
    except Exception:  # the mail server, or anything else: no half-made account is left
        user_delete(user=user)
        raise
    return user, True


def _mail(subject: str, body: str, to: str) -> None:
    """Send one message. Raises AddressRefused or MailNotSent."""
    try:
        send_mail(subject, body, None, [to])
    except smtplib.SMTPRecipientsRefused:
        raise AddressRefused("The mail server refuses to deliver to this address. Check it, or use another.") from None
    except OSError as failure:  # smtplib.SMTPException is an OSError, and so are socket errors
        raise MailNotSent("We could not send e-mail just now. Try again in a few minutes.") from failure


# --- E-mail address changes -----------------------------------------------------------------
# Where the site sends e-mail (EMAIL_CHANGE_BY_LINK), a new address is kept only once a link sent
# to it is opened by the account's owner: a typo would otherwise cut the account off from its
# password reset. The links are read in accounts/selectors.py.


def user_email_set(*, user: AbstractBaseUser, email: str) -> None:
    """Give the account the address `email` now, and tell its old address once that is
    committed, where the site sends mail. Raises EmailTaken when another account has it (the
    database refuses it even when two changes race)."""
    old = user.email
    try:
        with transaction.atomic():
            user.email = email
            user.save(update_fields=["email"])
    except IntegrityError:
        user.email = old
        if email_in_use(email=email, user=user):
            raise EmailTaken("An account with this email address already exists.") from None
        raise
    # links made before now are void (accounts/selectors.py), and none is pending
    cache.set(email_changed_key(user=user), time.time(), timeout=EMAIL_CHANGE_LINK_HOURS * HOUR)
    cache.delete(email_pending_key(user=user))
    if old and settings.EMAIL_CHANGE_BY_LINK and old.lower() != email.lower():
        context = {"user": user, "old": old, "new": email}
        notice = render_to_string("accounts/email_changed_notice.txt", context)
        subject = "The e-mail address of your deepfake detector account was changed"
        # robust: a mail server that fails now is logged; the change is made and the page says so
        transaction.on_commit(lambda: send_mail(subject, notice, None, [old]), robust=True)


def user_email_change_request(
    *, user: AbstractBaseUser, email: str, address: str, confirm_url, new_account: bool = False, log_in_url: str = ""
) -> None:
    """Mail `email` a link that changes the account's address to it, asked from the client
    network `address` (`new_account`: at sign-up, which SIGNUP_LIMIT counts per network
    already). `confirm_url(token)` is the link's absolute address. When another account has
    that address, its owner is mailed a notice instead (with `log_in_url`, the log-in page's
    absolute address, at sign-up), and the asker is told the same as for any address: nobody
    learns here whose address is whose. Each counts as a link to that mailbox, counted before
    it is sent (so requests sent at once cannot all pass the limits while a mail server
    answers; a mail that fails still counts). Raises MailboxBusy, sending nothing, when links to
    that mailbox from all networks reached their limit; MailNotSent (AddressRefused) when the
    mail server fails."""
    if _any_reached(_mailbox_keys(email=email, address=address)):
        raise MailboxBusy("Too many links were sent to this email address lately. Try again in an hour.")
    for key in _email_change_keys(user=user, email=email, address=address, per_network=not new_account):
        _count(key, window=HOUR)
    owner = get_user_model().objects.filter(email__iexact=email).exclude(pk=user.pk).first()
    if owner is not None:
        context = {"owner": owner, "email": owner.email, "new_account": new_account, "log_in_url": log_in_url}
        _mail(
            "Someone asked to use your e-mail address on the deepfake detector",
            render_to_string("accounts/email_in_use_notice.txt", context),
            owner.email,
        )
    else:
        change = {"user": user.pk, "to": email, "stamp": email_change_stamp(user=user), "at": time.time()}
        token = signing.dumps(change, salt=EMAIL_CHANGE_SALT)
        context = {
            "user": user,
            "new": email,
            "link": confirm_url(token),
            "hours": EMAIL_CHANGE_LINK_HOURS,
            "new_account": new_account,
        }
        subject = (
            "Confirm the e-mail address of your new deepfake detector account"
            if new_account
            else "Confirm your new e-mail address for the deepfake detector"
        )
        _mail(subject, render_to_string("accounts/email_change_email.txt", context), email)
    # what the profile shows until the link is opened (either way, as the page told the asker)
    pending = {"to": email, "at": time.time(), "stamp": email_change_stamp(user=user)}
    cache.set(email_pending_key(user=user), pending, timeout=EMAIL_CHANGE_LINK_HOURS * HOUR)


def user_email_change_confirm(*, user: AbstractBaseUser, token: str) -> str:
    """Change the account's address to the one the link was sent to, and return it. The account
    is read again under a lock, so two links (or one sent twice) opened at once change it once.
    Raises EmailChangeLinkInvalid or EmailTaken."""
    with transaction.atomic():
        locked = get_user_model().objects.select_for_update().get(pk=user.pk)
        email = email_change_link_read(user=locked, token=token)
        user_email_set(user=locked, email=email)
    user.email = email
    return email


def _email_change_keys(
    *, user: AbstractBaseUser, address: str, email: str | None = None, per_network: bool = True
) -> dict[str, int]:
    """The counts of links and of taken addresses told, with the limit of each: per account and
    (`per_network`) per client network, which many people may share (an office, a mobile
    carrier's NAT) and so is allowed SHARED_FACTOR times as many, and with `email` the counts of
    links sent to that address (_mailbox_keys)."""
    limit = settings.PASSWORD_RESET_LIMIT
    keys = {f"email-changes:user:{user.pk}": limit}
    if per_network:
        keys[f"email-changes:address:{address}"] = limit * SHARED_FACTOR
    if email is not None:
        keys |= _mailbox_keys(email=email, address=address)
    return keys


SHARED_FACTOR = 4


def _mailbox_keys(*, email: str, address: str) -> dict[str, int]:
    """The counts of links sent to one mailbox, with their limits: from one client network, and
    from everywhere, which is allowed SHARED_FACTOR times as many, so that one network alone
    cannot use up an address's links and keep its owner from signing up with it or changing to
    it."""
    mailbox, limit = _mailbox(email=email), settings.PASSWORD_RESET_LIMIT
    return {f"{mailbox}:{address}": limit, mailbox: limit * SHARED_FACTOR}


def _mailbox(*, email: str) -> str:
    return "email-changes:email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def _any_reached(keys: dict[str, int]) -> bool:
    counts = cache.get_many(list(keys))
    return any(counts.get(key, 0) >= limit for key, limit in keys.items())


def email_change_refusal_record(*, user: AbstractBaseUser, address: str) -> None:
    """The account was told another account has the address it asked for (a site without mail):
    counted with its links per account, and per client network on a count of its own that is
    not shared out (_taken_key), so nobody learns more than a few an hour whose address is
    whose."""
    for key in [*_email_change_keys(user=user, address=address, per_network=False), *_taken_key(address=address)]:
        _count(key, window=HOUR)


def _taken_key(*, address: str) -> dict[str, int]:
    return {f"email-changes:taken:{address}": settings.PASSWORD_RESET_LIMIT}


def email_change_blocked(*, user: AbstractBaseUser, email: str, address: str) -> bool:
    """PASSWORD_RESET_LIMIT confirmation e-mails sent, or taken addresses told, in the last hour
    to this account (SHARED_FACTOR times as many to this client network), or e-mails sent to this
    address from this network (SHARED_FACTOR times as many from anywhere: no inbox is flooded by
    many accounts)."""
    return _any_reached(_email_change_keys(user=user, address=address, email=email) | _taken_key(address=address))


def email_links_blocked(*, email: str, address: str) -> bool:
    """Too many links went to this address in the last hour from this client network (a
    sign-up's link counts as one: no inbox is flooded by making accounts with its address; the
    limit from all networks is user_email_change_request's, see user_sign_up)."""
    return _any_reached({f"{_mailbox(email=email)}:{address}": settings.PASSWORD_RESET_LIMIT})


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


def api_token_create(
    *, user: AbstractBaseUser, name: str = "", made_by: str = ApiToken.PROFILE, form_id: str = ""
) -> tuple[ApiToken, str]:
    """A new token for `user`, and its key. The key is returned this once and stored nowhere.

    Raises TooManyTokens when the user holds API_TOKENS_PER_USER tokens already, and
    TokenFormSentAgain when the form `form_id` names made a token already (for a day)."""
    name = name.strip() or DEFAULT_TOKEN_NAME
    form_key = f"api-token-form:{user.pk}:{form_id}"
    try:
        with transaction.atomic():
            _lock(user=user)  # a second sending of the form waits here for the first to be done
            sent_before = cache.get(form_key) if form_id else None
            if isinstance(sent_before, tuple):  # before the count, which the token it made is in
                first_name, first_prefix = sent_before
                raise TokenFormSentAgain(
                    f"This form was sent twice, and the first sending made the token “{first_name}” "
                    f"({first_prefix}…). Its key was in the answer to that first sending only: if you "
                    "did not copy it, revoke that token below and make another."
                )
            if ApiToken.objects.filter(user=user).count() >= settings.API_TOKENS_PER_USER:
                raise TooManyTokens(
                    f"You have {settings.API_TOKENS_PER_USER} API tokens, as many as an account may have: "
                    "revoke one you no longer use on your profile page first."
                )
            made = _made(user=user, name=name, made_by=made_by)
            if form_id:  # set before the commit, so that a second sending waiting on the lock sees it
                cache.set(form_key, (made[0].name, made[0].prefix), timeout=24 * HOUR)
    except (TokenFormSentAgain, TooManyTokens):
        raise
    except Exception:
        if form_id:  # no token was kept: the form may be sent again
            cache.delete(form_key)
        raise
    return made


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
