"""Fixtures shared by the Django tests (tests/detection, tests/accounts)."""

from __future__ import annotations

from pathlib import Path

import pytest


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
