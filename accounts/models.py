"""API tokens. The database keeps each token's SHA-256 digest, never the token itself, so a copy
of the database (a backup, a dump, a leaked replica) holds no token anyone can use. A key is
160 random bits, so one unsalted fast hash is enough: there is nothing to guess, only to look up.
The key is shown once, when it is made; a lost key is revoked and replaced, never recovered."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

KEY_BYTES = 20  # 40 hex characters, the same shape as the keys DRF's authtoken made before
PREFIX_LENGTH = 6  # the key's first characters, kept so the owner can tell their tokens apart


def new_key() -> str:
    return secrets.token_hex(KEY_BYTES)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    PROFILE = "profile"
    LOG_IN = "log-in"
    MADE_BY = [(PROFILE, "the profile page"), (LOG_IN, "a log-in through the API")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the owner uses it for.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=PREFIX_LENGTH, editable=False)
    made_by = models.CharField(max_length=8, choices=MADE_BY, default=PROFILE, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
