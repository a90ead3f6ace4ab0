"""Fixtures shared by the Django tests (tests/detection, tests/accounts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

# The `browser` fixture (headless Chromium through Selenium) for every browser test.
pytest_plugins = ["tests.browser"]


@pytest.fixture(autouse=True, scope="session")
def _static_files_without_a_manifest():
    """With DEBUG=false (the PostgreSQL + Redis run) the site expects `collectstatic`'s
    manifest; the tests render pages without running it."""
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain}):
        yield


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, the test database in a file rather than in memory, so that real worker
    processes (tests/detection/test_workers.py) share it with the tests."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")


@pytest.fixture(scope="session")
def detector_checkpoint(tmp_path_factory) -> Path:
    """The installed default model when there is one, else a checkpoint with untrained
    weights: enough to drive the whole pipeline, never to judge its verdicts."""
    from ml import DEFAULT_CHECKPOINT
    from ml.model import build_model, save_checkpoint

    if DEFAULT_CHECKPOINT.is_file():
        return DEFAULT_CHECKPOINT
    path = tmp_path_factory.mktemp("model") / "untrained.pt"
    return save_checkpoint(
        build_model(arch="resnet18", pretrained=False),
        path,
        threshold=0.5,
        name="untrained-test-model",
        training={"note": "random weights, for the Django tests"},
    )
