from __future__ import annotations

import ipaddress
from datetime import datetime
from datetime import timezone as dt_timezone

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.cache import cache
from django.db.models import QuerySet
from django.utils.crypto import salted_hmac

from .models import ApiToken, key_digest


def api_token_list(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The user's tokens, newest first (their keys are not kept: see accounts/models.py)."""
    return ApiToken.objects.filter(user=user)


def api_token_for_key(*, key: str) -> ApiToken | None:
    """The token a request's key is, with its user; None for a key no token has."""
    return ApiToken.objects.select_related("user").filter(digest=key_digest(key)).first()


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or with NUM_PROXIES trusted proxies in front, the
    address the outermost of them saw (as the API's throttles count it)."""
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addresses:
            return addresses[-min(proxies, len(addresses))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def client_network(request) -> str:
    """What the throttles of log-ins, sign-ups and password resets count as one client: its
    address, or for IPv6 the /64 it is in (the smallest block a network gives one host or home;
    its addresses would otherwise be as many clients as it likes). Homes and servers are often
    given a /56 or /48, so one of them can still count as many clients."""
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:  # ::ffff:203.0.113.7, a v4 client of a dual-stack socket
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


# --- E-mail address changes (accounts/services.py sends the links) ----------------------------
# A link is signed, lasts EMAIL_CHANGE_LINK_HOURS and carries a stamp of the account's password
# and address when it was sent (a new password or another address voids it) and the time it was
# made: every change of address is recorded in the cache for as long as a link lives, and a link
# made before the account's last change is void, so a link works once, and an unused one does
# not come back when the address is changed back (A -> C -> A).
EMAIL_CHANGE_SALT = "accounts.email-change"
EMAIL_CHANGE_LINK_HOURS = 24


def email_changed_key(*, user: AbstractBaseUser) -> str:
    """The cache key holding when the account's address last changed (time.time())."""
    return f"email-changed:user:{user.pk}"


def email_pending_key(*, user: AbstractBaseUser) -> str:
    """The cache key holding the address the account's last link was sent to, and when."""
    return f"email-pending:user:{user.pk}"


def user_email_pending(*, user: AbstractBaseUser) -> dict | None:
    """{"to": address, "sent": an aware datetime} of the last confirmation link sent for this account
    while it can still be opened; None when there is none, or the address changed since. Shown
    on the profile, so that an account made with an address it does not have yet says where the
    link went (the same whether or not another account has that address: nothing leaks)."""
    pending = cache.get(email_pending_key(user=user))
    # as the link itself is read (email_change_link_read): the same address, a new password or
    # another address set since void it
    if not pending or pending.get("to") == user.email or pending.get("stamp") != email_change_stamp(user=user):
        return None
    changed = cache.get(email_changed_key(user=user))
    if changed is not None and pending.get("at", 0) < changed:
        return None
    return {"to": pending["to"], "sent": datetime.fromtimestamp(pending["at"], tz=dt_timezone.utc)}


class EmailChangeLinkInvalid(Exception):
    """The link is broken, expired, someone else's, used, or outdated by a change since."""


def email_in_use(*, email: str, user: AbstractBaseUser | None = None) -> bool:
    """Whether an account (other than `user`) has this address, in any case."""
    users = get_user_model().objects.filter(email__iexact=email)
    return users.exclude(pk=user.pk).exists() if user is not None else users.exists()


def email_change_stamp(*, user: AbstractBaseUser) -> str:
    """What a link must carry to be valid for the account as it is now (as Django's password
    reset tokens do: a digest of the password hash and the address, keyed by SECRET_KEY)."""
    return salted_hmac(EMAIL_CHANGE_SALT, f"{user.pk}:{user.password}:{user.email}").hexdigest()[:32]


def email_change_link_read(*, user: AbstractBaseUser, token: str) -> str:
    """The address a confirmation link changes this account to. Raises EmailChangeLinkInvalid."""
    try:
        change = signing.loads(token, salt=EMAIL_CHANGE_SALT, max_age=EMAIL_CHANGE_LINK_HOURS * 3600)
    except signing.BadSignature:  # expired links too (SignatureExpired)
        raise EmailChangeLinkInvalid("This link is broken or has expired.") from None
    if change.get("user") != user.pk:
        raise EmailChangeLinkInvalid("This link was made for another account.")
    if change.get("to") == user.email:
        raise EmailChangeLinkInvalid(f"This link was used already: your address is {user.email}.")
    changed = cache.get(email_changed_key(user=user))
    if change.get("stamp") != email_change_stamp(user=user) or (changed is not None and change.get("at", 0) < changed):
        raise EmailChangeLinkInvalid(
            "This link was used already, or your address or password changed since it was sent."
        )
    return change["to"]
