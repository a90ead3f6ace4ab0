"""E-mail settings come from the environment: printed on the console unless EMAIL_HOST is set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .child import A_SERVER, setting_in_child

ROOT = Path(__file__).resolve().parents[2]
READ = (
    "import json; from deepfake_site import settings as s; "
    "print(json.dumps([s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, "
    "s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS, s.DEFAULT_FROM_EMAIL]))"
)


def email_settings(**environment: str) -> list:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EMAIL_")}
    env.pop("DEFAULT_FROM_EMAIL", None)
    env.update(environment)
    output = subprocess.run(
        [sys.executable, "-c", READ], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output)


def test_without_a_mail_server_messages_are_printed_on_the_console():
    backend, host, *_ = email_settings()
    assert backend == "django.core.mail.backends.console.EmailBackend"
    assert host == ""


def test_a_mail_server_from_the_environment_is_used_over_smtp():
    assert email_settings(
        EMAIL_HOST="smtp.example.org",
        EMAIL_PORT="2525",
        EMAIL_HOST_USER="mailer",
        EMAIL_HOST_PASSWORD="secret",
        EMAIL_USE_TLS="false",
        DEFAULT_FROM_EMAIL="noreply@example.org",
    ) == [
        "django.core.mail.backends.smtp.EmailBackend",
        "smtp.example.org",
        2525,
        "mailer",
        "secret",
        False,
        "noreply@example.org",
    ]


def test_a_server_that_cannot_send_mail_offers_no_reset_link_to_print_in_its_logs():
    offered = "s.PASSWORD_RESET_BY_EMAIL"
    assert setting_in_child(offered, **A_SERVER) == "False"
    assert setting_in_child(offered, **A_SERVER, EMAIL_HOST="smtp.example.org") == "True"
    assert setting_in_child(offered, DEBUG="true") == "True"  # locally the link is printed on the console
