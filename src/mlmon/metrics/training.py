"""Training metrics of a model's latest version: lineage trends and feature breakdowns.

* Lineage compares the latest training run with the previous one (second latest by ``trained_at``)
  and with the "30-day" one (the latest run trained at least 30 days before the latest): relative
  changes ``new / old - 1``, omitted when either side or the denominator is missing or zero.
* Feature statistics describe the latest version's training data: share of missing rows (NULL; for
  numeric columns also NaN and +-inf), mean and sample stddev (numeric), distinct count, share of the
  most frequent value, PSI against the previous version and, for categorical features, the shares
  of the top-K values. PSI bins: numeric, ``(-inf, e1], (e1, e2], ..., (e9, inf)`` with ``e_k`` the
  previous version's k/10 quantiles (inverted CDF, duplicates merged); categorical, the previous
  version's top-K values plus one bin for every other value. Empty shares become ``PSI_EPS``.

Everything here works on the small aggregates the warehouse returns (see
:mod:`mlmon.warehouse.training`); :func:`feature_aggregates` builds the same aggregates from raw
values, for tests and in-memory data. Undefined values are ``None``, never 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from mlmon.metrics.drift import PSI_BINS, psi_from_counts
from mlmon.metrics.results import MetricFields

#: the "30-day" comparison: the latest run trained at least this long before the latest one
MONTH_SECONDS = 30 * 86400
#: the ``value`` tag of the share of every value outside the top K
OTHER_VALUE = "__other__"


@dataclass(frozen=True)
class TrainingRun:
    """One row of ``training_runs`` (``trained_at`` in Unix seconds; NULL or non-finite -> None)."""

    model_version: str
    trained_at: float
    train_rows: float | None = None
    valid_rows: float | None = None
    valid_logloss: float | None = None
    valid_auc: float | None = None


@dataclass(frozen=True)
class Lineage(MetricFields):
    """The lineage metrics of one model (``None``: undefined, not reported)."""

    rows: float | None = None
    valid_rows: float | None = None
    valid_logloss: float | None = None
    valid_auc: float | None = None
    rows_change_prev: float | None = None
    rows_change_30d: float | None = None
    valid_logloss_change_prev: float | None = None
    valid_auc_change_prev: float | None = None
    model_age_hours: float | None = None


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def relative_change(new: float | None, old: float | None) -> float | None:
    """``new / old - 1``; ``None`` when either is missing or non-finite, or ``old`` is 0."""
    new, old = _finite(new), _finite(old)
    if new is None or old is None or old == 0:
        return None
    return _finite(new / old - 1)


def lineage(latest: TrainingRun, previous: TrainingRun | None, month_ago: TrainingRun | None, now: float) -> Lineage:
    """Lineage metrics of the ``latest`` run against ``previous`` and ``month_ago`` (either may be absent)."""

    def field_of(run: TrainingRun | None, name: str) -> float | None:
        return None if run is None else _finite(getattr(run, name))

    return Lineage(
        rows=field_of(latest, "train_rows"),
        valid_rows=field_of(latest, "valid_rows"),
        valid_logloss=field_of(latest, "valid_logloss"),
        valid_auc=field_of(latest, "valid_auc"),
        rows_change_prev=relative_change(field_of(latest, "train_rows"), field_of(previous, "train_rows")),
        rows_change_30d=relative_change(field_of(latest, "train_rows"), field_of(month_ago, "train_rows")),
        valid_logloss_change_prev=relative_change(
            field_of(latest, "valid_logloss"), field_of(previous, "valid_logloss")
        ),
        valid_auc_change_prev=relative_change(field_of(latest, "valid_auc"), field_of(previous, "valid_auc")),
        model_age_hours=_finite((now - latest.trained_at) / 3600),
    )


@dataclass(frozen=True)
class FeatureAggregate:
    """What the warehouse returns for one (model, version, feature).

    ``count`` counts every row; the rest describe the valid rows (non-NULL; numeric: finite).
    ``at_or_below`` (numeric) holds, for each of the previous version's decile edges ``e_1..e_9`` in
    order, ``(e_k, valid rows <= e_k)``. ``value_counts`` (categorical) holds the counts of the
    values the query returned (this version's top K and, for the latest version, the previous
    version's top K); ``top_values`` is this version's top K, most frequent first, ties by value.
    """

    count: int
    valid_count: int
    mean: float | None = None
    stddev: float | None = None
    distinct_count: int = 0
    mode_count: int = 0
    at_or_below: tuple[tuple[float, int], ...] = ()
    value_counts: Mapping[str, int] = field(default_factory=dict)
    top_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeatureStats(MetricFields):
    """The feature metrics of one (model, feature) of the latest version (``None``: not reported)."""

    null_ratio: float | None = None
    mean: float | None = None
    stddev: float | None = None
    distinct_count: float | None = None
    same_value_ratio: float | None = None
    psi_prev: float | None = None
    value_shares: Mapping[str, float] = field(default_factory=dict)

    #: one series per value, sent apart
    NOT_METRICS: ClassVar[frozenset[str]] = frozenset({"value_shares"})


class Counts(Protocol):
    """What the PSI and share functions read of an aggregate (a training version's or a serving window's)."""

    @property
    def valid_count(self) -> int: ...
    @property
    def at_or_below(self) -> tuple[tuple[float, int], ...]: ...
    @property
    def value_counts(self) -> Mapping[str, int]: ...
    @property
    def top_values(self) -> tuple[str, ...]: ...


def numeric_psi(latest: Counts, previous: Counts) -> float | None:
    """PSI over the previous version's decile bins (duplicate edges merged)."""
    if latest.valid_count == 0 or previous.valid_count == 0:
        return None
    edges = sorted({e for e, _ in previous.at_or_below})
    prev_cum = dict(previous.at_or_below)
    cur_cum = dict(latest.at_or_below)

    def bins(cum: Mapping[float, int], total: int) -> np.ndarray:
        return np.diff([0, *(cum.get(e, 0) for e in edges), total])

    return psi_from_counts(bins(prev_cum, previous.valid_count), bins(cur_cum, latest.valid_count))


def categorical_psi(latest: Counts, previous: Counts) -> float | None:
    """PSI over the previous version's top-K values plus one bin for every other value."""
    if latest.valid_count == 0 or previous.valid_count == 0:
        return None

    def bins(agg: Counts) -> list[int]:
        counts = [agg.value_counts.get(v, 0) for v in previous.top_values]
        return [*counts, agg.valid_count - sum(counts)]

    return psi_from_counts(bins(previous), bins(latest))


def value_shares(latest: Counts) -> dict[str, float]:
    """Share of the valid rows of each top-K value, plus :data:`OTHER_VALUE` when other values exist."""
    if latest.valid_count == 0:
        return {}
    shares = {v: latest.value_counts.get(v, 0) / latest.valid_count for v in latest.top_values}
    rest = latest.valid_count - sum(latest.value_counts.get(v, 0) for v in latest.top_values)
    if rest > 0:
        shares[OTHER_VALUE] = rest / latest.valid_count
    return shares


def feature_stats(latest: FeatureAggregate, previous: FeatureAggregate | None, categorical: bool) -> FeatureStats:
    """Feature metrics of the latest version (``previous`` absent: no PSI)."""
    n, valid = latest.count, latest.valid_count
    psi: float | None = None
    if previous is not None:
        psi = categorical_psi(latest, previous) if categorical else numeric_psi(latest, previous)
    return FeatureStats(
        null_ratio=(n - valid) / n if n else None,
        mean=None if categorical else _finite(latest.mean),
        stddev=None if categorical or valid < 2 else _finite(latest.stddev),
        distinct_count=float(latest.distinct_count) if n else None,
        same_value_ratio=latest.mode_count / valid if valid else None,
        psi_prev=psi,
        value_shares=value_shares(latest) if categorical else {},
    )


def _valid_values(values: Sequence[Any], categorical: bool) -> list[Any]:
    if categorical:
        return [str(v) for v in values if v is not None]
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _top(counts: Counter[Any], k: int) -> list[Any]:
    return [v for v, _ in sorted(counts.items(), key=lambda vc: (-vc[1], vc[0]))[:k]]


def feature_aggregates(
    latest: Sequence[Any], previous: Sequence[Any] | None, categorical: bool, top_k: int
) -> tuple[FeatureAggregate, FeatureAggregate | None]:
    """The aggregates the warehouse query returns, computed in memory from raw values (None = NULL).

    Categorical values are compared as strings; numeric NaN and +-inf count as missing.
    """
    cur_valid = _valid_values(latest, categorical)
    prev_valid = _valid_values(previous, categorical) if previous is not None else []
    cur_counts: Counter[Any] = Counter(cur_valid)
    prev_counts: Counter[Any] = Counter(prev_valid)
    edges: list[float] = []
    if not categorical and prev_valid:
        ordered = sorted(prev_counts)
        cum = np.cumsum([prev_counts[v] for v in ordered])
        for k in range(1, PSI_BINS):  # smallest value whose cumulative count reaches k/10 of the rows
            edges.append(float(ordered[int(np.argmax(cum * PSI_BINS >= k * len(prev_valid)))]))
    prev_top = _top(prev_counts, top_k) if categorical else []

    def aggregate(valid: list[Any], counts: Counter[Any], raw_count: int, extra: list[Any]) -> FeatureAggregate:
        top = _top(counts, top_k) if categorical else []
        nums = np.asarray(valid, dtype=float) if not categorical else np.empty(0)
        return FeatureAggregate(
            count=raw_count,
            valid_count=len(valid),
            mean=float(np.mean(nums)) if nums.size else None,
            stddev=float(np.std(nums, ddof=1)) if nums.size > 1 else None,
            distinct_count=len(counts),
            mode_count=max(counts.values(), default=0),
            at_or_below=tuple((e, int(np.sum(nums <= e))) for e in edges),
            value_counts={str(v): counts[v] for v in {*top, *extra} if counts[v]},
            top_values=tuple(str(v) for v in top),
        )

    cur = aggregate(cur_valid, cur_counts, len(latest), prev_top)
    prev = aggregate(prev_valid, prev_counts, len(previous), []) if previous is not None else None
    return cur, prev
