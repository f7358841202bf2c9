"""Online quality and reproducibility math against scikit-learn / NumPy on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from tests.reference import online_quality_reference, reproducibility_reference

from mlmon.metrics.quality import OfflineMetrics, QualityAggregate, online_quality
from mlmon.metrics.reproducibility import ReproducibilityAggregate, reproducibility

RNG = np.random.default_rng(21)
NAN = float("nan")


def _random(n: int, decimals: int | None = None) -> tuple[list[float], list[float]]:
    p = 1 / (1 + np.exp(-RNG.normal(-2.5, 1.0, n)))
    if decimals is not None:
        p = np.round(p, decimals)
    y = (RNG.random(n) < p).astype(float)
    return list(p), list(y)


QUALITY_CASES = {
    "ties_everywhere": ([0.1, 0.1, 0.1, 0.4, 0.4, 0.4, 0.9, 0.9], [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]),
    "rounded_scores": _random(3000, decimals=2),
    "continuous_scores": _random(2000),
    "extreme_scores_clipped": ([0.0, 1.0, 0.0, 1.0, 0.5], [1.0, 0.0, 0.0, 1.0, 1.0]),
    "invalid_predictions_and_labels": ([0.2, NAN, 1.5, -0.1, 0.7, 0.3, 0.6], [1.0, 1.0, 0.0, 1.0, 2.0, 0.0, 1.0]),
    "unlabeled_rows": ([0.2, 0.3, 0.4, 0.5], [1.0, NAN, 0.0, NAN]),
    "one_class_negative": ([0.2, 0.3, 0.3], [0.0, 0.0, 0.0]),
    "one_class_positive": ([0.2, 0.9], [1.0, 1.0]),
    "single_row": ([0.42], [1.0]),
    "no_labels": ([0.2, 0.3], [NAN, NAN]),
    "empty": ([], []),
}


def _labels_for_reference(labels: list[float]) -> list[float | str | None]:
    return [None if np.isnan(v) else (float(v) if v in (0.0, 1.0) else "invalid") for v in labels]


@pytest.mark.parametrize("offline", [None, (0.31, 0.71)], ids=["no_offline", "offline"])
@pytest.mark.parametrize(("predictions", "labels"), list(QUALITY_CASES.values()), ids=list(QUALITY_CASES))
def test_online_quality_matches_sklearn(predictions, labels, offline) -> None:
    """Every defined metric equals scikit-learn's; undefined ones (one class, no labels) are absent."""
    agg = QualityAggregate.from_values(predictions, labels)
    got = online_quality(agg, OfflineMetrics(*offline) if offline else None).values()
    want = online_quality_reference(predictions, _labels_for_reference(labels), offline)
    assert got.keys() == want.keys()
    for name, value in want.items():
        tol = 1e-4 if name in ("auc", "auc_vs_offline") else 1e-12  # AUC: the spec's bound; it is exact here
        assert got[name] == pytest.approx(value, rel=1e-9, abs=tol), name


def test_auc_is_exact_with_ties() -> None:
    """The rank-sum AUC equals roc_auc_score to float precision, ties counted half."""
    from sklearn.metrics import roc_auc_score

    p, y = _random(5000, decimals=3)
    agg = QualityAggregate.from_values(p, y)
    assert online_quality(agg).auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_one_class_window_skips_auc_calibration_ne() -> None:
    """A window with positives only keeps logloss, Brier and the positive rate, drops the rest."""
    q = online_quality(QualityAggregate.from_values([0.2, 0.9], [1.0, 1.0]), OfflineMetrics(0.3, 0.7))
    assert q.one_class and q.auc is None and q.calibration is None and q.normalized_entropy is None
    assert q.auc_vs_offline is None and q.logloss_vs_offline is not None and q.positive_rate == 1.0


def test_offline_without_values_is_ignored() -> None:
    """A training run with NULL or zero valid_logloss gives no ratio rather than inf."""
    agg = QualityAggregate.from_values([0.2, 0.8], [0.0, 1.0])
    q = online_quality(agg, OfflineMetrics(valid_logloss=0.0, valid_auc=None))
    assert q.logloss_vs_offline is None and q.auc_vs_offline is None


REPRO_CASES = {
    "all_equal": ([0.1, 0.2, 0.3], [[0.1], [0.2], [0.3]]),
    "within_and_outside_tolerance": ([0.1, 0.2, 0.3, 0.5], [[0.1 + 5e-7], [0.2 + 2e-5], [0.3 + 1e-4], [0.6]]),
    "missing_and_null_replays": ([0.1, 0.2, 0.3], [[], [None], [0.3]]),
    "duplicate_replays_disagree": ([0.1, 0.2], [[0.1, 0.1], [0.2, 0.25]]),
    "invalid_replay_value": ([0.1, 0.2], [[NAN], [1.5, 0.2]]),
    "invalid_online_excluded": ([NAN, 1.5, 0.4], [[0.1], [0.5], [0.4]]),
    "nothing_replayed": ([0.1, 0.2], [[], []]),
    "empty": ([], []),
}


@pytest.mark.parametrize(("online", "replays"), list(REPRO_CASES.values()), ids=list(REPRO_CASES))
def test_reproducibility_matches_numpy_isclose(online, replays) -> None:
    """Rate, counts and differences equal a numpy.isclose reference (|a - b| <= atol + rtol * |b|)."""
    agg = ReproducibilityAggregate.from_values(online, replays, atol=1e-6, rtol=1e-4)
    got = reproducibility(agg).values()
    want = reproducibility_reference(online, replays, atol=1e-6, rtol=1e-4)
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name


@pytest.mark.parametrize(
    ("predictions", "labels"),
    [
        ([0.2] * 9, [1.0] * 9),            # 0.2^9 = 5e-7: implausible
        ([0.2] * 8, [1.0] * 8),            # 0.2^8 = 2.6e-6: plausible
        ([0.01] * 5, [0.0] * 5),           # a quiet rare-event hour with no positive
        ([0.05] * 300, [0.0] * 300),       # 0.95^300 = 2e-7: implausible
        ([0.3, 0.9, 0.02], [1.0, 0.0, 1.0]),  # both classes: never
        ([], []),                          # nothing labeled: never
    ],
    ids=["nine-clicks-at-20pc", "eight-clicks-at-20pc", "quiet-hour", "no-click-in-300", "both-classes", "empty"],
)
def test_one_class_is_implausible_below_one_in_a_million(predictions, labels) -> None:
    """One class only, and the predictions give that outcome a probability (NumPy's product) below 1e-6."""
    from mlmon.metrics.quality import LabelBalance

    agg = QualityAggregate.from_values(predictions, labels)
    balance = LabelBalance(agg.labeled_count, agg.positives, agg.sum_prediction, agg.sum_logloss)
    p, y = np.asarray(predictions, dtype=float), np.asarray(labels, dtype=float)
    one_class = p.size > 0 and len(set(y)) == 1
    assert balance.implausible_one_class == (one_class and float(np.prod(np.where(y == 1, p, 1 - p))) < 1e-6)
