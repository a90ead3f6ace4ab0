"""Training the synthetic-face detector (`ml.synthetic`) on a few hundred images, and the
comparison of feature sets behind its model card.

Recipe:
1. Images: a folder dataset with `real/` and `fake/` (wholly generated faces), plus optional
   folders of extra real photos. Each image is one group: the split is by image, stratified by
   source and label, seeded (`split_by_image`).
2. Faces: the largest Haar box (`faces.find_faces`) and the crop the detector cuts
   (`faces.crop_face`, margin 1.3), so training sees the framing of inference. Images without a
   face are counted and left out.
3. Views: each training image gives its clean crop and `views - 1` degraded ones (`degrade`:
   downscaled to a random size, optionally blurred, re-encoded as JPEG at a random quality,
   flipped), drawn the same way for both classes so resolution, sharpness and compression
   carry no label.
4. Features of every view are computed once for a superset of feature sets; every candidate
   (feature set x L2 strength x augmentation on/off) is a class-balanced logistic regression,
   scored by 5-fold cross-validation on the training images (folds by image). The candidate
   with the best cross-validated AUC over all views of the in-domain images is shipped.
5. Thresholds come from the shipped candidate's out-of-fold scores (clean and degraded views),
   see `choose_thresholds`: `threshold` lets at most 5 % of the real photos of each source be
   called synthetic; below `threshold_real` a "real" call is at least 10 times likelier for a
   real photo than for a synthetic face; in between is "uncertain".
6. The chosen candidate is refitted on every training view and saved; the held-out images
   (clean, and degraded with JPEG 75 at 256 px, which training never saw for these images) are
   scored for the comparison table only, never for a choice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from .datasets import IMAGE_SUFFIXES
from .faces import DEFAULT_MARGIN, crop_face, find_faces
from .metrics import roc_auc
from .results import Box
from .synthetic import SyntheticFaceModel, SyntheticSpec, imagenet_backbone, save_synthetic_checkpoint, stage_channels

log = logging.getLogger(__name__)

IN_DOMAIN = "in_domain"
CANDIDATE_STAGES = (3, 6, 10, 13, 16, 17, 18)
FEATURE_SETS = {  # name: (spectrum_bins, cnn_stages)
    "spectrum": (48, ()),
    "mnv2-last": (0, (18,)),
    "mnv2-multi": (0, CANDIDATE_STAGES),
    "spectrum+mnv2-last": (48, (18,)),
    "spectrum+mnv2-multi": (48, CANDIDATE_STAGES),
}
L2_GRID = (1e-3, 1e-2, 1e-1)
DEGRADED_TEST = {"long_side": 256, "quality": 75}  # the held-out cross-check, never a training view
MAX_REAL_CALLED_SYNTHETIC = 0.05
REAL_EVIDENCE = 10.0  # likelihood ratio a "real" call needs


@dataclass(frozen=True)
class SyntheticTrainConfig:
    data: str  # folder with real/ and fake/
    out: str
    extra_real: tuple[str, ...] = ()  # folders of more real photos (same kind of portraits)
    views: int = 4  # crops per training image: the clean one and views - 1 degraded ones
    test_fraction: float = 0.3
    folds: int = 5
    seed: int = 0
    input_size: int = 224
    feature_sets: tuple[str, ...] = tuple(FEATURE_SETS)
    version: str = ""
    notes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ImageItem:
    path: Path
    label: int  # 1: wholly generated
    source: str  # IN_DOMAIN or the extra folder's name


# ---------------------------------------------------------------------------- data


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_items(data: str | Path, extra_real: tuple[str, ...] = ()) -> list[ImageItem]:
    data = Path(data)
    items = [ImageItem(p, label, IN_DOMAIN) for label, name in ((0, "real"), (1, "fake")) for p in list_images(data / name)]
    if not any(i.label == 1 for i in items) or not any(i.label == 0 for i in items):
        raise ValueError(f"{data}: need images under both real/ and fake/")
    for folder in extra_real:
        items.extend(ImageItem(p, 0, Path(folder).name) for p in list_images(folder))
    return items


def split_by_image(items: list[ImageItem], *, test_fraction: float, seed: int) -> tuple[list[ImageItem], list[ImageItem]]:
    """(train, test): in every (source, label) stratum, round(test_fraction x n) images, ranked
    by a hash of (seed, file name), go to test. The same on every machine."""
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1 (exclusive)")
    train, test = [], []
    for stratum in sorted({(i.source, i.label) for i in items}):
        members = sorted(
            (i for i in items if (i.source, i.label) == stratum),
            key=lambda i: hashlib.sha256(f"{seed}:{i.path.name}".encode()).hexdigest(),
        )
        n_test = round(len(members) * test_fraction)
        test.extend(members[:n_test])
        train.extend(members[n_test:])
    return train, test


def fold_of(item: ImageItem, folds: int, seed: int) -> int:
    return int(hashlib.sha256(f"fold:{seed}:{item.path.name}".encode()).hexdigest(), 16) % folds


def degrade(
    image: np.ndarray, *, long_side: int | None = None, quality: int | None = None, blur: float = 0.0, flip: bool = False
) -> tuple[np.ndarray, float]:
    """A degraded copy of a whole image and the scale applied to its coordinates:
    downscaled (INTER_AREA) so its longer side is `long_side` (never enlarged), Gaussian blur
    of `blur` px, JPEG at `quality`, mirrored. Degrading the whole image, not the crop, is what
    a re-shared photo goes through."""
    scale = 1.0
    height, width = image.shape[:2]
    if long_side and long_side < max(height, width):
        scale = long_side / max(height, width)
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    if blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    if quality:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise ValueError("JPEG encoding failed")
        image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if flip:
        image = np.ascontiguousarray(image[:, ::-1])
    return image, scale


def random_degradation(rng: np.random.Generator) -> dict:
    """Parameters of one training view; the same distribution for both classes."""
    return {
        "long_side": int(rng.integers(160, 513)),
        "quality": int(rng.integers(50, 96)) if rng.random() < 0.8 else None,
        "blur": float(rng.uniform(0.3, 1.2)) if rng.random() < 0.3 else 0.0,
        "flip": bool(rng.random() < 0.5),
    }


def _scaled_box(box: Box, scale: float, width: int, flip: bool) -> Box:
    x, y, w, h = (round(v * scale) for v in (box.x, box.y, box.w, box.h))
    if flip:
        x = width - x - w
    return Box(x, y, w, h)


def training_crops(item: ImageItem, *, views: int, size: int, seed: int) -> list[np.ndarray]:
    """The clean crop of the image's largest face and `views - 1` degraded ones ([] when no
    face is found). The face is found once on the clean image and its box follows the scaling."""
    image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read {item.path}")
    boxes = find_faces(image, max_faces=1)
    if not boxes:
        return []
    crops = [crop_face(image, boxes[0], size=size, margin=DEFAULT_MARGIN)]
    rng = np.random.default_rng(int(hashlib.sha256(f"views:{seed}:{item.path.name}".encode()).hexdigest()[:12], 16))
    for _ in range(views - 1):
        params = random_degradation(rng)
        degraded, scale = degrade(image, **params)
        box = _scaled_box(boxes[0], scale, degraded.shape[1], params["flip"])
        crops.append(crop_face(degraded, box, size=size, margin=DEFAULT_MARGIN))
    return crops


def platform_crops(image: np.ndarray, *, size: int) -> list[np.ndarray]:
    """The crops the platform cuts from a whole image: every Haar face (at most 4)."""
    return [crop_face(image, box, size=size, margin=DEFAULT_MARGIN) for box in find_faces(image)]


# ---------------------------------------------------------------------------- the logistic head


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Class-balanced L2 logistic regression on standardised features (float64, L-BFGS).

    Returns (weights, bias, feature mean, feature std); the logit is
    ((x - mean) / std) @ weights + bias."""
    mean = x.mean(axis=0)
    std = np.maximum(x.std(axis=0), 1e-6)
    xs = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y.astype(np.float64))
    n_pos = max(float(yt.sum()), 1.0)
    n_neg = max(float(len(yt) - yt.sum()), 1.0)
    sample_weight = torch.where(yt > 0, 0.5 / n_pos, 0.5 / n_neg)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], lr=1.0, max_iter=300, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        logits = xs @ w + b
        loss = (sample_weight * torch.nn.functional.binary_cross_entropy_with_logits(logits, yt, reduction="none")).sum()
        loss = loss + 0.5 * l2 * (w @ w)
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy(), float(b.detach()), mean, std


def logistic_scores(x: np.ndarray, weights: np.ndarray, bias: float, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(((x - mean) / std) @ weights + bias)))


def choose_thresholds(real_scores: dict[str, np.ndarray], fake_scores: np.ndarray) -> tuple[float, float]:
    """(threshold_real, threshold) from validation scores; `real_scores` maps each source of
    real photos to its scores, so a large easy source cannot hide a hard one.

    `threshold` ("synthetic" at or above): at most 5 % of the real photos of every source reach it.
    `threshold_real` ("real" below): the highest score at which a "real" call is at least
    `REAL_EVIDENCE` times likelier for a real photo (of the hardest source) than for a synthetic
    face, P(s < t | synthetic) <= P(s < t | real) / REAL_EVIDENCE; never above `threshold`.
    The scores between them are "uncertain".
    """
    highs = []
    for scores in real_scores.values():
        reals = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
        k = int(np.floor(MAX_REAL_CALLED_SYNTHETIC * len(reals)))
        highs.append(float(np.nextafter(reals[0], np.inf)) if k == 0 else float((reals[k - 1] + reals[k]) / 2))
    high = max(highs)
    fakes = np.asarray(fake_scores, dtype=np.float64)
    values = np.unique(np.concatenate([fakes, *map(np.asarray, real_scores.values())]))
    candidates = np.r_[values[0], (values[:-1] + values[1:]) / 2]  # "real" below each
    low = float(values[0])
    for t in candidates[candidates <= high]:
        called_real = min(np.mean(np.asarray(r) < t) for r in real_scores.values())
        if np.mean(fakes < t) * REAL_EVIDENCE <= called_real:
            low = float(t)
    return min(low, high), high


# ---------------------------------------------------------------------------- training


def _columns(spectrum_bins: int, stages: tuple[int, ...], layout: dict) -> np.ndarray:
    cols = []
    if spectrum_bins:
        cols.extend(range(*layout["spectrum"]))
    for stage in stages:
        cols.extend(range(*layout[stage]))
    return np.array(cols)


def _feature_layout(spectrum_bins: int, stages: tuple[int, ...]) -> dict:
    layout, start = {"spectrum": (0, spectrum_bins)}, spectrum_bins
    for stage in stages:
        width = stage_channels((stage,))
        layout[stage] = (start, start + width)
        start += width
    return layout


def _extract(model: SyntheticFaceModel, crops: list[np.ndarray], batch: int = 32) -> np.ndarray:
    return np.concatenate(
        [model.features(crops[i : i + batch]).double().numpy() for i in range(0, len(crops), batch)]
    )


def train_synthetic(config: SyntheticTrainConfig) -> Path:
    """Run the comparison, save the chosen model as `out/synthetic.pt`; write `comparison.json`."""
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    items = image_items(config.data, config.extra_real)
    train_items, test_items = split_by_image(items, test_fraction=config.test_fraction, seed=config.seed)
    log.info("%d training images, %d held out", len(train_items), len(test_items))

    superset = SyntheticSpec(input_size=config.input_size, spectrum_bins=48, cnn_stages=CANDIDATE_STAGES)
    extractor = SyntheticFaceModel(superset, imagenet_backbone()).eval()
    layout = _feature_layout(48, CANDIDATE_STAGES)

    rows, no_face = [], []  # rows: (item index, view index); features in the same order
    crops_all: list[np.ndarray] = []
    for index, item in enumerate(train_items):
        crops = training_crops(item, views=config.views, size=config.input_size, seed=config.seed)
        if not crops:
            no_face.append(str(item.path))
        rows.extend((index, v) for v in range(len(crops)))
        crops_all.extend(crops)
    train_x = _extract(extractor, crops_all)
    view_item = np.array([r[0] for r in rows])
    view_index = np.array([r[1] for r in rows])
    view_y = np.array([train_items[i].label for i in view_item])
    view_in_domain = np.array([train_items[i].source == IN_DOMAIN for i in view_item])
    view_fold = np.array([fold_of(train_items[i], config.folds, config.seed) for i in view_item])
    log.info("training features %s in %.0f s", train_x.shape, time.time() - started)

    test_sets = {"test_clean": {}, "test_degraded": {}}
    test_rows = {"test_clean": [], "test_degraded": []}
    test_crops = {"test_clean": [], "test_degraded": []}
    for index, item in enumerate(test_items):
        if item.source != IN_DOMAIN:
            continue
        image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        for name, copy in (("test_clean", image), ("test_degraded", degrade(image, **DEGRADED_TEST)[0])):
            crops = platform_crops(copy, size=config.input_size)
            test_rows[name].extend([index] * len(crops))
            test_crops[name].extend(crops)
    for name in test_sets:
        test_sets[name] = {
            "x": _extract(extractor, test_crops[name]),
            "item": np.array(test_rows[name]),
            "y": np.array([test_items[i].label for i in test_rows[name]]),
        }

    candidates = []
    for feature_set in config.feature_sets:
        bins, stages = FEATURE_SETS[feature_set]
        cols = _columns(bins, stages, layout)
        for augment in (True, False):
            for l2 in L2_GRID:
                oof = np.full(len(view_y), np.nan)
                for fold in range(config.folds):
                    fit_rows = view_fold != fold
                    if not augment:
                        fit_rows &= view_index == 0
                    params = fit_logistic(train_x[fit_rows][:, cols], view_y[fit_rows], l2=l2)
                    held = view_fold == fold
                    oof[held] = logistic_scores(train_x[held][:, cols], *params)
                clean = view_index == 0
                cand = {
                    "features": feature_set,
                    "augment": augment,
                    "l2": l2,
                    "cv_auc_in_domain_all_views": roc_auc(view_y[view_in_domain], oof[view_in_domain]),
                    "cv_auc_in_domain_clean": roc_auc(view_y[view_in_domain & clean], oof[view_in_domain & clean]),
                    "cv_auc_in_domain_degraded_views": roc_auc(
                        view_y[view_in_domain & ~clean], oof[view_in_domain & ~clean]
                    ),
                }
                if not view_in_domain.all():
                    cand["cv_auc_all_sources_all_views"] = roc_auc(view_y, oof)
                fit_rows = np.ones(len(view_y), bool) if augment else view_index == 0
                params = fit_logistic(train_x[fit_rows][:, cols], view_y[fit_rows], l2=l2)
                for name, test in test_sets.items():
                    cand[f"{name}_auc"] = _image_auc(test, logistic_scores(test["x"][:, cols], *params))
                cand["_oof"] = oof
                candidates.append(cand)
                log.info("%s", {k: v for k, v in cand.items() if not k.startswith("_")})

    best = max(candidates, key=lambda c: (c["cv_auc_in_domain_all_views"], -c["l2"]))
    bins, stages = FEATURE_SETS[best["features"]]
    oof = best["_oof"]
    view_source = np.array([train_items[i].source for i in view_item])
    real_by_source = {src: oof[(view_y == 0) & (view_source == src)] for src in sorted(set(view_source[view_y == 0]))}
    threshold_real, threshold = choose_thresholds(real_by_source, oof[view_y == 1])
    operating_points = {
        "synthetic_called_synthetic": float(np.mean(oof[view_y == 1] >= threshold)),
        "synthetic_called_real": float(np.mean(oof[view_y == 1] < threshold_real)),
        **{f"real_{src}_called_synthetic": float(np.mean(r >= threshold)) for src, r in real_by_source.items()},
        **{f"real_{src}_called_real": float(np.mean(r < threshold_real)) for src, r in real_by_source.items()},
    }
    cols = _columns(bins, stages, layout)
    fit_rows = np.ones(len(view_y), bool) if best["augment"] else view_index == 0
    weights, bias, mean, std = fit_logistic(train_x[fit_rows][:, cols], view_y[fit_rows], l2=best["l2"])

    def count(subset, label):
        return int(sum(1 for i in subset if i.label == label))

    training = {
        "data": Path(config.data).name,
        "extra_real": [Path(f).name for f in config.extra_real],
        "split": "by image, stratified by source and label",
        "seed": config.seed,
        "test_fraction": config.test_fraction,
        "n_train_real": count(train_items, 0),
        "n_train_synthetic": count(train_items, 1),
        "n_test_real": count(test_items, 0),
        "n_test_synthetic": count(test_items, 1),
        "n_train_no_face": len(no_face),
        "views": config.views,
        "augmentation": "clean crop + degraded views: whole image downscaled to a long side of 160-512 px, "
        "Gaussian blur sigma 0.3-1.2 (p 0.3), JPEG quality 50-95 (p 0.8), flip (p 0.5); both classes alike",
        "augment": best["augment"],
        "l2": best["l2"],
        "folds": config.folds,
        "cv_auc_in_domain_all_views": best["cv_auc_in_domain_all_views"],
        "threshold_rule": "threshold: at most 5% of the out-of-fold real views of each source called synthetic; "
        "threshold_real: highest t with P(s<t|synthetic) <= P(s<t|real, hardest source) / 10 (out-of-fold views)",
        "oof_operating_points": operating_points,
        "backbone": "torchvision mobilenet_v2-b0353104.pth (ImageNet), frozen, fp16-rounded",
        **config.notes,
    }
    spec = SyntheticSpec(
        input_size=config.input_size,
        spectrum_bins=bins,
        cnn_stages=stages,
        threshold=threshold,
        threshold_real=threshold_real,
        version=config.version or time.strftime("%Y.%m.%d"),
        training=training,
    )
    model = SyntheticFaceModel(spec, extractor.backbone if stages else None)
    with torch.no_grad():
        model.feature_mean.copy_(torch.from_numpy(mean))
        model.feature_std.copy_(torch.from_numpy(std))
        model.head.weight.copy_(torch.from_numpy(weights).view(1, -1))
        model.head.bias.fill_(bias)
    path = save_synthetic_checkpoint(model.eval(), out / "synthetic.pt")

    report = {
        "config": {k: v for k, v in asdict(config).items()},
        "chosen": {k: v for k, v in best.items() if not k.startswith("_")},
        "threshold": threshold,
        "threshold_real": threshold_real,
        "candidates": [{k: v for k, v in c.items() if not k.startswith("_")} for c in candidates],
        "no_face": no_face,
        "seconds": round(time.time() - started, 1),
    }
    (out / "comparison.json").write_text(json.dumps(report, indent=2))
    return path


def _image_auc(test: dict, scores: np.ndarray) -> float | None:
    """AUC over images, each scored by its most suspicious face (the platform's frame rule)."""
    by_item: dict[int, tuple[int, float]] = {}
    for item, y, s in zip(test["item"], test["y"], scores):
        by_item[item] = (y, max(s, by_item.get(item, (y, -1.0))[1]))
    labels = np.array([v[0] for v in by_item.values()])
    values = np.array([v[1] for v in by_item.values()])
    return roc_auc(labels, values)


def format_comparison(report: dict) -> str:
    """The comparison as a Markdown table, best cross-validated candidate per feature set and
    augmentation setting."""
    lines = [
        "| features | augmented | L2 | CV AUC all views | CV AUC clean | CV AUC degraded views | test AUC | test AUC JPEG75@256 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    best: dict = {}
    for c in report["candidates"]:
        key = (c["features"], c["augment"])
        if key not in best or c["cv_auc_in_domain_all_views"] > best[key]["cv_auc_in_domain_all_views"]:
            best[key] = c

    def f(v):
        return "-" if v is None else f"{v:.3f}"

    for c in best.values():
        lines.append(
            f"| {c['features']} | {'yes' if c['augment'] else 'no'} | {c['l2']:g} | {f(c['cv_auc_in_domain_all_views'])} "
            f"| {f(c['cv_auc_in_domain_clean'])} | {f(c['cv_auc_in_domain_degraded_views'])} "
            f"| {f(c['test_clean_auc'])} | {f(c['test_degraded_auc'])} |"
        )
    return "\n".join(lines)
