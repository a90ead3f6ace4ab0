"""A tiny data set and a tiny training configuration, for the training and evaluation tests.
Training is the slow part of the ml tests: the session trains once (`tiny_run` in conftest.py)
and the tests read that run."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ml.faces import crop_face, find_faces
from ml.train import TrainConfig


def write_tiny_dataset(root: Path, astronaut: np.ndarray) -> Path:
    """12 "people" (groups): a real crop and a fake one each. Fakes have a pasted patch
    of the wrong colour over the face, which a tiny model can learn in two epochs."""
    box = find_faces(astronaut)[0]
    rng = np.random.default_rng(0)
    rows = ["file,label,group"]
    for person in range(12):
        shifted = np.roll(astronaut, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
        real = crop_face(shifted, box, size=96, margin=1.0)
        real = cv2.convertScaleAbs(real, alpha=rng.uniform(0.9, 1.1), beta=rng.uniform(-10, 10))
        fake = real.copy()
        fake[30:66, 25:71] = (0, 160, 0)
        fake = cv2.GaussianBlur(fake, (3, 3), 0)
        for label, image in (("real", real), ("fake", fake)):
            (root / label).mkdir(exist_ok=True)
            cv2.imwrite(str(root / label / f"p{person}.png"), image)
            rows.append(f"{label}/p{person}.png,{label},person{person}")
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    return root


def tiny_config(data, out, **changes) -> TrainConfig:
    base = dict(
        data=str(data), out=str(out), arch="resnet18", pretrained=False, fakes="real", cropped=True,
        epochs=2, batch_size=8, lr=1e-3, input_size=64, val_fraction=0.34, seed=3, version="test",
    )
    return TrainConfig(**{**base, **changes})


def write_made_from_dataset(root: Path, tiny: Path) -> Path:
    """The tiny data set again, indexed as faceswap_inswapper is: `group` is each file's own
    stem and `made_from` the person both of a person's files come from."""
    rows = ["file,label,group,made_from"]
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for path in sorted((tiny / label).glob("*.png")):
            (root / label / path.name).write_bytes(path.read_bytes())
            rows.append(f"{label}/{path.name},{label},{label}_{path.stem},person_{path.stem}")
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    return root


def interrupt_validation(monkeypatch, *, at: int, action=None) -> None:
    """Stop a run as Ctrl-C would, at its `at`-th validation (the end of that epoch's training,
    before the epoch is saved): `action` is called there, and by default raises KeyboardInterrupt."""
    import ml.train

    real = ml.train.predict_scores
    calls = []

    def predict_scores(*args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            if action is None:
                raise KeyboardInterrupt
            action()
        return real(*args, **kwargs)

    monkeypatch.setattr(ml.train, "predict_scores", predict_scores)
