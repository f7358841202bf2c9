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


def grid_quantile(values: list[float], q: float) -> float:
    """The centre (in logit) of the drift-grid bucket of NumPy's inverted-CDF quantile of the valid values."""
    bucket = drift_bucket(valid(values))
    b = float(np.quantile(bucket, q, method="inverted_cdf"))
    return float(1 / (1 + np.exp(-((b + 0.5) / 50 - 10))))


def drift_reference_values(reference: list[float], current: list[float]) -> dict[str, float]:
    """Every drift metric of ``current`` against ``reference``: PSI and KS on the grid, the valid means' ratio, the
    grid quantiles' ratios."""
    return {
        "psi": psi_on_grid(reference, current), "ks_statistic": ks_on_grid(reference, current),
        "mean_ratio": float(np.mean(valid(current)) / np.mean(valid(reference))),
        "p50_ratio": grid_quantile(current, 0.5) / grid_quantile(reference, 0.5),
        "p95_ratio": grid_quantile(current, 0.95) / grid_quantile(reference, 0.95),
    }


def label_of(rows: list[tuple[float, float | None]], cutoff: float, since: float) -> float | str | None:
    """A request's label under mlmon's rule: rows (label, label_ts) stamped in ``[since, cutoff)`` (the
    window's start less label_skew, its end plus label_delay; undated rows never count); positive if any
    0/1 row is 1; ``"invalid"`` if every such row is something else; None if none."""
    matured = [lab for lab, ts in rows if ts is not None and since <= ts < cutoff]
    valid_labels = [lab for lab in matured if lab in (0, 1)]
    if valid_labels:
        return float(max(valid_labels))
    return "invalid" if matured else None


def online_quality_reference(
    predictions: list[float], labels: list[float | str | None], offline: tuple[float, float] | None = None
) -> dict[str, float]:
    """mlmon.online.* for one window from raw predictions and resolved labels, with scikit-learn."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    p = np.asarray(predictions, dtype=float)
    ok = np.isfinite(p) & (p >= 0) & (p <= 1)
    labeled = [i for i in range(p.size) if ok[i] and isinstance(labels[i], float)]
    y = np.asarray([labels[i] for i in labeled], dtype=float)
    pv = p[labeled]
    out = {
        "labeled_count": float(len(labeled)),
        "invalid_prediction_count": float((~ok).sum()),
        "invalid_label_count": float(sum(1 for i in range(p.size) if ok[i] and labels[i] == "invalid")),
    }
    if ok.sum():
        out["label_coverage"] = len(labeled) / float(ok.sum())
    if not labeled:
        return out
    rate = float(y.mean())
    out.update({
        "positive_rate": rate,
        "mean_prediction": float(pv.mean()),
        "logloss": float(log_loss(y, pv, labels=[0, 1])),
        "brier": float(brier_score_loss(y, pv, labels=[0, 1])),
    })
    if 0 < rate < 1:
        auc = float(roc_auc_score(y, pv))
        out["auc"] = auc
        out["calibration"] = float(pv.mean()) / rate
        out["normalized_entropy"] = out["logloss"] / float(stats.entropy([rate, 1 - rate]))
        if offline is not None:
            out["auc_vs_offline"] = auc - offline[1]
    if offline is not None:
        out["logloss_vs_offline"] = out["logloss"] / offline[0]
    return out


def reproducibility_reference(
    online: list[float], replays: list[list[float | None]], atol: float, rtol: float
) -> dict[str, float]:
    """mlmon.reproducibility.* for one window, with numpy.isclose as the tolerance test."""
    checked = missing = reproduced = 0
    diffs: list[float] = []
    for p, rows in zip(online, replays, strict=True):
        if not (np.isfinite(p) and 0 <= p <= 1):
            continue
        values = [r for r in rows if r is not None]
        if not values:
            missing += 1
            continue
        checked += 1
        r = np.asarray(values, dtype=float)
        good = np.isfinite(r) & (r >= 0) & (r <= 1)
        if good.any():
            diffs.append(float(np.max(np.abs(p - r[good]))))
        reproduced += bool(good.all() and np.isclose(p, r, rtol=rtol, atol=atol).all())
    out = {"checked_count": float(checked), "missing_count": float(missing)}
    if checked:
        out["rate"] = reproduced / checked
    if diffs:
        out["mean_abs_diff"] = float(np.mean(diffs))
        out["max_abs_diff"] = float(np.max(diffs))
    return out
