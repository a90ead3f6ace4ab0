"""The training sources this project knows, read from the shared data folder, and their crops
cut the way the detector cuts faces.

Each source is a set of face images with labels and groups (the unit a split may never cut:
a source video, the photo a swap was made from, a person). Sources other than DFDC come as
photos or differently framed crops, so `prepare_source` finds each face with the same Haar
search the detector uses and re-cuts it with one framing (the DFDC crops' own, measured as
0.90 x the Haar box, 0.083 box heights down), so that no source can be told apart by framing.
It also stores 468 face-mesh landmarks per real face (MediaPipe), for self-blended fakes with
face-shaped masks (ml/blend.py).

| name | folder (under the data root) | labels | group |
|---|---|---|---|
| dfdc | dfdc_faces | real + fake | source_video |
| inswapper | faceswap_inswapper | real + fake (the 29 blurred-after-swap fakes left out) | made_from |
| celebdf | real_faces/celebdf | real | person (idN) |
| utkface | real_faces/utkface | real | file |
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .datasets import LABEL_NAMES, Sample, folder_samples, parse_label
from .faces import crop_face, find_faces, read_crop

log = logging.getLogger(__name__)

SOURCE_NAMES = ("dfdc", "inswapper", "celebdf", "utkface")
FRAMING = (0.90, 0.083)  # margin, shift: the DFDC crops' framing around the Haar box
CROP_SIZE = 224
INDEX = "index.csv"
LANDMARKS = "landmarks.npz"


@dataclass(frozen=True)
class SourceSample:
    source: str
    sample: Sample


def _dfdc(root: Path) -> list[Sample]:
    return folder_samples(root / "dfdc_faces")


def _inswapper(root: Path) -> list[Sample]:
    folder = root / "faceswap_inswapper"
    samples = []
    with (folder / "index.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("note") == "blurred_after_swap":
                continue  # blurred over the whole image after swapping: teaches blur = fake
            samples.append(Sample(folder / row["file"], parse_label(row["label"]), f"inswapper:{row['made_from']}"))
    return samples


def _celebdf(root: Path) -> list[Sample]:
    files = sorted((root / "real_faces" / "celebdf").glob("*.png"))
    return [Sample(f, 0, "celebdf:" + f.name.split("_")[0]) for f in files]


def _utkface(root: Path) -> list[Sample]:
    files = sorted((root / "real_faces" / "utkface").glob("*.jpg"))
    return [Sample(f, 0, "utkface:" + f.stem) for f in files]


_READERS = {"dfdc": _dfdc, "inswapper": _inswapper, "celebdf": _celebdf, "utkface": _utkface}


def recut(image: np.ndarray, *, size: int = CROP_SIZE) -> np.ndarray | None:
    """The largest Haar face of a photo or crop, cut with FRAMING; None when Haar finds none."""
    pad = max(image.shape[:2]) // 4
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    boxes = find_faces(padded, max_faces=1)
    if not boxes:
        return None
    margin, shift = FRAMING
    return crop_face(padded, boxes[0], size=size, margin=margin, shift=shift)


class Landmarker:
    """468 face-mesh landmarks of a face crop, as (x, y) fractions of the crop (MediaPipe)."""

    def __init__(self):
        from mediapipe.python.solutions.face_mesh import FaceMesh

        self._mesh = FaceMesh(static_image_mode=True, max_num_faces=1, min_detection_confidence=0.3)

    def __call__(self, crop: np.ndarray) -> np.ndarray | None:
        found = self._mesh.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        if not found.multi_face_landmarks:
            return None
        points = found.multi_face_landmarks[0].landmark
        return np.array([(p.x, p.y) for p in points], dtype=np.float32)


MAX_LANDMARKS = 2000  # real faces per source given landmarks (MediaPipe costs ~30 ms a face here)


def prepare_source(
    name: str, data_root: str | Path, out_root: str | Path, *, landmarks: bool = True, max_landmarks: int = MAX_LANDMARKS
) -> Path:
    """Cache a source's crops (re-cut unless it is DFDC) and the landmarks of up to
    `max_landmarks` of its real faces (a seeded choice) under out_root/name; returns the folder.
    Done once: an existing index is reused."""
    from tqdm import tqdm  # the [train] extra: the site's install has none

    if name not in _READERS:
        raise ValueError(f"unknown source {name!r}; choose from {', '.join(SOURCE_NAMES)}")
    out = Path(out_root) / name
    if (out / INDEX).is_file() and (not landmarks or (out / LANDMARKS).is_file()):
        return out
    out.mkdir(parents=True, exist_ok=True)
    samples = _READERS[name](Path(data_root))
    rows, keys, points, skipped = [], [], [], 0
    mesh = Landmarker() if landmarks else None
    reals = [i for i, s in enumerate(samples) if s.label == 0]
    chosen = set(np.random.default_rng(0).permutation(reals)[:max_landmarks].tolist())
    for i, sample in enumerate(tqdm(samples, desc=f"prepare {name}", unit="file")):
        if name == "dfdc":
            path, crop = sample.path, None
        else:
            crop = recut(read_crop(sample.path))
            if crop is None:
                skipped += 1
                continue
            path = out / LABEL_NAMES[sample.label] / f"{sample.path.stem}.jpg"
            path.parent.mkdir(exist_ok=True)
            cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
        rows.append((str(path.resolve()), LABEL_NAMES[sample.label], sample.group))
        if mesh is not None and i in chosen:
            found = mesh(read_crop(path) if crop is None else crop)
            if found is not None:
                keys.append(str(path.resolve()))
                points.append(found)
    if mesh is not None:
        np.savez_compressed(out / LANDMARKS, keys=np.array(keys), points=np.stack(points).astype(np.float16))
    with (out / INDEX).open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "group"])
        writer.writerows(rows)
    log.info("%s: %d crops, %d without a Haar face, %d landmark sets", name, len(rows), skipped, len(keys))
    return out


def source_samples(names: tuple[str, ...], data_root: str | Path, out_root: str | Path) -> list[SourceSample]:
    """Every prepared sample of the named sources (prepared on first use)."""
    found = []
    for name in names:
        folder = prepare_source(name, data_root, out_root)
        found.extend(SourceSample(name, s) for s in folder_samples(folder))
    return found


def load_landmarks(names: tuple[str, ...], out_root: str | Path) -> dict[str, np.ndarray]:
    """Landmarks (468 x 2 fractions of the crop) by absolute crop path, for the named sources."""
    table = {}
    for name in names:
        path = Path(out_root) / name / LANDMARKS
        if path.is_file():
            data = np.load(path)
            table.update({str(k): p.astype(np.float32) for k, p in zip(data["keys"], data["points"])})
    return table
