"""Fixtures shared by every test: the astronaut photo and the model checkpoints (tests/media.py
makes them), and the Django settings the tests need."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings

from tests import media

# The `browser` fixture (headless Chromium through Selenium) for every browser test.
pytest_plugins = ["tests.browser"]


@pytest.fixture(autouse=True, scope="session")
def _static_files_without_a_manifest():
    """With DEBUG=false (the PostgreSQL + Redis run) the site expects `collectstatic`'s
    manifest; the tests render pages without running it."""
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain}):
        yield


@pytest.fixture(autouse=True, scope="session")
def _password_reset_through_the_test_outbox():
    """Django's tests keep mail in an outbox in memory, so reset by e-mail is offered even in a
    run with DEBUG off and no EMAIL_HOST (the PostgreSQL + Redis run); the tests of a site
    without mail turn it off themselves."""
    with override_settings(PASSWORD_RESET_BY_EMAIL=True):
        yield


@pytest.fixture(autouse=True, scope="session")
def _a_cache_of_this_session(tmp_path_factory):
    """The file cache the site uses by default, in a folder of this test session's own, so that
    counters left by an earlier run (or a parallel one) never reach these tests."""
    if settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache"):
        folder = tmp_path_factory.mktemp("cache")
        with override_settings(CACHES={"default": {**settings.CACHES["default"], "LOCATION": str(folder)}}):
            yield
    else:
        yield


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, the test database in a file rather than in memory, so that real worker
    processes (tests/detection/test_workers.py) share it with the tests."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")


@pytest.fixture(scope="session")
def detector_checkpoint(untrained_checkpoint) -> Path:
    """The installed default model when there is one, else the untrained checkpoint."""
    from ml import DEFAULT_CHECKPOINT

    return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else untrained_checkpoint


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The astronaut photo, 512 px, BGR."""
    return media.astronaut_bgr()


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint with random weights: enough to test the plumbing, never the verdicts."""
    return media.untrained_checkpoint(tmp_path_factory.mktemp("model") / "untrained.pt")
