"""Media and models the ml tests make for themselves (nothing from ../shared)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from ml.model import build_model, save_checkpoint


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real, public-domain photo with one frontal face, as BGR."""
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint with random weights: enough to test the plumbing, never the verdicts."""
    path = tmp_path_factory.mktemp("model") / "untrained.pt"
    return save_checkpoint(build_model(arch="resnet18"), path, name="untrained-test-model")


@pytest.fixture(scope="session")
def detector(untrained_checkpoint):
    from ml import load_detector

    return load_detector(untrained_checkpoint, device="cpu")
