"""The metric functions against values worked out by hand on small arrays."""

import json

import numpy as np
import pytest

from ml.metrics import average_precision, binary_metrics, equal_error_rate, roc_auc, roc_curve

# Two reals (0.1, 0.4) and two fakes (0.35, 0.8).
Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]

# Ties: a real and a fake share 0.5.
Y_TIED = [0, 1, 0, 1]
S_TIED = [0.5, 0.5, 0.2, 0.9]


def test_the_roc_curve_has_one_point_per_distinct_score_from_the_origin():
    # Scores high to low: 0.8 (fake), 0.4 (real), 0.35 (fake), 0.1 (real); 2 fakes, 2 reals.
    # >= 0.8: tp 1 fp 0 -> (0, .5); >= 0.4: tp 1 fp 1 -> (.5, .5); >= 0.35: (.5, 1); >= 0.1: (1, 1)
    fpr, tpr, thresholds = roc_curve(Y, S)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])


def test_tied_scores_make_one_diagonal_step_on_the_roc_curve():
    # >= 0.9: (0, .5); >= 0.5 takes the tied real and fake together: tp 2 fp 1 -> (.5, 1); >= 0.2: (1, 1)
    fpr, tpr, thresholds = roc_curve(Y_TIED, S_TIED)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.5, 0.2])


def test_roc_auc_counts_the_pairs_a_fake_wins():
    # Fake 0.35 beats real 0.1, loses to 0.4; fake 0.8 beats both: 3 of 4 pairs.
    assert roc_auc(Y, S) == pytest.approx(0.75)


def test_roc_auc_counts_a_tie_as_half_a_win():
    # Fake 0.5: tie with real 0.5 (1/2), beats 0.2 (1); fake 0.9 beats both (2): 3.5 / 4.
    # Midranks: 0.2 -> 1, 0.5 and 0.5 -> 2.5, 0.9 -> 4; U = (2.5 + 4) - 2*3/2 = 3.5.
    # Trapezoids under (0,0) (0,.5) (.5,1) (1,1): 0 + .5 * (.5 + 1) / 2 + .5 * 1 = 0.875.
    assert roc_auc(Y_TIED, S_TIED) == pytest.approx(0.875)
    fpr, tpr, _ = roc_curve(Y_TIED, S_TIED)
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.875)


def test_roc_auc_of_all_equal_scores_is_one_half():
    assert roc_auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == pytest.approx(0.5)


def test_average_precision_sums_precision_over_recall_gains():
    # >= 0.8: recall 0 -> .5 at precision 1/1; >= 0.4: no gain; >= 0.35: recall .5 -> 1 at 2/3.
    # AP = .5 * 1 + .5 * 2/3 = 5/6.
    assert average_precision(Y, S) == pytest.approx(5 / 6)


def test_average_precision_takes_a_tie_as_one_threshold():
    # >= 0.9: gain .5 at precision 1; >= 0.5 (a fake and a real): gain .5 at 2/3. AP = 5/6.
    assert average_precision(Y_TIED, S_TIED) == pytest.approx(5 / 6)
    # All tied: one threshold, recall 1 at precision 2/4.
    assert average_precision([0, 1, 0, 1], [0.3] * 4) == pytest.approx(0.5)


def test_the_equal_error_rate_is_where_fpr_meets_fnr():
    # FNR - FPR along the curve: 1, .5, .5 - .5 = 0 at (.5, .5): EER = .5.
    assert equal_error_rate(Y, S) == pytest.approx(0.5)


def test_the_equal_error_rate_is_interpolated_along_a_segment():
    # FNR - FPR: (0, .5) -> .5 - 0 = .5; (.5, 1) -> 0 - .5 = -.5. Halfway: fpr .25, tpr .75, fnr .25.
    assert equal_error_rate(Y_TIED, S_TIED) == pytest.approx(0.25)


def test_a_perfect_classifier_scores_perfectly():
    y, s = [0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]
    assert roc_auc(y, s) == 1.0
    assert average_precision(y, s) == 1.0
    assert equal_error_rate(y, s) == 0.0
    m = binary_metrics(y, s, threshold=0.5)
    assert m["accuracy"] == m["precision"] == m["recall"] == m["f1"] == 1.0
    assert m["confusion_matrix"] == {"tn": 2, "fp": 0, "fn": 0, "tp": 2}


def test_an_inverted_classifier_scores_as_badly_as_possible():
    y, s = [0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]
    assert roc_auc(y, s) == 0.0
    # High to low: 0.9 real, 0.8 real (no recall), 0.2 fake (gain .5 at 1/3), 0.1 fake (gain .5 at 2/4).
    # AP = 1/6 + 1/4 = 5/12.
    assert average_precision(y, s) == pytest.approx(5 / 12)
    assert equal_error_rate(y, s) == 1.0
    m = binary_metrics(y, s, threshold=0.5)
    assert m["accuracy"] == 0.0
    assert m["confusion_matrix"] == {"tn": 0, "fp": 2, "fn": 2, "tp": 0}


def test_binary_metrics_at_a_threshold():
    # >= 0.5 calls only 0.8 fake: tp 1, fp 0, fn 1 (0.35), tn 2 (0.1, 0.4).
    # accuracy 3/4, precision 1/1, recall 1/2, f1 = 2 * 1 * .5 / 1.5 = 2/3.
    m = binary_metrics(Y, S, threshold=0.5)
    assert m["confusion_matrix"] == {"tn": 2, "fp": 0, "fn": 1, "tp": 1}
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["precision"] == pytest.approx(1.0)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["average_precision"] == pytest.approx(5 / 6)
    assert m["eer"] == pytest.approx(0.5)
    assert (m["n_real"], m["n_fake"], m["threshold"]) == (2, 2, 0.5)


def test_a_score_equal_to_the_threshold_is_called_fake():
    m = binary_metrics(Y, S, threshold=0.35)
    # >= 0.35: 0.8 and 0.35 (fakes) and 0.4 (real): tp 2, fp 1, fn 0, tn 1.
    assert m["confusion_matrix"] == {"tn": 1, "fp": 1, "fn": 0, "tp": 2}


def test_binary_metrics_are_plain_json_values():
    m = binary_metrics(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.4], dtype=np.float32), threshold=0.5)
    assert json.loads(json.dumps(m)) == m
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "eer", "threshold"):
        assert type(m[key]) is float, key
    for key in ("n_real", "n_fake"):
        assert type(m[key]) is int, key
    assert all(type(v) is int for v in m["confusion_matrix"].values())


def test_curve_metrics_are_none_when_only_reals_are_present():
    # Three reals; >= 0.5 calls 0.5 and 0.9 fake: fp 2, tn 1. Accuracy 1/3.
    # Precision 0 / 2 = 0; recall 0 / 0 and f1 are 0.0 by convention.
    m = binary_metrics([0, 0, 0], [0.1, 0.5, 0.9], threshold=0.5)
    assert m["roc_auc"] is None and m["average_precision"] is None and m["eer"] is None
    assert m["confusion_matrix"] == {"tn": 1, "fp": 2, "fn": 0, "tp": 0}
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)
    assert (m["n_real"], m["n_fake"]) == (3, 0)


def test_with_only_fakes_auc_and_eer_are_none_but_average_precision_is_one():
    assert roc_auc([1, 1], [0.2, 0.9]) is None
    assert equal_error_rate([1, 1], [0.2, 0.9]) is None
    assert average_precision([1, 1], [0.2, 0.9]) == 1.0
    with pytest.raises(ValueError, match="both"):
        roc_curve([1, 1], [0.2, 0.9])


def test_precision_is_zero_when_nothing_is_called_fake():
    m = binary_metrics([0, 1], [0.1, 0.2], threshold=0.9)
    assert m["confusion_matrix"] == {"tn": 1, "fp": 0, "fn": 1, "tp": 0}
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("y_true", "scores", "message"),
    [
        ([], [], "empty"),
        ([0, 1], [0.5], "2 values"),
        ([0, 2], [0.1, 0.2], "only 0"),
        ([0, 1], [0.1, float("nan")], "finite"),
    ],
)
def test_bad_input_raises_a_clear_error(y_true, scores, message):
    with pytest.raises(ValueError, match=message):
        binary_metrics(y_true, scores, threshold=0.5)


def test_roc_auc_agrees_with_counting_every_pair_and_with_the_curve_area():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    s = rng.integers(0, 10, 300) / 10  # many ties
    fakes, reals = s[y == 1], s[y == 0]
    wins = (fakes[:, None] > reals[None, :]).sum() + 0.5 * (fakes[:, None] == reals[None, :]).sum()
    expected = wins / (fakes.size * reals.size)
    assert roc_auc(y, s) == pytest.approx(expected)
    fpr, tpr, _ = roc_curve(y, s)
    assert np.trapezoid(tpr, fpr) == pytest.approx(expected)
