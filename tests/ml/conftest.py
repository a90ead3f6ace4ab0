"""The ml tests' detector (the astronaut photo and the checkpoints are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def detector(untrained_checkpoint):
    from ml import load_detector

    return load_detector(untrained_checkpoint, device="cpu")
