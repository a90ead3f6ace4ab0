"""Settings are read once per process: a case that needs other environment variables reads them
in a fresh Python."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a deployment sets and these cases set themselves: the rest of this run's environment
# (the PostgreSQL + Redis run's Q_BROKER=redis, say, which DEBUG=true refuses) is left out too.
DEPLOY_VALUES = ("DEBUG", "SECRET_KEY", "QUEUE_SECRET_KEY", "Q_BROKER", "REDIS_URL", "CACHE_URL", "DATABASE_URL")
A_SERVER = {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "QUEUE_SECRET_KEY": secrets.token_urlsafe(50)}


def setting_in_child(expression: str, **env: str) -> str:
    """`expression` over `s`, the settings module, printed by a fresh Python whose environment is
    this one less the deploy values and any EMAIL_ variable, plus `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in DEPLOY_VALUES and not k.startswith("EMAIL_")}
    read = f"from deepfake_site import settings as s; print({expression})"
    out = subprocess.run(
        [sys.executable, "-c", read], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=True, timeout=120
    )
    return out.stdout.strip()
