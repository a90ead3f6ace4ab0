"""Settings are read once per process, so each case starts a fresh `manage.py`."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SERVER_ENV and k not in env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


SERVER_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "QUEUE_SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "detector.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://detector.example.org",
    "BEHIND_HTTPS_PROXY": "true",
    "SECURE_COOKIES": "true",
    "SECURE_SSL_REDIRECT": "true",
    "HSTS_SECONDS": "31536000",
    "HSTS_INCLUDE_SUBDOMAINS": "true",
    "HSTS_PRELOAD": "true",
}


def test_the_deploy_check_is_clean_with_every_server_variable_set():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **SERVER_ENV)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_check_warns_without_hsts_and_the_https_redirect():
    env = {**SERVER_ENV, "HSTS_SECONDS": "0", "SECURE_SSL_REDIRECT": "false"}
    result = manage("check", "--deploy", **env)
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_a_server_sends_its_cookies_over_https_only_unless_told_it_is_reached_over_plain_http():
    from tests.deepfake_site.child import A_SERVER, setting_in_child

    cookies = "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE"
    assert setting_in_child(cookies, **A_SERVER) == "True True"
    assert setting_in_child(cookies, **A_SERVER, SECURE_COOKIES="false") == "False False"
    assert setting_in_child(cookies, DEBUG="true") == "False False"  # make run, on http://127.0.0.1


def test_the_redis_broker_is_refused_with_debug_on():
    result = manage("check", DEBUG="true", Q_BROKER="redis")
    assert result.returncode != 0
    assert "Q_BROKER=redis needs DEBUG=false" in result.stderr


@pytest.mark.parametrize(
    "change,message",
    [
        ({"QUEUE_SECRET_KEY": ""}, "Set QUEUE_SECRET_KEY when DEBUG is false"),
        ({"QUEUE_SECRET_KEY": "same"}, "QUEUE_SECRET_KEY must differ from SECRET_KEY"),
    ],
)
def test_a_server_needs_its_own_queue_key(change, message):
    env = {**SERVER_ENV, **change}
    if env["QUEUE_SECRET_KEY"] == "same":
        env["QUEUE_SECRET_KEY"] = env["SECRET_KEY"]
    if not env["QUEUE_SECRET_KEY"]:
        del env["QUEUE_SECRET_KEY"]
    result = manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    "change,message",
    [
        ({"SECRET_KEY": "short-key-" * 3}, "SECRET_KEY is too weak (30 characters, 9 different)"),
        ({"QUEUE_SECRET_KEY": "x" * 60}, "QUEUE_SECRET_KEY is too weak (60 characters, 1 different)"),
    ],
)
def test_a_server_refuses_keys_anyone_could_guess(change, message):
    result = manage("check", **{**SERVER_ENV, **change})
    assert result.returncode != 0
    assert message in result.stderr


def test_a_postgres_url_keeps_its_query_options_such_as_sslmode():
    from deepfake_site.settings import database_from_url

    database = database_from_url("postgres://app:p%40ss@db.example.org:6432/detector?sslmode=require")
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["NAME"], database["USER"], database["PASSWORD"]) == ("detector", "app", "p@ss")
    assert (database["HOST"], database["PORT"]) == ("db.example.org", 6432)
    assert database["OPTIONS"] == {"sslmode": "require"}


def test_an_in_memory_sqlite_url_stays_in_memory():
    from deepfake_site.settings import database_from_url

    assert database_from_url("sqlite:///:memory:")["NAME"] == ":memory:"


def test_a_relative_sqlite_path_is_relative_to_the_project_and_an_absolute_one_is_kept():
    from deepfake_site.settings import BASE_DIR, database_from_url

    assert database_from_url("sqlite:///var/site.sqlite3")["NAME"] == BASE_DIR / "var/site.sqlite3"
    assert str(database_from_url("sqlite:////srv/site.sqlite3")["NAME"]) == "/srv/site.sqlite3"


@pytest.mark.parametrize("url", ["mysql://db/detector", "sqlite:///"])
def test_a_database_url_the_site_cannot_use_is_refused(url):
    from django.core.exceptions import ImproperlyConfigured

    from deepfake_site.settings import database_from_url

    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        database_from_url(url)


def test_log_level_reaches_djangos_own_loggers():
    result = manage(
        "shell", "--verbosity", "0", "-c",
        "import logging; print(logging.getLogger('django').getEffectiveLevel(),"
        " logging.getLogger('django.request').getEffectiveLevel(), logging.getLogger().level)",
        **{**SERVER_ENV, "LOG_LEVEL": "warning"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["30", "30", "30"]


def test_an_unknown_log_level_is_refused():
    result = manage("check", **{**SERVER_ENV, "LOG_LEVEL": "loud"})
    assert result.returncode != 0
    assert "LOG_LEVEL must be" in result.stderr


def test_every_web_process_of_a_machine_counts_log_in_failures_in_one_cache(tmp_path):
    """Without CACHE_URL, what one process stores (a throttle or log-in failure count) is seen
    by another: gunicorn runs several, and each must not count on its own."""
    folder = str(tmp_path / "cache")
    stored = manage("shell", "-c", "from django.core.cache import cache; cache.set('failures', 4, 60)", **SERVER_ENV, CACHE_DIR=folder)
    assert stored.returncode == 0, stored.stderr
    read = manage("shell", "-c", "from django.core.cache import cache; print(cache.get('failures'))", **SERVER_ENV, CACHE_DIR=folder)
    assert read.returncode == 0, read.stderr
    assert read.stdout.split()[-1] == "4"


def test_a_detection_runtime_the_worker_does_not_know_is_refused_at_start_up():
    result = manage("check", DETECTION_RUNTIME="gpu")
    assert result.returncode != 0
    assert "DETECTION_RUNTIME must be auto, onnx or torch, not 'gpu'" in result.stderr


# Run in a fresh Python: after django.setup(), each dotted path of this project that the settings
# (or the URLconf's error handlers) name is imported first, in a forked child of its own, as
# `manage.py check` or a worker may do in any order (Django's checks run from a set).
IMPORT_EACH_FIRST = r"""
import os, re, sys
import django
django.setup()
from django.conf import settings
from django.utils.module_loading import import_string
import importlib

OURS = re.compile(r"^(deepfake_site|detection|accounts)(\.\w+)+$")
found = set()
def walk(value):
    if isinstance(value, str):
        if OURS.match(value):
            found.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            walk(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            walk(v)
for name in dir(settings):
    if name.isupper():
        walk(getattr(settings, name))
urls = open(os.path.join("deepfake_site", "urls.py")).read()
found.update(re.findall(r'^handler\d+ = "([\w.]+)"', urls, re.M))
assert "deepfake_site.errors.csrf_failure" in found and "deepfake_site.errors.server_error" in found, found
for path in sorted(found):
    pid = os.fork()
    if pid == 0:
        try:
            try:
                import_string(path)
            except ImportError:
                importlib.import_module(path)  # a module named by itself (ROOT_URLCONF)
        except Exception as error:
            print(f"{path}: {error!r}", flush=True)
            os._exit(1)
        os._exit(0)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if status != 0:
        print(f"{path}: the child ended with {status}", flush=True)
print(len(found), "paths", flush=True)
"""


def test_every_module_the_settings_name_imports_when_it_is_the_first_one_imported():
    from tests.deepfake_site.child import DEPLOY_VALUES

    # the local defaults: this run's deploy values (the PostgreSQL + Redis run's Q_BROKER=redis,
    # which the default DEBUG refuses) are left out, as tests/deepfake_site/child.py does
    clean = {k: v for k, v in os.environ.items() if k not in DEPLOY_VALUES and not k.startswith("EMAIL_")}
    env = {**clean, "DJANGO_SETTINGS_MODULE": "deepfake_site.settings"}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_FIRST], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].endswith("paths") and lines[:-1] == [], result.stdout
