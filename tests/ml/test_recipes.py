"""The recipe comparison (ml/recipes.py): every recipe gets the same budget, and the table says
what users would see on each source."""

import json

from ml.training_data import FAKES_MODES
from ml.recipes import BASELINE, RECIPES, Budget, comparison_table, recipe_config, run_recipe


def _rows(*, dfdc_auc=0.95, inswapper_trained=False, clips_fake=1, clips_uncertain=3):
    def row(name, *, trained=False, auc=None, real_called_fake=None, real_uncertain=None, n_real=0, n_fake=0,
            fake_caught=None, fake_uncertain=None):
        return {"name": name, "trained_on": trained, "roc_auc": auc, "n_real": n_real, "n_fake": n_fake,
                "real_called_fake": real_called_fake, "real_uncertain": real_uncertain,
                "fake_caught": fake_caught, "fake_uncertain": fake_uncertain}

    return [
        row("dfdc-val", trained=True, auc=dfdc_auc),
        row("inswapper-val", trained=inswapper_trained, auc=0.64),
        row("celebdf-val", real_called_fake=0.02),
        row("utkface-val", real_called_fake=0.072),
        row("videos-real", n_real=29, real_called_fake=clips_fake / 29, real_uncertain=clips_uncertain / 29),
        row("videos-fake", n_fake=2, fake_caught=0.5, fake_uncertain=0.5),
        row("ffpp-frames", auc=None),
    ]


def test_every_recipe_gets_the_same_start_schedule_and_cap(tmp_path):
    budget = Budget(init="start.pt", epochs=2, lr=1e-5, max_per_source=100)
    configs = {
        name: recipe_config(name, recipe, budget, out=tmp_path / name, data_root="data", sources_cache="cache")
        for name, recipe in RECIPES.items()
    }
    for config in configs.values():
        assert config.fakes in FAKES_MODES
        assert (config.init, config.epochs, config.lr, config.max_train) == ("start.pt", 2, 1e-5, 100)
        assert config.sources[0] == "dfdc" and not config.calibrate
    assert configs["reals-sbi"].sbi_landmarks and configs["reals-sbi"].fakes == "both"
    assert not configs["reals"].sbi_landmarks and configs["reals"].fakes == "real"
    assert "inswapper" not in configs["reals-sbi"].sources  # the leave-inswapper-out row of all-sbi
    assert configs["dfdc-224"].input_size == 224 and configs["dfdc"].input_size == 160
    assert configs["reals-224-framing"].framing_consistency == 0.3 and configs["reals-224"].framing_consistency == 0
    assert configs["reals-224-framing"].sources == configs["reals-224"].sources  # the term is the only difference
    assert configs["reals-224-framing-reals"].framing_on == "real" and configs["reals-224-framing"].framing_on == "all"
    assert configs["reals-224-shared"].shared_copies == 0.3 and configs["reals-224"].shared_copies == 0
    assert configs["reals-224-shared"].sources == configs["reals-224"].sources  # the shared copies the only difference


def test_the_table_marks_unseen_sources_and_counts_real_clips():
    table = comparison_table({BASELINE: _rows(), "all-sbi": _rows(inswapper_trained=True, clips_fake=0)})
    shipped, recipe = table.splitlines()[2:]
    assert shipped.startswith("| start | 0.950 | 0.640 (unseen) | 2.0% | 7.2% | 1 / 3 of 29 | 1 / 1 of 2 | - |")
    assert "| 0.640 |" in recipe and "| 0 / 3 of 29 |" in recipe


def test_a_recipe_already_benchmarked_is_not_run_again(tmp_path):
    folder = tmp_path / "reals" / "cross"
    folder.mkdir(parents=True)
    (folder / "cross.json").write_text(json.dumps({"rows": _rows(dfdc_auc=0.9)}))
    rows = run_recipe("reals", Budget(init="missing.pt"), out=tmp_path, data_root="nowhere", sources_cache="nowhere", frames=4)
    assert rows[0]["roc_auc"] == 0.9
