"""Training data: the items a training run draws (real crops, the data's fakes, self-blended
fakes), their augmentation, the dataset that reads and augments them, and the measurement of
how pre-cut crops are framed around the detector's Haar box.

Augmentation is applied identically to both classes, so sharpness and compression carry no
label. Training crops must look like the crops the detector cuts at inference: for pre-cut crops
`measure_crop_framing` measures their framing against the Haar box, and the checkpoint stores it
so the detector cuts the same way (ml/faces.py keeps the inference-time face search).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .blend import TIGHT_CROP_BOX, self_blend
from .datasets import IMAGE_SUFFIXES, Sample, folder_samples
from .faces import find_faces, read_crop, resize_square
from .model import ModelSpec, preprocess

FAKES_MODES = ("real", "sbi", "both")
FRAMING_ON = ("all", "real")  # the crops of a batch the framing term applies to: every one, or the real faces


def as_shared_copy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The face as a copy of a video shared around shows it: scaled down 1.5 to 3.5 times and
    compressed as an H.264 frame (x264, CRF 28-40), at that smaller size. A video re-encoded
    like this drifts towards fake (`make degradation-check`, ml/degradation.py)."""
    import av

    height, width = image.shape[:2]
    factor = rng.uniform(1.5, 3.5)
    small = (max(16, round(width / factor)) // 2 * 2, max(16, round(height / factor)) // 2 * 2)
    image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = small[0], small[1], "yuv420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"crf": str(int(rng.integers(28, 41))), "preset": "veryfast", "tune": "zerolatency"}
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
    frame.pts = 0
    packets = [*encoder.encode(frame), *encoder.encode(None)]
    decoder = av.CodecContext.create("h264", "r")
    decoded = [f for packet in packets for f in decoder.decode(packet)] + list(decoder.decode(None))
    return decoded[0].to_ndarray(format="bgr24")


def augment(image: np.ndarray, rng: np.random.Generator, size: int, *, shared_copies: float = 0.0) -> np.ndarray:
    """Random framing, flip, colour, blur and JPEG re-compression, then resize to `size`; with
    probability `shared_copies`, the crop as a shared copy of a video shows it instead of
    the blur and JPEG (`as_shared_copy`).

    Applied identically to both classes, so sharpness and compression carry no label.
    """
    height, width = image.shape[:2]
    scale = rng.uniform(0.85, 1.0)  # a tighter or looser framing around the face
    ch, cw = int(height * scale), int(width * scale)
    y0 = int(rng.integers(0, height - ch + 1))
    x0 = int(rng.integers(0, width - cw + 1))
    image = image[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = np.ascontiguousarray(image)
    if rng.random() < 0.8:
        alpha = rng.uniform(0.8, 1.2)  # contrast
        beta = rng.uniform(-20, 20)  # brightness
        image = cv2.convertScaleAbs(image, alpha=alpha, beta=beta)
    if rng.random() < 0.3:
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
        hsv[..., 1] *= rng.uniform(0.7, 1.3)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
        image = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    if shared_copies and rng.random() < shared_copies:
        return resize_square(as_shared_copy(image, rng), size)
    if rng.random() < 0.2:
        sigma = rng.uniform(0.3, 1.5)
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if rng.random() < 0.4:
        quality = int(rng.integers(40, 96))
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return resize_square(image, size)


@dataclass(frozen=True)
class Item:
    path: Path
    label: int
    blend: bool = False  # make a self-blended fake from this real face
    source: str = ""


class CropDataset(Dataset):
    """Face crops with labels; training items are augmented, self-blended ones made on the fly."""

    def __init__(
        self, items: list[Item], *, size: int, train: bool, seed: int, face_box=TIGHT_CROP_BOX, landmarks=None,
        shared_copies: float = 0.0,
    ):
        self.items = items
        self.shared_copies = shared_copies
        self.landmarks = landmarks or {}
        self.face_box = face_box
        self.size = size
        self.train = train
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        image = read_crop(item.path)
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            if item.blend:
                points = self.landmarks.get(str(item.path))
                image, _ = self_blend(image, rng, face_box=self.face_box, landmarks=points)
            image = augment(image, rng, self.size, shared_copies=self.shared_copies)
        else:
            image = resize_square(image, self.size)
        return image, item.label


def collate(batch, spec: ModelSpec):
    images, labels = zip(*batch)
    return preprocess(list(images), spec), torch.tensor(labels, dtype=torch.long)


def real_face_samples(root: str | Path) -> list[Sample]:
    """Real faces for self-blending: the reals of a folder dataset, or every image in a folder."""
    root = Path(root)
    if (root / "index.csv").is_file() or (root / "real").is_dir():
        return [s for s in folder_samples(root) if s.label == 0]
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise ValueError(f"{root}: no images")
    return [Sample(path, 0, path.stem) for path in images]


def build_items(
    samples: list[Sample], extra_real: list[Sample], fakes: str, *, sources: dict | None = None, blend_only=None
) -> list[Item]:
    """Training items for a fakes mode. Self-blended fakes: one per real face (only those in
    `blend_only` when given: the faces that have landmarks)."""
    sources = sources or {}
    reals = [Item(s.path, 0, source=sources.get(s.path, "")) for s in samples if s.label == 0]
    data_fakes = [Item(s.path, 1, source=sources.get(s.path, "")) for s in samples if s.label == 1]
    extra = [Item(s.path, 0) for s in extra_real]
    if fakes == "real":
        return reals + data_fakes
    blended = [
        Item(item.path, 1, blend=True, source=item.source)
        for item in reals + extra
        if blend_only is None or str(item.path) in blend_only
    ]
    if fakes == "sbi":
        return reals + extra + blended
    return reals + extra + data_fakes + blended


def measure_crop_framing(crops: list[np.ndarray]) -> tuple[float, float, int]:
    """How pre-cut face crops are framed relative to the Haar box this package finds.

    Each crop is padded (edge pixels repeated) so the cascade can see the whole face, the face
    is searched for, and the crop's side is compared with the box. Returns the median
    `(margin, shift, faces_found)`: the crop is `margin` times the Haar box, centred `shift`
    box heights below the box's centre. A detector given these values cuts crops from full
    frames that look like the training crops.
    """
    ratios, shifts = [], []
    for crop in crops:
        height, width = crop.shape[:2]
        pad = max(height, width) // 2
        padded = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        boxes = find_faces(padded, max_faces=1)
        if not boxes:
            continue
        box = boxes[0]
        ratios.append(min(height, width) / box.w)
        crop_cy = pad + height / 2
        shifts.append((crop_cy - (box.y + box.h / 2)) / box.h)
    if not ratios:
        raise ValueError("no face found in any of the crops")
    return float(np.median(ratios)), float(np.median(shifts)), len(ratios)
