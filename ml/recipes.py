"""Issue 8's recipe comparison: which training data makes the face-swap model hold up beyond
DFDC, measured with the cross-source benchmark (ml/cross.py).

Every recipe starts from the same weights (`make recipe-comparison`: the base model, MobileNetV2
trained 6 epochs on DFDC from ImageNet and calibrated, `make base-model`) and fine-tunes them for the same schedule, with the same cap on the files
drawn from each source, so the recipes differ only in what they add. Each is then calibrated on
the same held-out pool (DFDC, Celeb-DF and UTKFace; inswapper stays out of calibration) and
benchmarked. A recipe that leaves a source out is that source's leave-one-source-out row: the
benchmark marks which sources each model trained on.

| recipe | sources | fakes | input |
|---|---|---|---|
| dfdc | DFDC | DFDC's own | 160 |
| reals | DFDC, Celeb-DF, UTKFace | DFDC's own | 160 |
| reals-inswapper | all four | DFDC's + inswapper's | 160 |
| all-sbi | all four | + landmark self-blends | 160 |
| reals-sbi | DFDC, Celeb-DF, UTKFace | DFDC's + landmark self-blends | 160 |
| dfdc-224 | DFDC | DFDC's own | 224 (against `dfdc` at 160) |
| reals-224 | DFDC, Celeb-DF, UTKFace | DFDC's own | 224 (against `reals` at 160) |
| reals-224-framing | as reals-224, plus the framing-consistency term (weight 0.3, `ml/train.py`) | DFDC's own | 224 |
| reals-224-framing-light | the same term at weight 0.1 | DFDC's own | 224 |
| reals-224-framing-reals | the term at 0.3 on the real faces only | DFDC's own | 224 |
| reals-224-shared | as reals-224, 30 % of crops shown as a shared video copy shows them (`training_data.as_shared_copy`) | DFDC's own | 224 |
| reals-224-shared-light | the same for 10 % of crops | DFDC's own | 224 |

Run: `python -m ml compare-recipes --out runs/recipes` (`make recipe-comparison`). Each recipe
writes its own folder; a recipe whose benchmark is already there is not run again, so an
interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from .cross import cross_source_report, write_report
from .detector import load_detector
from .train import TrainConfig, calibrate_on_sources, train

log = logging.getLogger(__name__)

CALIBRATION_SOURCES = ("dfdc", "celebdf", "utkface")
BASELINE = "start"  # the row of the weights every recipe starts from, not fine-tuned


@dataclass(frozen=True)
class Recipe:
    sources: tuple[str, ...]
    fakes: str = "real"  # FAKES_MODES: "real": the sources' own fakes; "both": plus self-blended ones
    input_size: int = 160
    framing_consistency: float = 0.0  # weight of ml/train.py's framing_loss (0: off)
    framing_on: str = "all"  # FRAMING_ON: the crops it applies to
    shared_copies: float = 0.0  # share of crops shown as a shared video copy shows them (ml/train.py)

    @property
    def sbi(self) -> bool:
        return self.fakes == "both"


RECIPES: dict[str, Recipe] = {  # run in this order: the cheapest and most telling first
    "dfdc": Recipe(("dfdc",)),
    "reals": Recipe(("dfdc", "celebdf", "utkface")),
    "reals-inswapper": Recipe(("dfdc", "celebdf", "utkface", "inswapper")),
    "all-sbi": Recipe(("dfdc", "celebdf", "utkface", "inswapper"), fakes="both"),
    "reals-sbi": Recipe(("dfdc", "celebdf", "utkface"), fakes="both"),
    "dfdc-224": Recipe(("dfdc",), input_size=224),
    "reals-224": Recipe(("dfdc", "celebdf", "utkface"), input_size=224),
    "reals-224-framing": Recipe(("dfdc", "celebdf", "utkface"), input_size=224, framing_consistency=0.3),
    "reals-224-framing-light": Recipe(("dfdc", "celebdf", "utkface"), input_size=224, framing_consistency=0.1),
    "reals-224-framing-reals": Recipe(
        ("dfdc", "celebdf", "utkface"), input_size=224, framing_consistency=0.3, framing_on="real"
    ),
    "reals-224-shared": Recipe(("dfdc", "celebdf", "utkface"), input_size=224, shared_copies=0.3),
    "reals-224-shared-light": Recipe(("dfdc", "celebdf", "utkface"), input_size=224, shared_copies=0.1),
}


@dataclass(frozen=True)
class Budget:
    """What every recipe gets: the same start, schedule and cap per source."""

    init: str = "ml/weights/detector.pt"
    epochs: int = 1
    lr: float = 5e-5
    max_per_source: int = 2000
    batch_size: int = 32
    seed: int = 0


def recipe_config(name: str, recipe: Recipe, budget: Budget, *, out: Path, data_root: str, sources_cache: str) -> TrainConfig:
    return TrainConfig(
        data="",
        out=str(out),
        sources=recipe.sources,
        fakes=recipe.fakes,
        sbi_landmarks=recipe.sbi,
        input_size=recipe.input_size,
        framing_consistency=recipe.framing_consistency,
        framing_on=recipe.framing_on,
        shared_copies=recipe.shared_copies,
        init=budget.init,
        epochs=budget.epochs,
        lr=budget.lr,
        max_train=budget.max_per_source,
        batch_size=budget.batch_size,
        seed=budget.seed,
        data_root=data_root,
        sources_cache=sources_cache,
        calibrate=False,  # calibrated below on the same pool as every other recipe
        version=f"recipe-{name}",
        notes={"recipe": name},
    )


def _benchmark(checkpoint: Path, out: Path, *, data_root: str, sources_cache: str, frames: int) -> list[dict]:
    detector = load_detector(str(checkpoint), synthetic=False)  # the face-swap model alone
    rows = cross_source_report(detector, data_root, sources_cache=sources_cache, frames=frames)
    print(write_report(rows, detector, out), flush=True)
    return rows


def run_recipe(name: str, budget: Budget, *, out: Path, data_root: str, sources_cache: str, frames: int) -> list[dict]:
    """Train (or resume), calibrate and benchmark one recipe; reuse whatever is already done."""
    folder = out / name
    cross = folder / "cross" / "cross.json"
    if cross.exists():
        return json.loads(cross.read_text())["rows"]
    if name == BASELINE:
        checkpoint = Path(budget.init)
    else:
        best = folder / "best.pt"
        if not best.exists() or not (folder / "trained").exists():
            config = recipe_config(name, RECIPES[name], budget, out=folder, data_root=data_root, sources_cache=sources_cache)
            best = train(config)
            (folder / "trained").write_text("done\n")
        checkpoint = folder / "calibrated.pt"
        calibrate_on_sources(
            best, checkpoint, sources=CALIBRATION_SOURCES, data_root=data_root, sources_cache=sources_cache
        )
    return _benchmark(checkpoint, folder / "cross", data_root=data_root, sources_cache=sources_cache, frames=frames)


def _row(rows: list[dict], name: str) -> dict:
    return next(r for r in rows if r["name"] == name)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _auc(row: dict, *, mark_unseen: bool = True) -> str:
    auc = "-" if row["roc_auc"] is None else f"{row['roc_auc']:.3f}"
    return auc if row["trained_on"] or not mark_unseen else f"{auc} (unseen)"


def comparison_table(results: dict[str, list[dict]]) -> str:
    """One line per recipe: what users would see on each source."""
    lines = [
        "| recipe | DFDC val AUC | inswapper AUC | Celeb-DF reals called fake | UTKFace reals called fake "
        "| real clips fake / uncertain | DFDC fake videos fake / uncertain | FF++ frames AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        clips, fakes = _row(rows, "videos-real"), _row(rows, "videos-fake")
        n_clips = clips["n_real"]
        lines.append(
            f"| {name} | {_auc(_row(rows, 'dfdc-val'))} | {_auc(_row(rows, 'inswapper-val'))} "
            f"| {_pct(_row(rows, 'celebdf-val')['real_called_fake'])} | {_pct(_row(rows, 'utkface-val')['real_called_fake'])} "
            f"| {round(clips['real_called_fake'] * n_clips)} / {round(clips['real_uncertain'] * n_clips)} of {n_clips} "
            f"| {round(fakes['fake_caught'] * fakes['n_fake'])} / {round(fakes['fake_uncertain'] * fakes['n_fake'])} of {fakes['n_fake']} "
            f"| {_auc(_row(rows, 'ffpp-frames'), mark_unseen=False)} |"
        )
    return "\n".join(lines)


def compare_recipes(
    names: list[str], budget: Budget, *, out: str | Path, data_root: str, sources_cache: str, frames: int
) -> str:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in [BASELINE, *names]:
        log.info("recipe %s", name)
        results[name] = run_recipe(name, budget, out=out, data_root=data_root, sources_cache=sources_cache, frames=frames)
        table = comparison_table(results)
        (out / "comparison.md").write_text(table + "\n")  # written after each recipe: progress survives
    return table
