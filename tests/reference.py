"""Independent reference implementations (NumPy/SciPy) the tests hold mlmon's numbers to."""

from __future__ import annotations

import numpy as np
from scipy import stats

from mlmon.metrics.histogram import drift_bucket

QUANTILE_NAMES = {"p05": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}


def valid(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v[np.isfinite(v) & (v >= 0) & (v <= 1)]


def prediction_stats(values: list[float]) -> dict[str, float]:
    """What mlmon.prediction.* should report for one window, from raw values."""
    raw = np.asarray(values, dtype=float)
    v = valid(raw)
    out: dict[str, float] = {"count": float(raw.size), "invalid_count": float(raw.size - v.size)}
    if v.size:
        out["mean"] = float(np.mean(v))
        out["min"] = float(np.min(v))
        out["max"] = float(np.max(v))
        out["same_value_ratio"] = float(np.unique(v, return_counts=True)[1].max() / v.size)
        for name, q in QUANTILE_NAMES.items():
            out[name] = float(np.quantile(v, q))
    if v.size > 1:
        out["stddev"] = float(np.std(v, ddof=1))
    return out


def ks_on_grid(reference: list[float], current: list[float]) -> float:
    """SciPy's two-sample KS statistic on the predictions' drift-grid buckets."""
    return float(stats.ks_2samp(drift_bucket(valid(reference)), drift_bucket(valid(current))).statistic)


def psi_on_grid(reference: list[float], current: list[float], bins: int = 10, eps: float = 1e-4) -> float:
    """PSI with the reference's decile bucket edges (inverted CDF), counted with np.histogram."""
    ref_b = drift_bucket(valid(reference))
    cur_b = drift_bucket(valid(current))
    edges = np.unique(np.quantile(ref_b, np.arange(1, bins) / bins, method="inverted_cdf"))
    # bins (-inf, e1], (e1, e2], ..., (ek, inf) on integer buckets == [.., e1 + 1), [e1 + 1, e2 + 1), ...
    hist_edges = np.concatenate([[-1], edges + 1, [10**9]]).astype(float)
    ref_n = np.histogram(ref_b, hist_edges)[0] / ref_b.size
    cur_n = np.histogram(cur_b, hist_edges)[0] / cur_b.size
    ref_n = np.where(ref_n == 0, eps, ref_n)
    cur_n = np.where(cur_n == 0, eps, cur_n)
    return float(np.sum((cur_n - ref_n) * np.log(cur_n / ref_n)))
