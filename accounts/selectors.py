from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

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
