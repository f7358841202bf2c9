"""The predictions job's single statement: per (model, model_version, window) stats, quantiles and
drift histogram.

One query covers every model and every window of a range (and the reference range a day earlier).
The portable statement returns, per (model, version, window), the non-empty drift-grid buckets
(``kind = 'h'``, at most ``DRIFT_BUCKETS``) and the order statistics at the ranks the reported
quantiles need (``kind = 'q'``, at most 12); each row carries the group's exact aggregates (count,
valid count, mean, sample stddev, min, max, modal count); a group with no valid rows comes back as
one row with a NULL kind. DuckDB's statement returns one row per group: the same aggregates, the six
quantiles from its exact ``QUANTILE_CONT`` and the histogram as two lists. Either way the rows
returned per (model, version, window) are bounded by a constant, not by the row count.

Quantiles are exact (NumPy's linear definition) on every engine. The portable statement ranks every
valid row with ``ROW_NUMBER`` (a sort of the whole range); DuckDB's ``QUANTILE_CONT`` gives the same
numbers without that sort, so the DuckDB statement uses it (see ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from sqlglot import exp

from mlmon.config import Instance
from mlmon.metrics.descriptive import QUANTILES, PredictionAggregate
from mlmon.metrics.histogram import DRIFT_BUCKETS, DRIFT_SCALE, LOGIT_RANGE, ScoreHistogram
from mlmon.warehouse.engines import Engine
from mlmon.warehouse.sql import (
    Statement,
    bind_source,
    model_filter,
    model_params,
    partition_days,
    partition_filter,
    ts_param,
)

# Rank r of the q-quantile's lower neighbour is floor(q * (n - 1)); the upper one is r + 1 (capped).
# Computed in double precision, like NumPy and like :func:`mlmon.metrics.descriptive.quantile_ranks`.
_RANK_TESTS = " OR ".join(
    f"r = FLOOR(CAST({q!r} AS DOUBLE) * CAST(n_valid - 1 AS DOUBLE))"
    f" OR r = LEAST(FLOOR(CAST({q!r} AS DOUBLE) * CAST(n_valid - 1 AS DOUBLE)) + 1, n_valid - 1)"
    for _, q in QUANTILES
)


def predictions_cte(name: str, *, request_id: bool = False, reference: bool = False) -> str:
    """The CTE ``name`` (text to follow ``WITH``) shared by the statements that read predictions.

    One row per prediction with a model in ``[$start, $end)`` (and, with ``reference``, in
    ``[$ref_start, $ref_end)``): ``model``, ``model_version`` (text, NULL as ``''``), the window
    index ``w`` (``$window_seconds`` wide), the score ``p`` and ``ok`` (1 if ``p`` is in [0, 1]);
    ``request_id`` first if asked for.
    """
    key = "src.request_id AS request_id," if request_id else ""
    period = "src.ts >= $start AND src.ts < $end"
    if reference:
        period = f"(({period}) OR (src.ts >= $ref_start AND src.ts < $ref_end))"
    return f"""
{name} AS (
  SELECT {key}
    src.model AS model,
    COALESCE(CAST(src.model_version AS VARCHAR), '') AS model_version,
    CAST(FLOOR(EPOCH(src.ts) / $window_seconds) AS BIGINT) AS w,
    src.prediction AS p,
    CASE WHEN src.prediction >= 0 AND src.prediction <= 1 THEN 1 ELSE 0 END AS ok
  FROM __source__ AS src
  WHERE src.model IS NOT NULL AND {period}
)"""


_BASE_CTES = f"""
WITH {predictions_cte("base", reference=True)},
valid AS (
  SELECT model, model_version, w, p,
    CASE WHEN p <= 0 THEN 0
         WHEN p >= 1 THEN $drift_max
         ELSE LEAST(GREATEST(FLOOR((LN(p / (1 - p)) + $logit_range) * $drift_scale), 0), $drift_max)
    END AS b
  FROM base WHERE ok = 1
),
modes AS (
  SELECT model, model_version, w, MAX(c) AS mode_count
  FROM (SELECT model, model_version, w, p, COUNT(*) AS c FROM valid GROUP BY model, model_version, w, p) AS v
  GROUP BY model, model_version, w
),
"""

_STATS = """
stats AS (
  SELECT model, model_version, w,
    COUNT(*) AS n,
    SUM(ok) AS n_valid,
    AVG(CASE WHEN ok = 1 THEN p END) AS mean,
    STDDEV_SAMP(CASE WHEN ok = 1 THEN p END) AS sd,
    MIN(CASE WHEN ok = 1 THEN p END) AS lo,
    MAX(CASE WHEN ok = 1 THEN p END) AS hi,
    {quantiles} AS qs
  FROM base
  GROUP BY model, model_version, w
),
"""

_HISTOGRAM = """
  SELECT model, model_version, w, 'h' AS kind, CAST(b AS BIGINT) AS i, CAST(COUNT(*) AS DOUBLE) AS x
  FROM valid GROUP BY model, model_version, w, b
"""

_RESULT = """
SELECT s.model, s.model_version, s.w, s.n, s.n_valid, s.mean, s.sd, s.lo, s.hi,
       m.mode_count, s.qs, d.kind, d.i, d.x
FROM stats AS s
LEFT JOIN modes AS m ON s.model = m.model AND s.model_version = m.model_version AND s.w = m.w
LEFT JOIN detail AS d ON s.model = d.model AND s.model_version = d.model_version AND s.w = d.w
ORDER BY s.model, s.model_version, s.w, d.kind, d.i
"""


class PredictionDetailRow(NamedTuple):
    """A row of the portable statement: the group, its aggregates and one order statistic or bucket."""

    model: Any
    model_version: Any
    w: Any
    n: Any
    n_valid: Any
    mean: Any
    sd: Any
    lo: Any
    hi: Any
    mode_count: Any
    qs: Any  # always NULL: the quantiles come from the order statistics
    kind: Any  # 'q': order statistic x of rank i; 'h': count x of drift bucket i; NULL: no valid row
    i: Any
    x: Any


class PredictionGroupRow(NamedTuple):
    """A row of DuckDB's statement: one group, its aggregates, quantiles and histogram lists."""

    model: Any
    model_version: Any
    w: Any
    n: Any
    n_valid: Any
    mean: Any
    sd: Any
    lo: Any
    hi: Any
    mode_count: Any
    qs: Any  # the six quantiles, in QUANTILES order
    hb: Any  # drift buckets, ascending
    hc: Any  # their counts


#: every engine: order statistics by ROW_NUMBER over the valid rows of each group
_PORTABLE = Statement(
    "predictions (portable)",
    PredictionDetailRow,
    _BASE_CTES
    + _STATS.format(quantiles="CAST(NULL AS DOUBLE)")
    + f"""
ranked AS (
  SELECT v.model, v.model_version, v.w, v.p, s.n_valid,
    ROW_NUMBER() OVER (PARTITION BY v.model, v.model_version, v.w ORDER BY v.p) - 1 AS r
  FROM valid AS v
  JOIN stats AS s ON v.model = s.model AND v.model_version = s.model_version AND v.w = s.w
),
detail AS (
  SELECT model, model_version, w, 'q' AS kind, CAST(r AS BIGINT) AS i, p AS x
  FROM ranked WHERE {_RANK_TESTS}
  UNION ALL
  {_HISTOGRAM}
)
"""
    + _RESULT
)

#: DuckDB: its exact (linear) QUANTILE_CONT, all six in one aggregate, and no sort of the range; the
#: histogram comes back as two lists, so one result row per group (fewer Python objects to build)
_DUCKDB = Statement(
    "predictions (duckdb)",
    PredictionGroupRow,
    _BASE_CTES
    + _STATS.format(
        quantiles="QUANTILE_CONT(CASE WHEN ok = 1 THEN p END, [{}])".format(", ".join(repr(q) for _, q in QUANTILES))
    )
    + """
hist AS (
  SELECT model, model_version, w, CAST(b AS BIGINT) AS b, COUNT(*) AS c
  FROM valid GROUP BY model, model_version, w, b
),
hists AS (
  SELECT model, model_version, w, LIST(b ORDER BY b) AS hb, LIST(c ORDER BY b) AS hc
  FROM hist GROUP BY model, model_version, w
)
SELECT s.model, s.model_version, s.w, s.n, s.n_valid, s.mean, s.sd, s.lo, s.hi,
       m.mode_count, s.qs, h.hb, h.hc
FROM stats AS s
LEFT JOIN modes AS m ON s.model = m.model AND s.model_version = m.model_version AND s.w = m.w
LEFT JOIN hists AS h ON s.model = h.model AND s.model_version = h.model_version AND s.w = h.w
ORDER BY s.model, s.model_version, s.w
"""
)


#: the time ranges the statement reads: the windows and their drift reference
RANGES = (("start", "end"), ("ref_start", "ref_end"))


@dataclass(frozen=True, order=True)
class GroupKey:
    """One (model, model_version, window index) group."""

    model: str
    model_version: str
    window_index: int


@dataclass(frozen=True)
class PredictionQueryResult:
    """Aggregates by group, plus how many result rows the engine returned."""

    groups: dict[GroupKey, PredictionAggregate]
    rows_fetched: int


def build_query(instance: Instance, models: Sequence[str] = (), dialect: str = "") -> exp.Expression:
    """The statement for ``instance`` (optionally restricted to ``models``, bound as placeholders).

    ``dialect`` ``"duckdb"`` selects DuckDB's statement; any other value the portable one.
    """
    table = instance.tables.predictions
    if table is None:
        raise ValueError("predictions table is not configured")
    statement = _DUCKDB if dialect == "duckdb" else _PORTABLE
    query = model_filter(statement.template.copy(), "base", models, ())
    query = partition_filter(query, "base", "src", instance.partition("predictions"), RANGES)
    return bind_source(query, table, instance.columns.get("predictions", {}))


def query_params(
    start: float, end: float, ref_start: float, ref_end: float, window: float,
    models: Sequence[str] = (),
) -> dict[str, Any]:
    """Bound values for :func:`build_query` (times as UTC datetimes)."""
    return {
        "start": ts_param(start), "end": ts_param(end), "ref_start": ts_param(ref_start),
        "ref_end": ts_param(ref_end), "window_seconds": int(window),
        "drift_max": DRIFT_BUCKETS - 1, "drift_scale": float(DRIFT_SCALE), "logit_range": float(LOGIT_RANGE),
        **model_params(models, ()),
    }


def _aggregate(
    head: PredictionDetailRow | PredictionGroupRow, order_stats: dict[int, float], buckets: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
) -> PredictionAggregate:
    quantiles = None
    if head.qs is not None and all(v is not None for v in head.qs):
        quantiles = {name: float(v) for (name, _), v in zip(QUANTILES, head.qs, strict=True)}
    return PredictionAggregate(
        count=int(head.n),
        valid_count=int(head.n_valid or 0),
        mean=_float(head.mean),
        stddev=_float(head.sd),
        minimum=_float(head.lo),
        maximum=_float(head.hi),
        mode_count=int(head.mode_count or 0),
        order_stats=order_stats,
        quantiles=quantiles,
        histogram=ScoreHistogram(buckets, counts),
    )


def _group(row: PredictionDetailRow | PredictionGroupRow) -> GroupKey:
    return GroupKey(str(row.model), str(row.model_version), int(row.w))


# the portable statement returns up to DRIFT_BUCKETS + 12 rows per group: its fold reads them by
# name through getters, not a row object apiece (that made the fold about 70 % slower)
_GROUP_COLUMNS = _PORTABLE.getter("model", "model_version", "w")
_DETAIL_COLUMNS = _PORTABLE.getter("kind", "i", "x")


def parse_rows(rows: list[tuple[Any, ...]]) -> dict[GroupKey, PredictionAggregate]:
    """Fold the portable statement's rows (several per group) into one aggregate per group."""
    head: dict[tuple[Any, ...], PredictionDetailRow] = {}
    order_stats: dict[tuple[Any, ...], dict[int, float]] = defaultdict(dict)
    buckets: dict[tuple[Any, ...], list[tuple[int, int]]] = defaultdict(list)
    for row in rows:
        raw = _GROUP_COLUMNS(row)
        if raw not in head:
            head[raw] = PredictionDetailRow._make(row)
        kind, i, x = _DETAIL_COLUMNS(row)
        if kind == "q":
            order_stats[raw][int(i)] = float(x)
        elif kind == "h":
            buckets[raw].append((int(i), int(x)))
    out: dict[GroupKey, PredictionAggregate] = {}
    for raw, first in head.items():
        bs = buckets.get(raw, [])
        out[_group(first)] = _aggregate(
            first, order_stats.get(raw, {}),
            np.fromiter((b for b, _ in bs), np.int64, len(bs)), np.fromiter((c for _, c in bs), np.int64, len(bs)),
        )
    return out


def parse_grouped_rows(rows: list[tuple[Any, ...]]) -> dict[GroupKey, PredictionAggregate]:
    """The DuckDB statement's rows (one per group, the histogram as two lists) as one aggregate per group."""
    return {
        _group(row): _aggregate(
            row, {}, np.asarray(row.hb or (), dtype=np.int64), np.asarray(row.hc or (), dtype=np.int64)
        )
        for row in _DUCKDB.rows(rows)
    }


def _float(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def fetch_prediction_aggregates(
    engine: Engine, instance: Instance, start: float, end: float, ref_start: float, ref_end: float,
    window: float, models: Sequence[str] = (),
) -> PredictionQueryResult:
    """Run the statement for one range and return aggregates for every group in it."""
    query = build_query(instance, models, engine.dialect)
    params = query_params(start, end, ref_start, ref_end, window, models)
    params.update(partition_days(params, RANGES, instance.partition("predictions")))
    rows = engine.fetch(query, params)
    parse = parse_grouped_rows if engine.dialect == "duckdb" else parse_rows
    return PredictionQueryResult(parse(rows), len(rows))
