"""Metric functions against NumPy/SciPy on data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.reference import ks_on_grid, prediction_stats, psi_on_grid

from mlmon.metrics.descriptive import PredictionAggregate, describe
from mlmon.metrics.drift import ks_statistic, psi
from mlmon.metrics.histogram import DRIFT_BUCKETS, ScoreHistogram, drift_bucket

RNG = np.random.default_rng(12)

CASES = {
    "ties": [0.1, 0.1, 0.1, 0.2, 0.2, 0.3, 0.5, 0.5, 0.9],
    "nan_inf_out_of_range": [0.2, np.nan, np.inf, -np.inf, -0.1, 1.5, 0.4, 0.0, 1.0],
    "single_row": [0.37],
    "constant_model": [0.0731] * 50,
    "random_ctr": list(1 / (1 + np.exp(-(RNG.normal(-3.5, 1.0, 2000))))),
    "rounded_scores": list(np.round(RNG.uniform(0, 1, 3000), 3)),
    "two_rows": [0.25, 0.75],
}


def _stats_dict(values: list[float]) -> dict[str, float]:
    s = describe(PredictionAggregate.from_values(values))
    out: dict[str, float] = {"count": s.count, "invalid_count": s.invalid_count, **s.quantiles}
    for name, value in (
        ("mean", s.mean), ("stddev", s.stddev), ("min", s.minimum), ("max", s.maximum),
        ("same_value_ratio", s.same_value_ratio),
    ):
        if value is not None:
            out[name] = value
    return out


@pytest.mark.parametrize("values", list(CASES.values()), ids=list(CASES))
def test_descriptive_stats_match_numpy(values: list[float]) -> None:
    """Every statistic equals NumPy's on the valid rows; undefined ones are absent, not zero."""
    got = _stats_dict(values)
    want = prediction_stats(values)
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name


def test_empty_window_reports_only_counts() -> None:
    """No rows: count 0, nothing else."""
    s = describe(PredictionAggregate.from_values([]))
    assert (s.count, s.invalid_count, s.mean, s.stddev, s.quantiles, s.same_value_ratio) == (0, 0, None, None, {}, None)


def test_all_invalid_window_counts_them() -> None:
    """Only invalid rows: count and invalid_count, no statistics."""
    s = describe(PredictionAggregate.from_values([np.nan, 2.0, -1.0]))
    assert (s.count, s.invalid_count, s.mean, s.same_value_ratio) == (3, 3, None, None)


def test_constant_model_has_same_value_ratio_one() -> None:
    """A model stuck at one value: ratio 1.0, stddev 0, every quantile that value."""
    s = describe(PredictionAggregate.from_values([0.25] * 7))
    assert s.same_value_ratio == 1.0
    assert s.stddev == 0.0
    assert set(s.quantiles.values()) == {0.25}


def test_drift_bucket_grid_bounds() -> None:
    """0 and 1 go to the end buckets; the grid is monotone in p."""
    p = np.array([0.0, 1e-9, 0.01, 0.5, 0.99, 1 - 1e-9, 1.0])
    b = drift_bucket(p)
    assert b[0] == 0 and b[-1] == DRIFT_BUCKETS - 1
    assert np.all(np.diff(b) >= 0)
    assert b[3] == DRIFT_BUCKETS // 2


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        (RNG.beta(2, 30, 4000), RNG.beta(2, 30, 3000)),
        (RNG.beta(2, 30, 4000), RNG.beta(4, 30, 3000)),
        (RNG.beta(2, 5, 500), np.full(200, 0.3)),
        (np.round(RNG.uniform(0, 1, 1000), 2), np.round(RNG.uniform(0.2, 1, 800), 2)),
    ],
    ids=["same", "shifted", "collapsed", "ties"],
)
def test_psi_and_ks_match_reference(ref: np.ndarray, cur: np.ndarray) -> None:
    """PSI equals a NumPy histogram PSI on the same bins; KS equals SciPy's ks_2samp on the grid."""
    r, c = ScoreHistogram.from_values(ref), ScoreHistogram.from_values(cur)
    assert psi(r, c) == pytest.approx(psi_on_grid(list(ref), list(cur)), rel=1e-12, abs=1e-15)
    assert ks_statistic(r, c) == pytest.approx(ks_on_grid(list(ref), list(cur)), rel=1e-12, abs=1e-15)


def test_identical_distributions_have_no_drift() -> None:
    """Same data on both sides: PSI 0, KS 0."""
    h = ScoreHistogram.from_values(RNG.beta(2, 20, 1000))
    assert psi(h, h) == 0.0
    assert ks_statistic(h, h) == 0.0


def test_disjoint_distributions_have_ks_one() -> None:
    """No overlap at all: KS is 1."""
    assert ks_statistic(ScoreHistogram.from_values([0.01] * 10), ScoreHistogram.from_values([0.9] * 10)) == 1.0


def test_drift_without_reference_is_undefined() -> None:
    """An empty side gives None, never 0."""
    h = ScoreHistogram.from_values([0.1, 0.2])
    assert psi(ScoreHistogram.empty(), h) is None
    assert ks_statistic(h, ScoreHistogram.from_values([np.nan])) is None


def test_merge_adds_counts() -> None:
    """Merging the histograms of two halves gives the histogram of the whole."""
    values = RNG.beta(2, 10, 999)
    merged = ScoreHistogram.merge([ScoreHistogram.from_values(values[:400]), ScoreHistogram.from_values(values[400:])])
    whole = ScoreHistogram.from_values(values)
    assert np.array_equal(merged.bucket, whole.bucket) and np.array_equal(merged.count, whole.count)
    assert math.isclose(merged.total, 999)
