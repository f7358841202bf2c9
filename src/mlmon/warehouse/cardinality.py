"""Statements that count series for ``mlmon plan`` (:mod:`mlmon.cardinality`): how many tag values
each job will see, as counts, never rows.

* :func:`build_pairs_query` reads ``predictions``: one row per (model, model_version) seen in
  ``[$history_start, $end)`` with whether it has rows in the period ``[$start, $end)`` and valid ones
  (in [0, 1]) there, the Unix time of its latest row at or after ``$day_start``, and per model the
  number of distinct windows of the period with rows and whether it has valid rows in the drift
  reference range ``[$ref_start, $ref_end)``. Result rows: one per (model, version).
* :func:`build_feature_counts_query` reads ``training_features``: one row per (model, role,
  feature) for each model's latest (role 0) and previous (role 1) version, with the rows, the valid
  values (non-NULL; numeric: finite) and the distinct valid values. Result rows: models x 2 x features.

The lineage of ``training_runs`` needs no statement of its own: the training job's (at most three
rows per model, :func:`mlmon.warehouse.training.fetch_runs`) already says which runs exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlglot import exp

from mlmon.config import Instance
from mlmon.warehouse.engines import Engine
from mlmon.warehouse.features import FeatureKind, bind_features, feature_value_ctes, version_params
from mlmon.warehouse.sql import (
    Statement,
    bind_source,
    model_filter,
    model_params,
    partition_days,
    partition_filter,
    ts_param,
    used_params,
)


class PairRow(NamedTuple):
    """One (model, model_version): rows and valid rows in the period, last seen; the model's windows, reference."""

    model: Any
    model_version: Any
    active: Any
    valid: Any
    last_seen: Any
    windows: Any
    referenced: Any


_PAIRS = Statement(
    "plan pairs",
    PairRow,
    """
WITH base AS (
  SELECT
    src.model AS model,
    COALESCE(CAST(src.model_version AS VARCHAR), '') AS model_version,
    CAST(EPOCH(src.ts) AS DOUBLE) AS t,
    CAST(FLOOR(EPOCH(src.ts) / $window_seconds) AS BIGINT) AS w,
    CASE WHEN src.ts >= $start THEN 1 ELSE 0 END AS in_period,
    CASE WHEN src.prediction >= 0 AND src.prediction <= 1 THEN 1 ELSE 0 END AS ok,
    CASE WHEN src.ts >= $ref_start AND src.ts < $ref_end THEN 1 ELSE 0 END AS in_reference,
    CASE WHEN src.ts >= $day_start THEN 1 ELSE 0 END AS in_day
  FROM __source__ AS src
  WHERE src.model IS NOT NULL AND src.ts >= $history_start AND src.ts < $end
),
versions AS (
  SELECT model, model_version,
    MAX(in_period) AS active,
    MAX(in_period * ok) AS valid,
    MAX(CASE WHEN in_day = 1 THEN t END) AS last_seen
  FROM base
  GROUP BY model, model_version
),
models AS (
  SELECT model,
    COUNT(DISTINCT CASE WHEN in_period = 1 THEN w END) AS windows,
    MAX(in_reference * ok) AS referenced
  FROM base
  GROUP BY model
)
SELECT v.model, v.model_version, v.active, v.valid, v.last_seen, m.windows, m.referenced
FROM versions AS v
JOIN models AS m ON v.model = m.model
ORDER BY v.model, v.model_version
"""
)


@dataclass(frozen=True)
class VersionSeen:
    """One (model, model_version) of the predictions table, as :func:`fetch_pairs` saw it."""

    model: str
    model_version: str
    active: bool  # rows in the period
    valid: bool  # valid rows in the period
    last_seen: float | None  # latest row at or after day_start (None: none)
    model_windows: int  # windows of the period in which the model (any version) has rows
    model_referenced: bool  # the model has valid rows in the drift reference range


_PAIRS_RANGES = (("history_start", "end"),)


def build_pairs_query(
    instance: Instance, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> exp.Expression:
    """The (model, model_version) statement over ``predictions``, optionally for some models only."""
    table = instance.tables.predictions
    if table is None:
        raise ValueError("predictions table is not configured")
    query = model_filter(_PAIRS.template.copy(), "base", include, exclude)
    query = partition_filter(query, "base", "src", instance.partition("predictions"), _PAIRS_RANGES)
    return bind_source(query, table, instance.columns.get("predictions", {}))


def pairs_params(
    start: float, end: float, width: float, *, day_start: float, ref_start: float, ref_end: float,
    include: Sequence[str] = (), exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """Bound values for :func:`build_pairs_query` (rows before ``min(day_start, ref_start)`` are not read)."""
    return {
        "start": ts_param(start), "end": ts_param(end), "window_seconds": int(width),
        "history_start": ts_param(min(start, day_start, ref_start)), "day_start": ts_param(day_start),
        "ref_start": ts_param(ref_start), "ref_end": ts_param(ref_end),
        **model_params(include, exclude),
    }


def fetch_pairs(
    engine: Engine, instance: Instance, start: float, end: float, width: float, *, day_start: float,
    ref_start: float, ref_end: float, include: Sequence[str] = (), exclude: Sequence[str] = (),
) -> list[VersionSeen]:
    """Run the statement. Raises :class:`~mlmon.warehouse.engines.QueryError`."""
    params = pairs_params(start, end, width, day_start=day_start, ref_start=ref_start, ref_end=ref_end,
                          include=include, exclude=exclude)
    params.update(partition_days(params, _PAIRS_RANGES, instance.partition("predictions")))
    rows = engine.fetch(build_pairs_query(instance, include, exclude), params)
    return [
        VersionSeen(str(row.model), str(row.model_version), bool(row.active), bool(row.valid),
                    None if row.last_seen is None else float(row.last_seen), int(row.windows or 0),
                    bool(row.referenced))
        for row in _PAIRS.rows(rows)
    ]


# --- training features -------------------------------------------------------------------------------


class FeatureCountRow(NamedTuple):
    """Per (model, role, feature): rows, valid values and distinct valid values."""

    model: Any
    role: Any
    f: Any
    n: Any
    n_valid: Any
    n_distinct: Any


# after the CTEs of :func:`~mlmon.warehouse.features.feature_value_ctes`, built per call
_FEATURE_COUNTS = Statement(
    "plan feature counts",
    FeatureCountRow,
    """
SELECT model, role, f, COUNT(*) AS n, COUNT(x) + COUNT(c) AS n_valid, COUNT(DISTINCT c) AS n_distinct
FROM unpivoted
GROUP BY model, role, f
ORDER BY model, role, f
""",
)


@dataclass(frozen=True)
class FeatureCount:
    """Rows, valid values and distinct valid values of one feature in one version's training data."""

    rows: int
    valid: int
    distinct: int


def build_feature_counts_query(
    instance: Instance, features: Sequence[str], kinds: Mapping[str, FeatureKind], versions: Sequence[int]
) -> exp.Expression:
    """The counts statement; ``versions[i]`` (1 or 2) is how many versions model ``i`` binds.

    Placeholders: ``$model_<i>``, ``$version_<i>_0`` (latest), ``$version_<i>_1`` (previous) and
    ``$float_max``, see :func:`mlmon.warehouse.features.version_params`.
    """
    return bind_features(_FEATURE_COUNTS.with_ctes(feature_value_ctes(features, kinds, versions)), instance, features)


def fetch_feature_counts(
    engine: Engine, instance: Instance, features: Sequence[str], kinds: Mapping[str, FeatureKind],
    versions: Mapping[str, Sequence[str]],
) -> dict[tuple[str, str, int], FeatureCount]:
    """(model, feature, role) -> counts, for the versions that have rows. Raises ``QueryError``."""
    if not features or not versions:
        return {}
    query = build_feature_counts_query(instance, features, kinds, [len(v) for v in versions.values()])
    # $float_max only with a numeric feature
    rows = engine.fetch(query, used_params(query, version_params(versions)))
    return {
        (str(row.model), features[int(row.f)], int(row.role)):
            FeatureCount(int(row.n), int(row.n_valid or 0), int(row.n_distinct or 0))
        for row in _FEATURE_COUNTS.rows(rows)
    }
