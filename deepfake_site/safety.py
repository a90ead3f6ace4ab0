"""Keeping DEBUG off the network: start-up refusals shared by the web servers (runserver and
gunicorn.conf.py), and a middleware for the proxy in front that no bind address shows."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from django.http import HttpResponse

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
        # A socket file is what a web server in front (nginx) talks to: counted as reachable
        # from elsewhere, as what is behind that server is.
        return bind
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


def static_files_missing(*, debug: bool, static_root) -> str | None:
    """What to do when the site, DEBUG off, would serve pages before `collectstatic` ran: every
    page then fails (each names a hashed static file the manifest does not list). None when
    there is nothing to say."""
    if debug or (Path(static_root) / "staticfiles.json").is_file():
        return None
    return (
        f"no static files were collected into {static_root} (STATIC_ROOT): every page will answer "
        "500 until `manage.py collectstatic --noinput` is run with the same settings"
    )


PROXY_HEADERS = ("HTTP_FORWARDED", "HTTP_X_REAL_IP", "HTTP_VIA")  # and every HTTP_X_FORWARDED_*


class DebugBehindProxyMiddleware:
    """With DEBUG on, refuses (503) a request carrying a proxy's headers: a site bound to
    127.0.0.1 (which debug_bind_refusal allows) is public once nginx or a tunnel forwards to it,
    and DEBUG then shows settings and tracebacks to anyone. A proxy that adds no header (a bare
    proxy_pass, an SSH tunnel) is not seen: the bind refusal stays the guard. Installed only
    when DEBUG is on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        if any(meta.get(header) for header in PROXY_HEADERS) or any(
            key.startswith("HTTP_X_FORWARDED_") and value for key, value in meta.items()
        ):
            return HttpResponse(
                "This site runs with DEBUG on and was reached through a proxy, which would show "
                "its settings and tracebacks to anyone. Set DEBUG=false (with SECRET_KEY and "
                "QUEUE_SECRET_KEY) to serve it through one.\n",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


def migrations_missing() -> list[str]:
    """The migrations this code has that the database has not been given ("app.name"): a
    process on new code and an old database fails at its first write to a new column (a
    worker refuses to start, `/health/` answers 503)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, backwards in plan if not backwards]
