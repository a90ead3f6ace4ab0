"""Binary classification metrics over plain arrays (numpy only, no scikit-learn).

Conventions: label 1 is fake, the positive class; a higher score means "more likely fake"; a
file is predicted fake when its score is >= the threshold. Every function takes `y_true` (0/1)
and `scores` (finite floats) of the same non-zero length and raises ValueError otherwise.

Metrics that need both classes return None when one class is missing (an AUC over real files
alone means nothing), rather than a number that looks like a result. Ratios whose denominator is
zero (precision with no file predicted fake, recall with no fake file, F1 when both are 0) are
0.0, the usual reporting convention, so a model that never says "fake" scores 0 and not NaN.
"""

from __future__ import annotations

import numpy as np


def _check(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError("y_true and scores must be one-dimensional")
    if y.size == 0:
        raise ValueError("no samples: y_true and scores are empty")
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but scores has {s.size}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0 (real) and 1 (fake)")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite numbers (found NaN or infinity)")
    return y.astype(np.int64), s


def _cumulative_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when predicting fake at each distinct score, highest first.

    Tied scores are one threshold: they cross it together, which is what makes the ROC curve
    take a diagonal step through a tie.
    """
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_each_value = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(y)[last_of_each_value]
    fps = (last_of_each_value + 1) - tps
    return tps, fps, s[last_of_each_value]


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) with one point per distinct score, starting at (0, 0).

    thresholds[i] is the score at and above which files are called fake to reach point i; the
    first point uses +inf (nothing called fake). Raises ValueError unless both classes are present.
    """
    y, s = _check(y_true, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("a ROC curve needs both real (0) and fake (1) samples")
    tps, fps, thresholds = _cumulative_counts(y, s)
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    return fpr, tpr, np.r_[np.inf, thresholds]


def _midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values`, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], values.size]  # exclusive
    mean_rank = (starts + 1 + ends) / 2.0  # mean of the ranks starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y_true, scores) -> float | None:
    """Area under the ROC curve, or None when only one class is present.

    Computed as the Mann-Whitney U statistic with midranks: the probability that a random fake
    scores above a random real, ties counting one half. This equals the trapezoidal area under
    `roc_curve`.
    """
    y, s = _check(y_true, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = _midranks(s)[y == 1].sum()
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(y_true, scores) -> float | None:
    """Step-wise average precision: sum over thresholds of (recall gain) x precision there.

    None when there is no fake sample (recall is undefined). With fakes only it is 1.0.
    """
    y, s = _check(y_true, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        return None
    tps, fps, _ = _cumulative_counts(y, s)
    precision = tps / (tps + fps)
    recall_gain = np.diff(np.r_[0, tps]) / n_pos
    return float(np.sum(recall_gain * precision))


def equal_error_rate(y_true, scores) -> float | None:
    """The error rate where the false-positive and false-negative rates are equal.

    Found on the ROC curve (whose segments are reachable operating points) by linear
    interpolation between the two points where FNR - FPR changes sign. None with one class.
    """
    y, s = _check(y_true, scores)
    if y.min() == y.max():
        return None
    fpr, tpr, _ = roc_curve(y, s)
    gap = (1.0 - tpr) - fpr  # +1 at the first point, -1 at the last
    i = int(np.argmax(gap <= 0))
    if gap[i] == 0:
        return float(fpr[i])
    t = gap[i - 1] / (gap[i - 1] - gap[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def binary_metrics(y_true, scores, *, threshold: float) -> dict:
    """Every reported metric at `threshold`, as JSON-ready plain Python values.

    Keys: accuracy, precision, recall, f1, roc_auc, average_precision, eer (None where a class
    is missing), confusion_matrix {tn, fp, fn, tp}, n_real, n_fake, threshold.
    """
    y, s = _check(y_true, scores)
    predicted = s >= threshold
    actual = y == 1
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    fn = int(np.sum(~predicted & actual))
    tn = int(np.sum(~predicted & ~actual))
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / y.size,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(y, s),
        "average_precision": average_precision(y, s),
        "eer": equal_error_rate(y, s),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "n_real": tn + fp,
        "n_fake": tp + fn,
        "threshold": float(threshold),
    }
