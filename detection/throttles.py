"""The upload rate limit: one count per user, whether the files come through the API (and the
upload page's script, which sends through it) or through the page's plain form. Only files
that are stored count (`upload_count`, called by the services as they store an upload or
queue a run again, with the owner's row locked): a refused upload (empty, unsupported, a bad
`?wait`) uses up nothing, and uploads sent at once are counted one after the other, so they
cannot all take the last place. The API also checks the limit before it reads a request's
body (`UploadRateThrottle` as a DRF throttle), so a user over it is not made to send the file.

DRF's per-user throttle keeps the times of each user's recent uploads in the cache (shared by
every web process, see settings.CACHES); the form asks the same throttle once per file. The
cache outlives a database (a development site started on a fresh one numbers its users from 1
again), so a count belongs to a user's number and the moment the account was made, not the
number alone."""

from __future__ import annotations

import math

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

PERIODS = {1: "a second", 60: "a minute", 3600: "an hour", 86400: "a day"}


class UploadRateThrottle(UserRateThrottle):
    """Limits uploads (POST) per user; reading is not throttled. The rate is read from the
    settings on every request, so it can be changed without a restart of the process."""

    scope = "uploads"

    def get_rate(self) -> str:
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def get_cache_key(self, request, view) -> str | None:
        user = request.user
        if not user.is_authenticated:
            return super().get_cache_key(request, view)  # by address, as DRF does
        return self.cache_format % {"scope": self.scope, "ident": _user_ident(user)}

    def allow_request(self, request, view) -> bool:
        if request.method != "POST":
            return True
        return super().allow_request(request, view)

    def throttle_success(self) -> bool:
        """Under the limit: let the upload through without counting it yet."""
        return True

    def wait(self) -> float:
        """Seconds until an upload is allowed again: until the upload that keeps the count at
        the limit leaves the window. DRF's estimate spreads the time left over the uploads left
        and has none once more were counted than the rate allows (uploads sent at once, or the
        rate lowered), which both callers made "try again in 1 second" for the whole window."""
        if len(self.history) < self.num_requests:
            return 0.0
        blocking = self.history[self.num_requests - 1]  # newest first
        return max(0.0, self.duration - (self.now - blocking))

    def count(self, user) -> float | None:
        """Count one upload of `user` when it is under the limit (None); over it, count nothing
        and return the seconds to wait."""
        if self.rate is None:
            return None
        self.key = self.cache_format % {"scope": self.scope, "ident": _user_ident(user)}
        self.now = self.timer()
        self.history = [moment for moment in self.cache.get(self.key, []) if moment > self.now - self.duration]
        if len(self.history) >= self.num_requests:
            return self.wait()
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
        return None

    def uncount(self, user) -> None:
        """Take back the last upload `count` counted (its file could not be stored)."""
        key = self.cache_format % {"scope": self.scope, "ident": _user_ident(user)}
        history = self.cache.get(key, [])
        if history:
            self.cache.set(key, history[1:], self.duration)


    def usage(self, user) -> tuple[int, float | None]:
        """How many uploads of `user` are in the window now, and the seconds until one more is
        allowed when they are at the limit (else None). Counts nothing."""
        if self.rate is None:
            return 0, None
        self.key = self.cache_format % {"scope": self.scope, "ident": _user_ident(user)}
        self.now = self.timer()
        self.history = [moment for moment in self.cache.get(self.key, []) if moment > self.now - self.duration]
        return len(self.history), (self.wait() if len(self.history) >= self.num_requests else None)


def _user_ident(user) -> str:
    joined = int(user.date_joined.timestamp() * 1_000_000)
    return f"{user.pk}-{joined}"


def upload_count(*, user) -> float | None:
    """Count one upload of `user`: None when it is within the limit, else the seconds to wait
    (nothing counted). Call it with the user's row locked, as the services do."""
    return UploadRateThrottle().count(user)


def upload_uncount(*, user) -> None:
    """Take back the upload just counted for `user` (with the row still locked)."""
    UploadRateThrottle().uncount(user)


def rate_limit_message(*, wait: float) -> str:
    """The limit and the time to wait as a person would say them ("Try again in 21 minutes",
    not "Expected available in 1209 seconds")."""
    throttle = UploadRateThrottle()  # reads the rate from the settings as it starts
    allowed, period_s = throttle.num_requests, throttle.duration
    wait_s = max(1, math.ceil(wait))
    later = f"{wait_s} second{'s' if wait_s != 1 else ''}" if wait_s < 120 else f"{math.ceil(wait_s / 60)} minutes"
    files = f"{allowed} file{'s' if allowed != 1 else ''} {PERIODS.get(period_s, f'in {period_s} seconds')}"
    return f"You have reached the upload limit of {files}. Try again in {later}."


def upload_rate_usage(*, user) -> dict:
    """The upload rate limit as it stands for `user`: uploads counted in the window, the limit
    and its period (None without a limit), and the seconds until one more is allowed (None
    while some are left)."""
    throttle = UploadRateThrottle()
    used, wait = throttle.usage(user)
    limited = throttle.rate is not None
    return {
        "used": used,
        "limit": throttle.num_requests if limited else None,
        "period_seconds": throttle.duration if limited else None,
        "retry_after": math.ceil(wait) if wait is not None else None,
    }
