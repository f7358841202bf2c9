"""Descriptive statistics of a window of predictions.

Quantiles follow NumPy's default ("linear") definition exactly: the warehouse returns either the
order statistics at ranks ``floor(q * (n - 1))`` and the next one, interpolated here, or (DuckDB)
the quantiles themselves from an exact aggregate with the same definition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from mlmon.metrics.histogram import ScoreHistogram
from mlmon.metrics.results import MetricFields

# (metric suffix, probability) of the quantiles mlmon reports
QUANTILES: tuple[tuple[str, float], ...] = (
    ("p05", 0.05),
    ("p25", 0.25),
    ("median", 0.50),
    ("p75", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
)


#: the quantiles a segment reports (``mlmon.segment.prediction.p50``, ``.p95``)
SEGMENT_QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.50), ("p95", 0.95))


def quantile_ranks(valid_count: int, quantiles: tuple[tuple[str, float], ...] = QUANTILES) -> set[int]:
    """0-based ranks of the sorted valid predictions needed to interpolate every reported quantile."""
    ranks: set[int] = set()
    if valid_count <= 0:
        return ranks
    for _, q in quantiles:
        lo = math.floor(q * (valid_count - 1))
        ranks.update((lo, min(lo + 1, valid_count - 1)))
    return ranks


@dataclass(frozen=True)
class PredictionAggregate:
    """What the warehouse returns for one (model, model_version, window).

    ``count`` counts every row; the other fields describe the valid rows only (finite, in [0, 1]).
    ``mode_count`` is the number of rows equal to the most frequent valid value, ``order_stats`` maps
    the ranks of :func:`quantile_ranks` to their values (or ``quantiles`` maps the :data:`QUANTILES`
    names to values an engine computed exactly), ``histogram`` is the drift summary.
    """

    count: int
    valid_count: int
    mean: float | None
    stddev: float | None
    minimum: float | None
    maximum: float | None
    mode_count: int
    order_stats: Mapping[int, float] = field(default_factory=dict)
    histogram: ScoreHistogram = field(default_factory=ScoreHistogram.empty)
    quantiles: Mapping[str, float] | None = None

    @classmethod
    def from_values(cls, values: npt.ArrayLike) -> PredictionAggregate:
        """Aggregate raw predictions in memory with the warehouse's rules (small data, tests)."""
        arr = np.asarray(values, dtype=np.float64)
        valid = np.sort(arr[(arr >= 0.0) & (arr <= 1.0)])
        n = int(valid.size)
        return cls(
            count=int(arr.size),
            valid_count=n,
            mean=float(valid.mean()) if n else None,
            stddev=float(valid.std(ddof=1)) if n > 1 else None,
            minimum=float(valid[0]) if n else None,
            maximum=float(valid[-1]) if n else None,
            mode_count=int(np.unique(valid, return_counts=True)[1].max()) if n else 0,
            order_stats={r: float(valid[r]) for r in quantile_ranks(n)},
            histogram=ScoreHistogram.from_values(valid),
        )


@dataclass(frozen=True)
class PredictionStats:
    """Descriptive statistics of one window; ``None`` where a statistic is undefined."""

    count: int
    invalid_count: int
    mean: float | None
    stddev: float | None
    minimum: float | None
    maximum: float | None
    quantiles: dict[str, float]
    same_value_ratio: float | None

    #: metric suffix -> field, for the scalar statistics (the quantiles follow, named as in :data:`QUANTILES`)
    SCALARS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("count", "count"), ("invalid_count", "invalid_count"), ("mean", "mean"), ("stddev", "stddev"),
        ("min", "minimum"), ("max", "maximum"), ("same_value_ratio", "same_value_ratio"),
    )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every metric suffix the statistics can report, in order."""
        return (*(name for name, _ in cls.SCALARS), *(name for name, _ in QUANTILES))

    def values(self) -> dict[str, float]:
        """Metric suffix -> value, for the defined statistics only."""
        out = {name: getattr(self, attr) for name, attr in self.SCALARS}
        out.update(self.quantiles)
        return {name: float(v) for name, v in out.items() if v is not None}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def interpolate_quantiles(
    valid_count: int, order_stats: Mapping[int, float], quantiles: tuple[tuple[str, float], ...] = QUANTILES
) -> dict[str, float]:
    """NumPy-linear quantiles from the order statistics at :func:`quantile_ranks`."""
    out: dict[str, float] = {}
    if valid_count <= 0:
        return out
    for name, q in quantiles:
        pos = q * (valid_count - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, valid_count - 1)
        x_lo, x_hi = order_stats[lo], order_stats[hi]
        out[name] = x_lo + (pos - lo) * (x_hi - x_lo)
    return out


def describe(agg: PredictionAggregate) -> PredictionStats:
    """Turn a window aggregate into the reported statistics.

    Sample standard deviation (ddof=1) needs two valid rows; every statistic but ``count`` and
    ``invalid_count`` needs one.
    """
    has_rows = agg.valid_count > 0
    return PredictionStats(
        count=agg.count,
        invalid_count=agg.count - agg.valid_count,
        mean=_finite(agg.mean) if has_rows else None,
        stddev=_finite(agg.stddev) if agg.valid_count > 1 else None,
        minimum=_finite(agg.minimum) if has_rows else None,
        maximum=_finite(agg.maximum) if has_rows else None,
        quantiles=(
            dict(agg.quantiles) if agg.quantiles is not None and has_rows
            else interpolate_quantiles(agg.valid_count, agg.order_stats)
        ),
        same_value_ratio=agg.mode_count / agg.valid_count if has_rows else None,
    )


@dataclass(frozen=True)
class SegmentPredictionStats(MetricFields):
    """What one segment value of one window reports (``mlmon.segment.prediction.*``); ``None``: undefined."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    same_value_ratio: float | None


def describe_segment(agg: PredictionAggregate) -> SegmentPredictionStats:
    """A segment's statistics from its aggregate (``quantiles`` or ``order_stats`` of :data:`SEGMENT_QUANTILES`)."""
    has_rows = agg.valid_count > 0
    if not has_rows:
        quantiles: Mapping[str, float] = {}
    elif agg.quantiles is not None:
        quantiles = agg.quantiles
    else:
        quantiles = interpolate_quantiles(agg.valid_count, agg.order_stats, SEGMENT_QUANTILES)
    return SegmentPredictionStats(
        count=agg.count,
        mean=_finite(agg.mean) if has_rows else None,
        p50=quantiles.get("p50"),
        p95=quantiles.get("p95"),
        same_value_ratio=agg.mode_count / agg.valid_count if has_rows else None,
    )
