"""Calibration: a temperature that makes probabilities mean what they say, and the two
thresholds of the `uncertain` band.

Temperature scaling (Guo et al., 2017) divides the two logits by one number T fitted on
validation data to minimise the negative log-likelihood; it changes no ranking (ROC AUC stays
the same) but turns an over-confident 0.999 into an honest 0.9. The expected calibration error
(ECE) is reported before and after: the mean gap between predicted probability and observed
frequency of fakes over ten equal-width bins, weighted by the bins' sizes.

Thresholds: the fake threshold is the lowest score at which at most `max_real_called_fake` of the
real validation files would be called fake; the real threshold the highest score at which at
most `max_fake_called_real` of the fakes would be called real (never above the fake threshold).
Between the two the verdict is "uncertain".
"""

from __future__ import annotations

import numpy as np

MAX_REAL_CALLED_FAKE = 0.02
MAX_FAKE_CALLED_REAL = 0.10


def _margins(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return logits[:, 1] - logits[:, 0]


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Fake probabilities from (N, 2) logits at a temperature: sigmoid of the scaled margin."""
    return 1.0 / (1.0 + np.exp(-_margins(logits) / temperature))


def negative_log_likelihood(labels: np.ndarray, logits: np.ndarray, temperature: float) -> float:
    z = _margins(logits) / temperature
    y = np.asarray(labels, dtype=np.float64)
    # log(1 + exp(-z)) for fakes, log(1 + exp(z)) for reals, computed stably
    return float(np.mean(np.logaddexp(0.0, np.where(y == 1, -z, z))))


def fit_temperature(labels: np.ndarray, logits: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises validation NLL (log grid, then refined)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    losses = [negative_log_likelihood(labels, logits, t) for t in grid]
    best = int(np.argmin(losses))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    fine = np.linspace(low, high, 41)
    return float(fine[int(np.argmin([negative_log_likelihood(labels, logits, t) for t in fine]))])


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(p[inside].mean() - y[inside].mean())
    return float(total)


def choose_thresholds(
    labels: np.ndarray,
    probs: np.ndarray,
    *,
    max_real_called_fake: float = MAX_REAL_CALLED_FAKE,
    max_fake_called_real: float = MAX_FAKE_CALLED_REAL,
) -> tuple[float, float]:
    """(real threshold, fake threshold) from validation scores, as the module describes."""
    y = np.asarray(labels)
    p = np.asarray(probs, dtype=np.float64)
    reals, fakes = np.sort(p[y == 0]), np.sort(p[y == 1])
    if reals.size == 0 or fakes.size == 0:
        raise ValueError("choosing thresholds needs real and fake validation files")
    allowed = int(np.floor(max_real_called_fake * reals.size))  # reals that may score >= threshold
    fake_threshold = float(np.nextafter(reals[reals.size - 1 - allowed], 1.0)) if allowed < reals.size else 0.0
    fake_threshold = min(max(fake_threshold, 1e-6), 1.0)
    allowed = int(np.floor(max_fake_called_real * fakes.size))  # fakes that may score < real threshold
    real_threshold = float(fakes[allowed]) if allowed < fakes.size else 1.0
    return min(real_threshold, fake_threshold), fake_threshold


def calibration_report(labels: np.ndarray, logits: np.ndarray, **limits: float) -> dict:
    """Temperature, ECE before and after, thresholds and what they leave, as plain values."""
    temperature = fit_temperature(labels, logits)
    raw, calibrated = probabilities(logits), probabilities(logits, temperature)
    threshold_real, threshold = choose_thresholds(labels, calibrated, **limits)
    y = np.asarray(labels)
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(y, raw),
        "ece_after": expected_calibration_error(y, calibrated),
        "nll_before": negative_log_likelihood(y, logits, 1.0),
        "nll_after": negative_log_likelihood(y, logits, temperature),
        "threshold_real": threshold_real,
        "threshold": threshold,
        "real_called_fake": float(np.mean(calibrated[y == 0] >= threshold)),
        "real_called_uncertain": float(np.mean((calibrated[y == 0] >= threshold_real) & (calibrated[y == 0] < threshold))),
        "fake_recall": float(np.mean(calibrated[y == 1] >= threshold)),
        "fake_called_real": float(np.mean(calibrated[y == 1] < threshold_real)),
        "n_real": int(np.sum(y == 0)),
        "n_fake": int(np.sum(y == 1)),
    }
