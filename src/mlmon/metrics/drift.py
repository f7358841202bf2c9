"""Distribution drift between a reference window and the current one, from score histograms.

* ``psi``: Population Stability Index over ``bins`` quantile bins of the reference (bin edges on the
  drift grid of :mod:`mlmon.metrics.histogram`, so both sides are counted exactly), with empty-bin
  shares replaced by ``eps`` as Evidently does: ``sum((cur - ref) * ln(cur / ref))``.
* ``ks_statistic``: the two-sample Kolmogorov-Smirnov statistic ``sup |F_ref - F_cur|`` evaluated on
  the drift grid, i.e. SciPy's ``ks_2samp`` on the predictions' grid buckets.

* ``mean_ratio``: the mean of the current valid predictions over the reference's (exact: from their sums).
* ``p50_ratio``, ``p95_ratio``: the ratio of the two sides' quantiles on the drift grid: each side's q-quantile
  is the centre (in logit) of the grid bucket holding it (the inverted CDF of NumPy's ``quantile``), so the
  ratio is within one bucket (about 2 % of the odds) of the exact one, and pooled windows need no raw rows.

Each returns ``None`` when either side has no valid rows: no reference means no drift value, not 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mlmon.metrics.histogram import DRIFT_SCALE, LOGIT_RANGE, ScoreHistogram

PSI_BINS = 10
#: the drift metrics a window reports against its reference
DRIFT_METRICS = ("psi", "ks_statistic", "mean_ratio", "p50_ratio", "p95_ratio")
PSI_EPS = 1e-4


@dataclass(frozen=True)
class DriftSample:
    """One side of a comparison: the histogram of its valid predictions and their sum (for the exact mean)."""

    histogram: ScoreHistogram
    total: float

    @property
    def rows(self) -> int:
        """Valid predictions summarised."""
        return self.histogram.total

    @property
    def mean(self) -> float | None:
        """Their mean (None without rows)."""
        return self.total / self.rows if self.rows else None

    @classmethod
    def merge(cls, samples: list[DriftSample]) -> DriftSample:
        """The union of ``samples`` (pooled windows, or a reference's model versions)."""
        return cls(ScoreHistogram.merge(s.histogram for s in samples), float(sum(s.total for s in samples)))


def bucket_value(bucket: npt.ArrayLike) -> np.ndarray:
    """The score at the centre (in logit) of each drift-grid bucket."""
    logit = (np.asarray(bucket, dtype=np.float64) + 0.5) / DRIFT_SCALE - LOGIT_RANGE
    out: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
    return out


def histogram_quantile(histogram: ScoreHistogram, q: float) -> float | None:
    """The ``q``-quantile of ``histogram`` on the grid: the centre of the first bucket whose cumulative share
    reaches ``q`` (None when empty)."""
    if histogram.total == 0:
        return None
    cum = np.cumsum(histogram.count)
    index = int(np.searchsorted(cum, q * histogram.total, side="left"))
    return float(bucket_value(histogram.bucket[min(index, histogram.bucket.size - 1)]))


def _ratio(current: float | None, reference: float | None) -> float | None:
    if current is None or reference is None or reference <= 0:
        return None
    return current / reference


def drift_values(reference: DriftSample, current: DriftSample) -> dict[str, float | None]:
    """Every drift metric of ``current`` against ``reference`` (:data:`DRIFT_METRICS`)."""
    ref, cur = reference.histogram, current.histogram
    return {
        "psi": psi(ref, cur),
        "ks_statistic": ks_statistic(ref, cur),
        "mean_ratio": _ratio(current.mean, reference.mean),
        "p50_ratio": _ratio(histogram_quantile(cur, 0.5), histogram_quantile(ref, 0.5)),
        "p95_ratio": _ratio(histogram_quantile(cur, 0.95), histogram_quantile(ref, 0.95)),
    }


def _aligned(reference: ScoreHistogram, current: ScoreHistogram) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = np.union1d(reference.bucket, current.bucket)
    ref = np.zeros(grid.size, np.int64)
    cur = np.zeros(grid.size, np.int64)
    ref[np.searchsorted(grid, reference.bucket)] = reference.count
    cur[np.searchsorted(grid, current.bucket)] = current.count
    return grid, ref, cur


def psi_edges(reference: ScoreHistogram, bins: int = PSI_BINS) -> np.ndarray:
    """Bucket indices closing each bin but the last: the reference's i/bins quantiles (inverted CDF)."""
    cum = np.cumsum(reference.count) / reference.total
    targets = np.arange(1, bins) / bins
    # smallest bucket whose cumulative share reaches the target (with a little float slack)
    idx = np.searchsorted(cum, targets - 1e-12, side="left")
    return np.unique(reference.bucket[np.minimum(idx, reference.bucket.size - 1)])


def psi(reference: ScoreHistogram, current: ScoreHistogram, bins: int = PSI_BINS, eps: float = PSI_EPS) -> float | None:
    """Population Stability Index of ``current`` against ``reference``."""
    if reference.total == 0 or current.total == 0:
        return None
    edges = psi_edges(reference, bins)
    ref_bins = np.bincount(np.searchsorted(edges, reference.bucket, side="left"), reference.count, edges.size + 1)
    cur_bins = np.bincount(np.searchsorted(edges, current.bucket, side="left"), current.count, edges.size + 1)
    return psi_from_counts(ref_bins, cur_bins, eps)


def psi_from_counts(reference: npt.ArrayLike, current: npt.ArrayLike, eps: float = PSI_EPS) -> float | None:
    """PSI of two count vectors over the same bins (empty shares -> ``eps``); ``None`` if a side is empty."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return None
    ref_share = ref / ref.sum()
    cur_share = cur / cur.sum()
    ref_share = np.where(ref_share == 0, eps, ref_share)
    cur_share = np.where(cur_share == 0, eps, cur_share)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def ks_statistic(reference: ScoreHistogram, current: ScoreHistogram) -> float | None:
    """Kolmogorov-Smirnov statistic on the bucket grid."""
    if reference.total == 0 or current.total == 0:
        return None
    _, ref, cur = _aligned(reference, current)
    diff = np.cumsum(ref) / reference.total - np.cumsum(cur) / current.total
    return float(np.max(np.abs(diff)))
