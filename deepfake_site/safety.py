"""Start-up refusals shared by the web servers (runserver and gunicorn.conf.py)."""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or 0.0.0.0-like wildcard: reachable from elsewhere


def bind_host(bind: str) -> str:
    """The host of a gunicorn bind string: "0.0.0.0:8000", "[::1]:8000", "unix:/run/x.sock"."""
    if bind.startswith("unix:"):
        return "localhost"  # a socket file is reached through this machine only
    if bind.startswith("["):
        return bind[1 : bind.index("]")]
    return bind.rsplit(":", 1)[0] if ":" in bind else bind


def debug_bind_refusal(*, debug: bool, hosts: list[str]) -> str | None:
    """Why the site must not start with DEBUG on at these addresses; None when it may."""
    exposed = [host for host in hosts if not is_loopback(host)]
    if debug and exposed:
        return (
            f"DEBUG is on and the site would listen on {', '.join(exposed)}, reachable from "
            "other machines: DEBUG shows settings and tracebacks to anyone, and the keys may be "
            "the public development ones. Set DEBUG=false (with SECRET_KEY and "
            "QUEUE_SECRET_KEY), or listen on 127.0.0.1 only."
        )
    return None
