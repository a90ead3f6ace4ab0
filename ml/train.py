"""Fine-tuning the real/fake classifier on face crops: the loop (the data it draws, its
augmentation and dataset are in ml/training_data.py).

The recipe: transfer learning from ImageNet weights (or from scratch), augmentation that keeps
real and fake crops equally sharp and equally compressed (so the model cannot win by learning
blur or JPEG quality), class-balanced loss, AdamW with a cosine schedule, bf16 autocast on CPUs
that compute bf16 in hardware (about 3x faster than fp32 there; elsewhere fp32) and AMP on CUDA,
validation every epoch, the best checkpoint
kept by validation ROC AUC, resumable, seeded, one JSON line per epoch in `train_log.jsonl`.

Fakes come from the data ("real"), from self-blended images made of the real faces ("sbi",
see blend.py), or both mixed ("both").

Optionally (`framing_consistency`, `--framing-consistency`), each batch is scored a second time
moved by a few % (`reframed`), and the squared difference of the two scores is added to the
loss: a face's score should not depend on where exactly its Haar box fell (`make
framing-check` measures how much it does). `framing_on="real"` asks it of the real faces only,
leaving the fakes' scores free to depend on where a blend's edge lies.

Training crops must look like the crops the detector cuts at inference. For pre-cut crops
(`cropped=True`), the framing of the data is measured against the Haar box
(`training_data.measure_crop_framing`) and stored in the checkpoint, so the detector cuts the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .blend import TIGHT_CROP_BOX, face_box_in_crop
from .calibration import calibration_report
from .datasets import folder_samples, group_split, prepare_crops
from .faces import DEFAULT_MARGIN, read_crop
from .metrics import binary_metrics
from .model import (
    ModelSpec,
    Weights,
    build_model,
    fake_probability,
    load_checkpoint,
    save_checkpoint,
    scoring_precision,
    select_device,
)
from .sources import FRAMING, load_landmarks, source_samples
from .training_data import FAKES_MODES, FRAMING_ON, CropDataset, Item, build_items, collate, measure_crop_framing, real_face_samples

log = logging.getLogger(__name__)

LOG_NAME = "train_log.jsonl"
STATE_NAME = "last_state.pt"
BEST_NAME = "best.pt"


@dataclass(frozen=True)
class TrainConfig:
    data: str
    out: str
    arch: str = "mobilenet_v2"
    pretrained: bool | str = True
    fakes: str = "both"
    extra_real: tuple[str, ...] = ()
    cropped: bool = True
    epochs: int = 4
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 1e-4
    input_size: int = 224
    val_fraction: float = 0.1
    max_train: int = 0  # 0: use every training sample; else a seeded subset of this size
    max_extra: int = 0  # the same for the extra real faces
    seed: int = 0
    threshold: float = 0.5
    workers: int = 0
    device: str | None = None
    name: str = "deepfake-detector"
    version: str = ""
    notes: dict = field(default_factory=dict)
    # Several known sources instead of one folder (ml/sources.py), each split by its own groups.
    sources: tuple[str, ...] = ()
    data_root: str = ""
    sources_cache: str = "runs/sources"
    sbi_landmarks: bool = False  # self-blended fakes only from faces with landmarks, face-shaped masks
    init: str = ""  # start from this checkpoint's weights instead of ImageNet's
    calibrate: bool = True  # fit a temperature and the uncertain band on validation at the end
    # Weight of a term asking the same score of each training crop moved by a few % (`reframed`):
    # a face's score should not depend on where exactly its box fell (`make framing-check`).
    framing_consistency: float = 0.0
    framing_on: str = "all"  # FRAMING_ON: the crops the term applies to
    # Share of training crops shown as a shared copy of a video shows them (smaller, H.264:
    # training_data.as_shared_copy) instead of the usual blur and JPEG.
    shared_copies: float = 0.0


# ---------------------------------------------------------------------------- loop


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX). Without it, bf16
    autocast is emulated: measured 10-18x slower than fp32 on an AMD EPYC without AVX-512."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    if cpu_has_fast_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# How far `reframed` moves a crop: up to this share of its side, and scaled by up to this much,
# the size of the differences between two Haar searches of one face (ml/face_check.py).
REFRAME_SHIFT = 0.05
REFRAME_SCALE = 0.06


def reframed(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image of a batch (N, C, H, W) moved by up to `REFRAME_SHIFT` of its side in x and y
    and scaled by up to `REFRAME_SCALE` about its centre, as if its face box had fallen a little
    elsewhere; what comes in from beyond the border is mirrored."""
    n = images.shape[0]

    def draw(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    scale = draw(1 - REFRAME_SCALE, 1 + REFRAME_SCALE)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, 0, 2] = draw(-2 * REFRAME_SHIFT, 2 * REFRAME_SHIFT)  # grid units: the side is 2
    theta[:, 1, 2] = draw(-2 * REFRAME_SHIFT, 2 * REFRAME_SHIFT)
    grid = nn.functional.affine_grid(theta.to(images.device, images.dtype), list(images.shape), align_corners=False)
    return nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def framing_crops(labels: torch.Tensor, framing_on: str) -> torch.Tensor:
    """Which crops of a batch the framing term applies to (a boolean mask)."""
    if framing_on not in FRAMING_ON:
        raise ValueError(f"framing_on must be one of {FRAMING_ON}, not {framing_on!r}")
    return labels == 0 if framing_on == "real" else torch.ones_like(labels, dtype=torch.bool)


def framing_loss(logits: torch.Tensor, moved_logits: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the fake-minus-real logit between each crop and its moved copy."""
    margin = logits[:, 1] - logits[:, 0]
    moved = moved_logits[:, 1] - moved_logits[:, 0]
    return nn.functional.mse_loss(moved, margin)


@torch.inference_mode()
def predict_logits(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(labels, fp32 logits N x 2), computed exactly as the detector computes them: in true
    fp32 on a GPU too (`scoring_precision`), so a temperature and thresholds fitted on them on
    a GPU hold for the scores a worker gives."""
    model.eval()
    logits, labels = [], []
    for images, target in loader:
        with scoring_precision(device):
            logits.append(model(images.to(device)).float().cpu())
        labels.append(target.numpy())
    return np.concatenate(labels), torch.cat(logits).numpy()


def predict_scores(
    model: nn.Module, loader: DataLoader, device: torch.device, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, fake probabilities) at a temperature, as the detector computes them."""
    labels, logits = predict_logits(model, loader, device)
    return labels, fake_probability(torch.from_numpy(logits), temperature)


def per_source_metrics(items: list[Item], scores: np.ndarray, threshold: float) -> dict:
    """Validation metrics per source: AUC and more where it has both classes, else the share
    of its (real) faces scored at or above the threshold."""
    report = {}
    for source in sorted({item.source for item in items}):
        picked = [i for i, item in enumerate(items) if item.source == source]
        labels = np.array([items[i].label for i in picked])
        if len(set(labels.tolist())) == 2:
            m = binary_metrics(labels, scores[picked], threshold=threshold)
            report[source] = {k: m[k] for k in ("roc_auc", "accuracy", "f1", "n_real", "n_fake")}
        else:
            report[source] = {"n": len(picked), "called_fake": float(np.mean(scores[picked] >= threshold))}
    return report


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(config: TrainConfig) -> Path:
    """Train, validate every epoch and return the path of the best checkpoint."""
    from tqdm import tqdm  # the [train] extra: the site's install has none

    if config.fakes not in FAKES_MODES:
        raise ValueError(f"fakes must be one of {FAKES_MODES}")
    if config.framing_on not in FRAMING_ON:  # said now, not at the first batch after the data is ready
        raise ValueError(f"framing_on must be one of {FRAMING_ON}, not {config.framing_on!r}")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _seed_everything(config.seed)
    device = select_device(config.device)

    source_of: dict[Path, str] = {}
    landmarks: dict[str, np.ndarray] = {}
    if config.sources:  # each source split by its own groups, so DFDC's split matches `evaluate`
        found = source_samples(config.sources, config.data_root, config.sources_cache)
        train_samples, val_samples = [], []
        for name in config.sources:
            mine = [f.sample for f in found if f.source == name]
            source_of.update({s.path: name for s in mine})
            train_part, val_part = group_split(mine, val_fraction=config.val_fraction, seed=config.seed)
            if config.max_train and len(train_part) > config.max_train:  # a cap per source
                train_part = sorted(random.Random(config.seed).sample(train_part, config.max_train), key=lambda s: str(s.path))
            train_samples += train_part
            val_samples += val_part
        landmarks = load_landmarks(config.sources, config.sources_cache)
        samples = train_samples + val_samples
    else:
        samples = folder_samples(config.data)
        if not config.cropped:  # photos or videos: find faces once, cache crops the detector's way
            samples = prepare_crops(samples, out / "crops", margin=DEFAULT_MARGIN)
        train_samples, val_samples = group_split(samples, val_fraction=config.val_fraction, seed=config.seed)
    if config.max_train and len(train_samples) > config.max_train and not config.sources:
        picker = random.Random(config.seed)
        train_samples = sorted(picker.sample(train_samples, config.max_train), key=lambda s: str(s.path))
    extra_real = [s for root in config.extra_real for s in real_face_samples(root)]
    if config.max_extra and len(extra_real) > config.max_extra:
        extra_real = sorted(random.Random(config.seed).sample(extra_real, config.max_extra), key=lambda s: str(s.path))
    train_items = build_items(
        train_samples, extra_real, config.fakes, sources=source_of,
        blend_only=set(landmarks) if config.sbi_landmarks else None,
    )
    val_items = [Item(s.path, s.label, source=source_of.get(s.path, "")) for s in val_samples]
    if not train_items or not val_items:
        raise ValueError("not enough data for a training and a validation split")

    margin, shift = DEFAULT_MARGIN, 0.0
    if config.sources:
        margin, shift = FRAMING
    elif config.cropped:
        probe = random.Random(config.seed).sample(train_samples, min(300, len(train_samples)))
        margin, shift, found = measure_crop_framing([read_crop(s.path) for s in probe])
        log.info("measured crop framing: margin %.3f, shift %.3f (%d faces)", margin, shift, found)

    spec = ModelSpec(
        arch=config.arch,
        input_size=config.input_size,
        threshold=config.threshold,
        face_margin=round(margin, 3),
        face_shift=round(shift, 3),
        name=config.name,
        version=config.version or time.strftime("%Y.%m.%d"),
    )
    if config.init:
        model, _ = load_checkpoint(config.init, device="cpu")
        model.to(device, memory_format=torch.channels_last)
    else:
        model = build_model(arch=config.arch, weights=Weights.parse(config.pretrained)).to(device, memory_format=torch.channels_last)

    counts = np.bincount([item.label for item in train_items], minlength=2)
    class_weights = torch.tensor(len(train_items) / (2.0 * np.maximum(counts, 1)), dtype=torch.float32, device=device)
    criterion = nn.CrossEntropyLoss(weight=class_weights)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # Where the face sits in a crop, for the self-blending masks: measured for tight pre-cut
    # crops, computed from the margin for crops cut around Haar boxes (`python -m ml prepare`).
    face_box = TIGHT_CROP_BOX if config.cropped or config.sources else face_box_in_crop(margin=margin, shift=shift)
    train_set = CropDataset(
        train_items, size=config.input_size, train=True, seed=config.seed, face_box=face_box, landmarks=landmarks,
        shared_copies=config.shared_copies,
    )
    val_set = CropDataset(val_items, size=config.input_size, train=False, seed=config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    reframe_generator = torch.Generator().manual_seed(config.seed + 1)
    train_loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        generator=generator,
        num_workers=config.workers,
        collate_fn=lambda b: collate(b, spec),
        drop_last=len(train_set) > config.batch_size,
    )
    val_loader = DataLoader(
        val_set, batch_size=64, num_workers=config.workers, collate_fn=lambda b: collate(b, spec)
    )
    total_steps = config.epochs * len(train_loader)
    warmup = min(100, total_steps // 10)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")

    start_epoch, best_auc = 0, -1.0
    state_path = out / STATE_NAME
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        if "reframe_generator" in state:
            reframe_generator.set_state(state["reframe_generator"])
        start_epoch, best_auc = state["epoch"] + 1, state["best_auc"]
        log.info("resumed after epoch %d (best AUC %.4f)", state["epoch"] + 1, best_auc)

    data_info = {
        "data": str(config.data),
        "extra_real": list(config.extra_real),
        "fakes": config.fakes,
        "n_train_files": len(train_samples),
        "n_extra_real": len(extra_real),
        "n_train_items": len(train_items),
        "n_train_real": int(counts[0]),
        "n_train_fake": int(counts[1]),
        "n_val": len(val_items),
        "val_fraction": config.val_fraction,
        "seed": config.seed,
        "cropped": config.cropped,
        "sources": list(config.sources),
        "sbi_landmarks": config.sbi_landmarks,
        "n_sbi": sum(item.blend for item in train_items),
        "init": config.init,
        "framing_consistency": config.framing_consistency,
        "framing_on": config.framing_on,
        "shared_copies": config.shared_copies,
    }
    best_path = out / BEST_NAME
    for epoch in range(start_epoch, config.epochs):
        model.train()
        train_set.epoch = epoch
        started = time.perf_counter()
        losses = []
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False)
        for images, labels in bar:
            images, labels = images.to(device), labels.to(device)
            with _autocast(device):
                logits = model(images)
                # The whole batch is moved, whichever crops the term applies to: a batch of real
                # faces alone would skew BatchNorm's running statistics towards them.
                moved = model(reframed(images, reframe_generator)) if config.framing_consistency else None
            loss = criterion(logits.float(), labels)
            if moved is not None:
                steadied = framing_crops(labels, config.framing_on)
                if bool(steadied.any()):
                    term = framing_loss(logits[steadied].float(), moved[steadied].float())
                    loss = loss + config.framing_consistency * term
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        train_seconds = time.perf_counter() - started
        labels, scores = predict_scores(model, val_loader, device)
        metrics = binary_metrics(labels, scores, threshold=config.threshold)
        if config.sources:
            metrics["per_source"] = per_source_metrics(val_items, scores, config.threshold)
        record = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "lr": scheduler.get_last_lr()[0],
            "train_seconds": round(train_seconds, 1),
            "images_per_second": round(len(train_set) / train_seconds, 1),
            "val": metrics,
        }
        with (out / LOG_NAME).open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        auc = metrics["roc_auc"] if metrics["roc_auc"] is not None else -1.0
        print(
            f"epoch {epoch + 1}: loss {record['train_loss']:.4f}  val AUC {auc:.4f}  "
            f"acc {metrics['accuracy']:.4f}  F1 {metrics['f1']:.4f}  ({train_seconds:.0f} s)",
            flush=True,
        )
        if auc > best_auc:
            best_auc = auc
            training = {**data_info, "arch": config.arch, "pretrained": str(config.pretrained),
                        "epochs": epoch + 1, "of_epochs": config.epochs, "batch_size": config.batch_size,
                        "lr": config.lr, "val_metrics": metrics, **config.notes}
            save_checkpoint(model, best_path, replace(spec, training=training))
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(),
                "reframe_generator": reframe_generator.get_state(),
                "epoch": epoch,
                "best_auc": best_auc,
                "config": json.dumps(asdict(config)),
            },
            state_path,
        )
    if config.calibrate and best_path.exists():
        calibrate_checkpoint(best_path, val_loader, device)
    return best_path


def calibrate_checkpoint(
    path: Path, val_loader: DataLoader, device: torch.device, *, target: Path | None = None, note: dict | None = None
) -> dict:
    """Fit the temperature and the two thresholds on validation and store them in `target`
    (by default the checkpoint itself)."""
    model, spec = load_checkpoint(path, device=str(device))
    labels, logits = predict_logits(model, val_loader, device)
    report = {**calibration_report(labels, logits), **(note or {})}
    log.info("calibration: %s", json.dumps(report))
    save_checkpoint(
        model, target or path, replace(spec, training={**spec.training, "calibration": report}),
        temperature=report["temperature"], threshold=report["threshold"], threshold_real=report["threshold_real"],
    )
    return report


def calibrate_on_sources(
    path: Path, target: Path, *, sources: tuple[str, ...], data_root: str | Path, sources_cache: str | Path
) -> dict:
    """Calibrate a checkpoint on the held-out split (its recorded seed and fraction) of each
    named source, pooled, and write the calibrated copy to `target`."""
    _, spec = load_checkpoint(path, device="cpu")
    seed, fraction = spec.training.get("seed", 0), spec.training.get("val_fraction", 0.1)
    found = source_samples(sources, data_root, sources_cache)
    items = []
    for name in sources:
        _, val = group_split([f.sample for f in found if f.source == name], val_fraction=fraction, seed=seed)
        items += [Item(s.path, s.label, source=name) for s in val]
    loader = DataLoader(
        CropDataset(items, size=spec.input_size, train=False, seed=seed), batch_size=64,
        collate_fn=lambda b: collate(b, spec),
    )
    counts = {name: sum(item.source == name for item in items) for name in sources}
    return calibrate_checkpoint(
        path, loader, select_device(None), target=target, note={"calibrated_on": counts, "val_seed": seed, "val_fraction": fraction}
    )
