"""The upload rate limit: one count per user, whether the files come through the API (and the
upload page's script, which sends through it) or through the page's plain form. Only files
that were stored count (`UploadRateThrottle.record`): a refused upload (empty, unsupported, a
bad `?wait`) uses up nothing. Two uploads checked at the same moment may both pass the check
before either is recorded, so a limit can be passed by the uploads in flight at once.

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
        joined = int(user.date_joined.timestamp() * 1_000_000)
        return self.cache_format % {"scope": self.scope, "ident": f"{user.pk}-{joined}"}

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

    def record(self, request) -> None:
        """Count one stored upload of this request's user."""
        key = self.get_cache_key(request, None)
        if key is None:
            return
        history = self.cache.get(key, [])
        now = self.timer()
        history = [moment for moment in history if moment > now - self.duration]
        history.insert(0, now)
        self.cache.set(key, history, self.duration)


def rate_limit_message(*, wait: float) -> str:
    """The limit and the time to wait as a person would say them ("Try again in 21 minutes",
    not "Expected available in 1209 seconds")."""
    throttle = UploadRateThrottle()  # reads the rate from the settings as it starts
    allowed, period_s = throttle.num_requests, throttle.duration
    wait_s = max(1, math.ceil(wait))
    later = f"{wait_s} second{'s' if wait_s != 1 else ''}" if wait_s < 120 else f"{math.ceil(wait_s / 60)} minutes"
    files = f"{allowed} file{'s' if allowed != 1 else ''} {PERIODS.get(period_s, f'in {period_s} seconds')}"
    return f"You have reached the upload limit of {files}. Try again in {later}."
