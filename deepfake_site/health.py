"""`/health/`: what a load balancer or an orchestrator asks before sending a web machine traffic.

200 when this process can reach everything an upload needs (the database, migrated for this
code, the cache, and the Redis queue where there is one), 503 naming what it cannot reach (or
"behind": `manage.py migrate` has not been run for this release). Open to anyone, as probes do
not log in, so it says which part failed but never why (the reason goes to the log). It does not
ask whether a worker is up: the site takes uploads without one (they wait, and the result page
says so), and taking a web machine out of service would not start one.

Probes usually send the machine's address as Host: that name must be in ALLOWED_HOSTS, or the
probe must send one of the site's names (README, "Running on servers")."""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .safety import migrations_missing

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 2.0  # a Redis that does not answer in this long counts as down


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


class Behind(Exception):
    """The database lacks migrations this code has."""


_migrated = False  # once the database was found migrated, this process does not ask again


def _migrations() -> None:
    global _migrated
    if _migrated:
        return
    missing = migrations_missing()
    if missing:
        raise Behind(f"the database lacks migrations: {', '.join(missing)}")
    _migrated = True


def _cache() -> None:
    value = uuid.uuid4().hex
    key = f"health-probe:{value}"  # each probe its own: machines and probes share the cache
    cache.set(key, value, 10)
    try:
        if cache.get(key) != value:
            raise RuntimeError("the cache did not keep a value it was given")
    finally:
        cache.delete(key)


@lru_cache(maxsize=1)
def _redis_client():
    import redis

    return redis.Redis.from_url(
        settings.Q_CLUSTER["redis"], socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
    )


def _queue() -> None:
    if not _redis_client().ping():
        raise RuntimeError("Redis did not answer PING")


def checks() -> dict:
    """What `/health/` looks at, by name. The database queue is the database."""
    found = {"database": _database, "migrations": _migrations, "cache": _cache}
    if settings.Q_BROKER == "redis":
        found["queue"] = _queue
    return found


@require_safe
@never_cache
def health(request):
    results = {}
    for name, check in checks().items():
        try:
            check()
            results[name] = "ok"
        except Behind as exc:  # `manage.py migrate` not run for this release yet
            logger.error("health check: %s", exc)
            results[name] = "behind"
        except Exception:  # a probe answers; the reason goes to the log
            logger.exception("health check: the %s cannot be reached", name)
            results[name] = "unreachable"
    ok = all(value == "ok" for value in results.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": results}, status=200 if ok else 503)
