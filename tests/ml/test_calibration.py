import numpy as np
import pytest

from ml.calibration import (
    calibration_report,
    choose_thresholds,
    expected_calibration_error,
    fit_temperature,
    probabilities,
)


def overconfident_logits(n=4000, true_temperature=3.0, seed=0):
    """Labels drawn from sigmoid(margin / 3): a model whose logits are 3x too confident."""
    rng = np.random.default_rng(seed)
    margins = rng.normal(0, 6, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-margins / true_temperature))).astype(int)
    return labels, np.stack([np.zeros(n), margins], axis=1)


def test_the_fitted_temperature_finds_how_overconfident_the_model_is():
    labels, logits = overconfident_logits()
    assert fit_temperature(labels, logits) == pytest.approx(3.0, rel=0.1)


def test_calibration_lowers_the_calibration_error_and_keeps_the_ranking():
    labels, logits = overconfident_logits()
    report = calibration_report(labels, logits)
    assert report["ece_after"] < report["ece_before"] / 2
    raw, calibrated = probabilities(logits), probabilities(logits, report["temperature"])
    assert (np.argsort(raw, kind="stable") == np.argsort(calibrated, kind="stable")).all()


def test_the_fake_threshold_calls_at_most_two_percent_of_reals_fake():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(500, int), np.ones(500, int)]
    scores = np.r_[rng.beta(2, 5, 500), rng.beta(5, 2, 500)]
    low, high = choose_thresholds(labels, scores)
    assert np.mean(scores[labels == 0] >= high) <= 0.02
    assert np.mean(scores[labels == 1] < low) <= 0.10
    assert low <= high


def test_the_calibration_error_of_a_perfectly_calibrated_model_is_small():
    rng = np.random.default_rng(2)
    probs = rng.random(20000)
    labels = (rng.random(20000) < probs).astype(int)
    assert expected_calibration_error(labels, probs) < 0.02
