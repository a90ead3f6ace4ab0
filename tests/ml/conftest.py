"""The ml tests' detector (the astronaut photo and the checkpoints are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def detector(untrained_checkpoint):
    from ml import load_detector

    return load_detector(untrained_checkpoint, device="cpu", runtime="torch")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, astronaut) -> Path:
    from .training import write_tiny_dataset

    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"), astronaut)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_dataset) -> Path:
    """The one training run of the session: two epochs on the tiny data set, calibrated.
    Its folder; the kept checkpoint is `tiny_run / "best.pt"`. Read it, never write into it."""
    from ml.train import train

    from .training import tiny_config

    out = tmp_path_factory.mktemp("tiny-run") / "run"
    train(tiny_config(tiny_dataset, out))
    return out
