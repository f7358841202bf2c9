"""Serving-input metrics of one (model, version, window, feature), and their skew against the serving
version's training data.

* ``null_ratio``: missing rows over every row of the window (missing: NULL; numeric features also NaN
  and +-inf). The other statistics describe the valid rows only.
* ``distinct_count``: distinct valid values; ``same_value_ratio``: rows equal to the most frequent
  valid value over the valid rows (the training job's definition); numeric ``mean``, ``stddev``
  (ddof 1, from two valid rows), ``min``, ``max``.
* categorical ``value_shares``: share of the valid rows of each of the window's top-K values (most
  frequent first, ties by value), plus :data:`~mlmon.metrics.training.OTHER_VALUE` for the rest when
  other values exist.
* categorical ``unseen_share``: valid rows whose value no training row of the serving version has, over
  the valid rows; absent when the version has no training rows.
* ``psi_training``: PSI of the window against the serving version's training values, absent unless both
  hold ``min_rows`` valid values (and at least one). Bins as the training job's ``psi_prev``: numeric,
  ``(-inf, e1], (e1, e2], ..., (e9, inf)`` with ``e_k`` the training values' k/10 quantiles (inverted CDF,
  duplicates merged); categorical, the training top-K values plus one bin for every other value.

Everything here works on the small aggregates the warehouse returns (:mod:`mlmon.warehouse.serving`);
:func:`serving_aggregate` builds the same aggregates from raw values, for tests and in-memory data.
Undefined values are ``None``, never 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from mlmon.metrics.results import MetricFields
from mlmon.metrics.training import FeatureAggregate, categorical_psi, feature_aggregates, numeric_psi, value_shares


@dataclass(frozen=True)
class ServingAggregate:
    """What the warehouse returns for one (model, version, window, feature), or for the version's training
    rows of the feature (``reference``).

    ``count`` counts every row; the rest describe the valid ones. ``unseen_count``: valid categorical rows
    whose value the version's training rows never have. ``at_or_below`` (numeric): for each of the
    training values' decile edges ``e_1..e_9`` in order, ``(e_k, valid rows <= e_k)``. ``value_counts``
    (categorical): the counts of this key's top-K values and, for a window, of the training top K;
    ``top_values``: this key's top K, most frequent first, ties by value.
    """

    count: int
    valid_count: int
    mean: float | None = None
    stddev: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    distinct_count: int = 0
    mode_count: int = 0
    unseen_count: int = 0
    at_or_below: tuple[tuple[float, int], ...] = ()
    value_counts: Mapping[str, int] = field(default_factory=dict)
    top_values: tuple[str, ...] = ()
    reference: ServingAggregate | None = None


@dataclass(frozen=True)
class ServingStats(MetricFields):
    """The metrics of one (model, version, window, feature) (``None``: not reported)."""

    null_ratio: float | None = None
    distinct_count: float | None = None
    same_value_ratio: float | None = None
    mean: float | None = None
    stddev: float | None = None
    min: float | None = None
    max: float | None = None
    unseen_share: float | None = None
    psi_training: float | None = None
    value_shares: Mapping[str, float] = field(default_factory=dict)

    #: one series per value, sent apart
    NOT_METRICS: ClassVar[frozenset[str]] = frozenset({"value_shares"})


def serving_stats(agg: ServingAggregate, categorical: bool, min_rows: int = 0) -> ServingStats:
    """The metrics of one window's feature; PSI needs ``min_rows`` valid values on both sides."""
    n, valid, ref = agg.count, agg.valid_count, agg.reference
    psi: float | None = None
    if ref is not None and min(valid, ref.valid_count) >= max(min_rows, 1):
        psi = categorical_psi(agg, ref) if categorical else numeric_psi(agg, ref)  # the training job's bins
    return ServingStats(
        null_ratio=(n - valid) / n if n else None,
        distinct_count=float(agg.distinct_count) if n else None,
        same_value_ratio=agg.mode_count / valid if valid else None,
        mean=None if categorical or not valid else agg.mean,
        stddev=None if categorical or valid < 2 else agg.stddev,
        min=None if categorical or not valid else agg.minimum,
        max=None if categorical or not valid else agg.maximum,
        unseen_share=agg.unseen_count / valid if categorical and valid and ref is not None and ref.count else None,
        psi_training=psi,
        value_shares=value_shares(agg) if categorical else {},
    )


def _serving(agg: FeatureAggregate, minimum: float | None, maximum: float | None, unseen: int,
             reference: ServingAggregate | None) -> ServingAggregate:
    return ServingAggregate(
        count=agg.count, valid_count=agg.valid_count, mean=agg.mean, stddev=agg.stddev, minimum=minimum,
        maximum=maximum, distinct_count=agg.distinct_count, mode_count=agg.mode_count, unseen_count=unseen,
        at_or_below=agg.at_or_below, value_counts=agg.value_counts, top_values=agg.top_values, reference=reference,
    )


def serving_aggregate(
    values: Sequence[Any], training: Sequence[Any] | None, categorical: bool, top_k: int
) -> ServingAggregate:
    """The aggregate the warehouse statement returns, computed in memory from raw values (None = NULL), with
    the version's ``training`` values as its reference (``None``: the version has no training rows)."""
    current, reference = feature_aggregates(values, training, categorical, top_k)

    def bounds(raw: Sequence[Any]) -> tuple[float | None, float | None]:
        if categorical:
            return None, None
        ok = [float(v) for v in raw if v is not None and np.isfinite(float(v))]
        return (min(ok), max(ok)) if ok else (None, None)

    ref = None
    unseen = 0
    if reference is not None and training is not None:
        ref = _serving(reference, *bounds(training), 0, None)
        if categorical:
            known = {str(v) for v in training if v is not None}
            unseen = sum(n for v, n in Counter(str(v) for v in values if v is not None).items() if v not in known)
    return _serving(current, *bounds(values), unseen, ref)
