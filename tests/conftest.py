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
def detector_checkpoint(tmp_path_factory) -> Path:
    """The installed default model when there is one, else a checkpoint with untrained
    weights: enough to drive the whole pipeline, never to judge its verdicts."""
    from ml import DEFAULT_CHECKPOINT
    from ml.model import build_model, save_checkpoint

    if DEFAULT_CHECKPOINT.is_file():
        return DEFAULT_CHECKPOINT
    path = tmp_path_factory.mktemp("model") / "untrained.pt"
    return save_checkpoint(
        build_model(arch="resnet18"),
        path,
        threshold=0.5,
        name="untrained-test-model",
        training={"note": "random weights, for the Django tests"},
    )
