"""Fine-tuning the real/fake classifier on face crops: the loop (the data it draws, its
augmentation and dataset are in ml/training_data.py).

The recipe: transfer learning from ImageNet weights (or from scratch), augmentation that keeps
real and fake crops equally sharp and equally compressed (so the model cannot win by learning
blur or JPEG quality), class-balanced loss, AdamW with a cosine schedule, bf16 autocast on CPUs
that compute bf16 in hardware (about 3x faster than fp32 there; elsewhere fp32) and AMP on CUDA,
validation every epoch, the best checkpoint
kept by validation ROC AUC, seeded, one JSON line per epoch in `train_log.jsonl`.

Resumable: each epoch ends by saving `last_state.pt` (weights, optimiser, schedule, random
generators; through a temporary file, then the log line), and a run started again in the same
folder goes on from there, with the same learning-rate schedule, if its settings are those the
run was started with (`RESUME_SETTINGS`, the epochs among them: the cosine spans them all);
otherwise it is refused, naming each setting that differs, and `restart=True` (`--restart`)
moves the earlier run's files aside. Both the data and the validation split must hold real and
fake files (an AUC over one class keeps no epoch).

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
from .datasets import folder_samples, group_split, prepare_crops, require_both_classes, require_data_root
from .errors import CheckpointError
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
from .sources import FRAMING, LANDMARKS, load_landmarks, source_samples
from .sources import INDEX as SOURCE_INDEX
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
    group_by: str = ""  # the index column a folder DATA is split by ("": group, else source_video)
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


# ------------------------------------------------------------------------ resuming a run

# The settings that make a run what it is: the data it draws, its split, its model and its
# schedule. A run is resumed only with the same ones (`run_settings`); the rest (where it runs,
# how many loader processes, its name, whether it is calibrated at the end) may differ.
RESUME_SETTINGS = (
    "data", "sources", "data_root", "group_by", "extra_real", "cropped", "fakes", "sbi_landmarks",
    "val_fraction", "seed", "max_train", "max_extra", "arch", "pretrained", "init", "input_size",
    "batch_size", "lr", "weight_decay", "epochs", "framing_consistency", "framing_on", "shared_copies",
    "threshold",  # the per-epoch metrics' threshold: one log measured at one threshold
)
_FLAGS = {"data": "DATA", "sources": "--source", "weight_decay": "weight_decay"}
REPLACED_PREFIX = "replaced-"  # where --restart moves an earlier run's files


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, through the command line) stopped a run; the message says what is
    saved and how to go on."""


def _flag(name: str) -> str:
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def _absolute(path: str) -> str:
    return str(Path(path).resolve()) if path else ""


def run_settings(config: TrainConfig) -> dict:
    """The settings `RESUME_SETTINGS` of a run as plain JSON values, paths made absolute (the
    same relative path from another folder is other data)."""
    settings = {name: getattr(config, name) for name in RESUME_SETTINGS}
    pretrained = config.pretrained
    settings.update(
        data=_absolute(config.data),
        data_root=_absolute(config.data_root) if config.sources else "",
        extra_real=[_absolute(p) for p in config.extra_real],
        init=_absolute(config.init),
        pretrained=_absolute(pretrained) if isinstance(pretrained, str) else pretrained,
    )
    return json.loads(json.dumps(settings))


def _stored_settings(state: dict) -> dict:
    """The settings a saved state was trained with (states saved before they were stored keep
    the whole configuration instead)."""
    if "settings" in state:
        return json.loads(state["settings"])
    stored = json.loads(state["config"])
    known = {k: v for k, v in stored.items() if k in TrainConfig.__dataclass_fields__}
    return run_settings(TrainConfig(**{**known, **{k: tuple(v) for k, v in known.items() if isinstance(v, list)}}))


def settings_changes(old: dict, new: dict) -> list[str]:
    """One line per setting that differs, as `--seed: 0 -> 1`."""
    return [
        f"{_flag(name)}: {json.dumps(old.get(name))} -> {json.dumps(new.get(name))}"
        for name in RESUME_SETTINGS
        if old.get(name) != new.get(name)
    ]


def _ways_out(out: Path) -> str:
    return (
        f"Give another --out for a new run, or add --restart to start this one over (its files are moved "
        f"to {out}/{REPLACED_PREFIX}<date-time>/)."
    )


def _refuse_other_settings(out: Path, old: dict, new: dict) -> None:
    changes = settings_changes(old, new)
    if not changes:
        return
    lines = [f"{out} holds a run with other settings ({out / STATE_NAME}), so it cannot be resumed with these:"]
    lines += [f"  {change}" for change in changes]
    if old.get("epochs") != new.get("epochs"):
        lines.append(
            "The learning rate follows one cosine over a run's epochs, so their number cannot change once a "
            "run has started (the epochs already trained followed the old schedule). To train on from this run, "
            f"start a new one from its best weights: --init {out / BEST_NAME} --out NEW_FOLDER."
        )
    if any(not change.startswith("--epochs:") for change in changes):
        lines.append("Resuming would mix two runs (another split would move validation files into training).")
    lines.append(_ways_out(out))
    raise ValueError("\n".join(lines))


def read_state(path: Path) -> dict:
    """A saved training state; CheckpointError naming the file when it cannot be read."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing = [key for key in ("model", "optimizer", "scheduler", "generator", "epoch") if key not in state]
        if missing:
            raise KeyError(f"no {', '.join(missing)} in it")
    except Exception as exc:  # torch raises many types for a cut-short or foreign file
        raise CheckpointError(
            f"{path} cannot be read ({type(exc).__name__}: {str(exc)[:200]}); it may have been cut short. "
            f"Add --restart to start the run over (its files are moved aside), or give another --out."
        ) from None
    return state


def save_state(path: Path, state: dict) -> None:
    """Write a training state through a temporary file, so that an interruption leaves the
    previous one whole."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def set_aside(out: Path) -> Path | None:
    """Move an earlier run's checkpoint, state and log into `out/replaced-<date-time>/`; its folder,
    or None when there was nothing to move. Cached face crops stay: they are keyed by their inputs."""
    found = [out / name for name in (BEST_NAME, STATE_NAME, LOG_NAME) if (out / name).exists()]
    for name in (BEST_NAME, STATE_NAME):
        (out / name).with_suffix(".pt.tmp").unlink(missing_ok=True)
    if not found:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, n = out / f"{REPLACED_PREFIX}{stamp}", 1
    while folder.exists():
        n += 1
        folder = out / f"{REPLACED_PREFIX}{stamp}-{n}"
    folder.mkdir()
    for path in found:
        path.replace(folder / path.name)
    return folder


def _trim_log(log_path: Path, *, epochs_saved: int, record: str | None) -> None:
    """Keep one line per epoch of the saved state in the log: lines of epochs trained after it
    (an interruption before their state was saved) go, and its own last line comes back when an
    interruption came between saving the state and writing the line."""
    lines: dict[int, str] = {}
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                epoch = int(json.loads(line)["epoch"])
                if epoch <= epochs_saved:
                    lines[epoch] = line
    if record is not None and epochs_saved not in lines:
        lines[epochs_saved] = record
    tmp = log_path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(lines[epoch] + "\n" for epoch in sorted(lines)))
    tmp.replace(log_path)


def _open_run(config: TrainConfig, out: Path, *, restart: bool) -> dict | None:
    """The saved state to resume from, or None for a new run; refuses a run saved with other
    settings, and a folder holding a log but no state to resume it from."""
    state_path = out / STATE_NAME
    if restart:
        moved = set_aside(out)
        if moved is not None:
            print(f"restarting: the earlier run's files are moved to {moved}/", flush=True)
        return None
    if not state_path.exists():
        if (out / LOG_NAME).exists() and (out / LOG_NAME).stat().st_size:
            raise ValueError(
                f"{out} holds the log of an earlier run ({LOG_NAME}) but no {STATE_NAME} to resume it from. "
                + _ways_out(out)
            )
        return None
    state = read_state(state_path)
    _refuse_other_settings(out, _stored_settings(state), run_settings(config))
    return state


def _refuse_other_data(out: Path, state: dict, counts: dict) -> None:
    saved = json.loads(state["counts"]) if "counts" in state else counts
    if saved == counts:
        return
    raise ValueError(
        f"the data changed since the run in {out} started ({out / STATE_NAME}): "
        f"{saved['train_items']} training items, {saved['val_files']} validation files and "
        f"{saved['steps_per_epoch']} steps an epoch then; {counts['train_items']}, {counts['val_files']} and "
        f"{counts['steps_per_epoch']} now. " + _ways_out(out)
    )


def _is_calibrated(best: Path) -> bool:
    return best.is_file() and "calibration" in load_checkpoint(best, device="cpu")[1].training


@dataclass
class _Progress:
    """Where a run is, for the message when it is interrupted."""

    out: Path
    epochs: int
    saved: int = 0  # epochs finished and saved in last_state.pt
    doing: str = "preparing"  # "preparing", "training" or "calibrating"

    def interrupted(self) -> str:
        state = self.out / STATE_NAME
        if self.doing == "calibrating":
            return (
                f"interrupted while calibrating {self.out / BEST_NAME}; every epoch is saved in {state}: "
                "run the same command again to calibrate it"
            )
        where = f"during epoch {self.saved + 1}" if self.doing == "training" else "while preparing the data"
        if not self.saved:
            return f"interrupted {where}, before any epoch finished: nothing is saved; run the same command again to start"
        return (
            f"interrupted {where}; the last finished epoch ({self.saved} of {self.epochs}) is saved in {state}: "
            "run the same command again to resume"
        )


# ------------------------------------------------------------------------ the run


@dataclass
class _Data:
    train_samples: list
    val_samples: list
    extra_real: list
    source_of: dict
    landmarks: dict
    train_items: list
    val_items: list


def _load_data(config: TrainConfig, out: Path) -> _Data:
    """The training and validation items of a run; ValueError when either lacks a class."""
    why = "training and validation need both real and fake files"
    if config.fakes != "real":
        why = "validation needs both, fakes of the data's own (self-blended fakes are made for training only)"
    source_of: dict[Path, str] = {}
    landmarks: dict[str, np.ndarray] = {}
    if config.sources:  # each source split by its own groups, so DFDC's split matches `evaluate`
        found = source_samples(config.sources, config.data_root, config.sources_cache)
        require_both_classes([f.sample for f in found], where=f"the sources {', '.join(config.sources)}", why=why)
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
    else:
        samples = folder_samples(config.data, group_by=config.group_by or None)
        require_both_classes(samples, where=str(config.data), why=why)
        if not config.cropped:  # photos or videos: find faces once, cache crops the detector's way
            samples = prepare_crops(samples, out / "crops", margin=DEFAULT_MARGIN)
            require_both_classes(samples, where=f"the face crops of {config.data} ({out / 'crops'})", why=why)
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
    require_both_classes(val_samples, where="the validation split", why="a validation AUC and calibration need both")
    if len({item.label for item in train_items}) < 2:
        raise ValueError(
            f"the training split holds only {'real' if train_items[0].label == 0 else 'fake'} items "
            f"(--fakes {config.fakes}): training needs both real and fake ones"
        )
    return _Data(train_samples, val_samples, extra_real, source_of, landmarks, train_items, val_items)


def epoch_line(epoch: int, epochs: int, loss: float, metrics: dict, seconds: float) -> str:
    """What an epoch prints: its loss and validation metrics (accuracy and F1 at the fixed
    threshold, before any calibration)."""
    auc = "n/a (validation holds one class)" if metrics["roc_auc"] is None else f"{metrics['roc_auc']:.4f}"
    return (
        f"epoch {epoch}/{epochs}: loss {loss:.4f}  val AUC {auc}  acc {metrics['accuracy']:.4f}  "
        f"F1 {metrics['f1']:.4f} (at {metrics['threshold']:g}, before calibration)  ({seconds:.0f} s)"
    )


def run_summary(best: Path, *, calibrate: bool = True) -> list[str]:
    """What a finished run says at the end: the epoch kept, its validation metrics, the
    calibration (or why there is none) and where the checkpoint is."""
    if not best.is_file():
        return [f"no best checkpoint was written in {best.parent}"]
    _, spec = load_checkpoint(best, device="cpu")
    training = spec.training
    val = training.get("val_metrics", {})
    auc = "n/a" if val.get("roc_auc") is None else f"{val['roc_auc']:.4f}"
    lines = [
        f"best epoch: {training.get('epochs')} of {training.get('of_epochs')}: validation AUC {auc}; "
        f"accuracy {val.get('accuracy', 0):.4f}, F1 {val.get('f1', 0):.4f} at {val.get('threshold', spec.threshold):g} "
        f"before calibration ({val.get('n_real')} real, {val.get('n_fake')} fake validation files)"
    ]
    report = training.get("calibration")
    if report:
        lines.append(
            f"calibrated on the validation split: temperature {report['temperature']:.3f}; real below "
            f"{report['threshold_real']:.3f}, fake from {report['threshold']:.3f}, uncertain between "
            f"({report['real_called_fake']:.1%} of its real files called fake, {report['fake_recall']:.1%} of its fakes caught)"
        )
    else:
        why, how = ("--no-calibrate", "without --no-calibrate") if not calibrate else ("the run stopped before it", "again")
        lines.append(
            f"not calibrated ({why}): temperature 1, threshold {spec.threshold:g}, no uncertain band; "
            f"run the same command {how} to calibrate it"
        )
    lines.append(f"best checkpoint: {best}")
    return lines


def check_data_root(sources: tuple[str, ...], *, data_root: str, sources_cache: str) -> None:
    """ValueError naming the folder looked in, before anything is written (the sources' cache
    among it), when a source still to be prepared has no data to be prepared from."""
    cache = Path(sources_cache)
    waiting = [n for n in sources if not ((cache / n / SOURCE_INDEX).is_file() and (cache / n / LANDMARKS).is_file())]
    if waiting:
        require_data_root(data_root, needed_for=f"to prepare {', '.join(waiting)}")


def train(config: TrainConfig, *, restart: bool = False) -> Path:
    """Train, validate every epoch and return the path of the best checkpoint.

    A run saved in `config.out` is resumed where it stopped, if it has the same settings
    (ValueError naming those that differ otherwise); `restart` moves it aside and starts over.
    TrainingInterrupted (a KeyboardInterrupt) says what is saved when the run is interrupted.
    """
    if config.fakes not in FAKES_MODES:
        raise ValueError(f"fakes must be one of {FAKES_MODES}")
    if config.framing_on not in FRAMING_ON:  # said now, not at the first batch after the data is ready
        raise ValueError(f"framing_on must be one of {FRAMING_ON}, not {config.framing_on!r}")
    if config.epochs < 1:
        raise ValueError(f"--epochs must be 1 or more, not {config.epochs}")
    if config.group_by and config.sources:
        raise ValueError("--group-by is for a folder DATA; each --source is split by its own groups")
    check_data_root(config.sources, data_root=config.data_root, sources_cache=config.sources_cache)
    out = Path(config.out)
    progress = _Progress(out, config.epochs)
    try:
        return _train(config, out, restart=restart, progress=progress)
    except KeyboardInterrupt:
        raise TrainingInterrupted(progress.interrupted()) from None


def _train(config: TrainConfig, out: Path, *, restart: bool, progress: _Progress) -> Path:
    from tqdm import tqdm  # the [train] extra: the site's install has none

    state = _open_run(config, out, restart=restart) if out.exists() else None
    best_path = out / BEST_NAME
    if state is not None:
        progress.saved = state["epoch"] + 1
        if progress.saved >= config.epochs:
            print(f"this run is finished: all {config.epochs} epochs are done ({out / STATE_NAME})", flush=True)
            if not best_path.is_file():
                raise ValueError(f"{best_path} is gone: add --restart to train the run again, or give another --out")
            if not config.calibrate or _is_calibrated(best_path):
                return best_path
            print(f"calibrating {best_path}, which is not calibrated yet", flush=True)
        else:
            print(f"resuming from epoch {progress.saved + 1} of {config.epochs} ({out / STATE_NAME})", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    _seed_everything(config.seed)
    device = select_device(config.device)
    data = _load_data(config, out)
    train_samples, train_items, val_items = data.train_samples, data.train_items, data.val_items

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
        train_items, size=config.input_size, train=True, seed=config.seed, face_box=face_box, landmarks=data.landmarks,
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
    sizes = {"train_items": len(train_items), "val_files": len(val_items), "steps_per_epoch": len(train_loader)}
    # One cosine over the whole run, fixed when it starts: a resumed run has the same epochs and
    # steps (checked above and below), so its restored scheduler goes on exactly where it stopped.
    total_steps = config.epochs * len(train_loader)
    warmup = min(100, total_steps // 10)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * done))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")

    start_epoch, best_auc = 0, None
    if state is not None:
        _refuse_other_data(out, state, sizes)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        if "reframe_generator" in state:
            reframe_generator.set_state(state["reframe_generator"])
        if "scaler" in state and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        if "torch_rng" in state:  # dropout draws from it: the resumed epochs draw what they would have
            torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        start_epoch = state["epoch"] + 1
        best_auc = state["best_auc"] if state["best_auc"] is not None and state["best_auc"] >= 0 else None
        _trim_log(out / LOG_NAME, epochs_saved=start_epoch, record=state.get("record"))
        log.info("resumed after epoch %d (best AUC %s)", start_epoch, best_auc)

    data_info = {
        "data": str(config.data),
        "group_by": config.group_by,
        "extra_real": list(config.extra_real),
        "fakes": config.fakes,
        "n_train_files": len(train_samples),
        "n_extra_real": len(data.extra_real),
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
    for epoch in range(start_epoch, config.epochs):
        progress.doing = "training"
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
        auc = metrics["roc_auc"]
        if auc is not None and (best_auc is None or auc > best_auc):
            best_auc = auc
            training = {**data_info, "arch": config.arch, "pretrained": str(config.pretrained),
                        "epochs": epoch + 1, "of_epochs": config.epochs, "batch_size": config.batch_size,
                        "lr": config.lr, "val_metrics": metrics, **config.notes}
            save_checkpoint(model, best_path, replace(spec, training=training))
        # The state before the log line: a line in the log is always an epoch that is saved.
        save_state(out / STATE_NAME, {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "generator": generator.get_state(),
            "reframe_generator": reframe_generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state_all()} if device.type == "cuda" else {}),
            "epoch": epoch,
            "best_auc": best_auc,
            "settings": json.dumps(run_settings(config)),
            "counts": json.dumps(sizes),
            "record": json.dumps(record),
            "config": json.dumps(asdict(config)),
        })
        progress.saved = epoch + 1
        with (out / LOG_NAME).open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(epoch_line(epoch + 1, config.epochs, record["train_loss"], metrics, train_seconds), flush=True)
    progress.doing = "calibrating"
    if not best_path.is_file():
        raise ValueError(f"no epoch gave a validation AUC, so no best checkpoint was written in {out}")
    if config.calibrate and not _is_calibrated(best_path):
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
    check_data_root(sources, data_root=str(data_root), sources_cache=str(sources_cache))
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
