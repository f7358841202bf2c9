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

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from sqlglot import exp

from mlmon.config import Instance
from mlmon.metrics.descriptive import QUANTILES, SEGMENT_QUANTILES, PredictionAggregate
from mlmon.metrics.histogram import DRIFT_BUCKETS, DRIFT_SCALE, LOGIT_RANGE, ScoreHistogram
from mlmon.warehouse.engines import Engine
from mlmon.warehouse.segments import (
    SegmentPlan,
    bind_segments,
    column_renames,
    segment_columns,
    segment_params,
    unpivot,
)
from mlmon.warehouse.sql import (
    Statement,
    bind_source,
    model_filter,
    model_params,
    partition_days,
    partition_filter,
    ts_param,
)


def predictions_cte(
    name: str, *, request_id: bool = False, reference: bool = False, segments: Sequence[int] = ()
) -> str:
    """The CTE ``name`` (text to follow ``WITH``) shared by the statements that read predictions.

    One row per prediction with a model in ``[$start, $end)`` (and, with ``reference``, in
    ``[$ref_start, $ref_end)``): ``model``, ``model_version`` (text, NULL as ``''``), the window
    index ``w`` (``$window_seconds`` wide), the score ``p`` and ``ok`` (1 if ``p`` is in [0, 1]);
    ``request_id`` first if asked for; with ``segments`` (indexes in ``segment_by``), the raw segment values
    ``s<i>`` as text
    (see :mod:`mlmon.warehouse.segments`).
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
    CASE WHEN src.prediction >= 0 AND src.prediction <= 1 THEN 1 ELSE 0 END AS ok{segment_columns(segments)}
  FROM __source__ AS src
  WHERE src.model IS NOT NULL AND {period}
)"""


#: the drift-grid bucket of a valid score ``p`` (:func:`mlmon.metrics.histogram.drift_bucket`), as SQL
DRIFT_BUCKET = """CASE WHEN p <= 0 THEN 0
         WHEN p >= 1 THEN $drift_max
         ELSE LEAST(GREATEST(FLOOR((LN(p / (1 - p)) + $logit_range) * $drift_scale), 0), $drift_max)
    END"""


def drift_params() -> dict[str, Any]:
    """The bound values of :data:`DRIFT_BUCKET`."""
    return {"drift_max": DRIFT_BUCKETS - 1, "drift_scale": float(DRIFT_SCALE), "logit_range": float(LOGIT_RANGE)}


def _base_ctes(segments: Sequence[int] = ()) -> str:
    return f"""
WITH {predictions_cte("base", reference=True, segments=segments)},
valid AS (
  SELECT model, model_version, w, p, {DRIFT_BUCKET} AS b
  FROM base WHERE ok = 1
),
modes AS (
  SELECT model, model_version, w, MAX(c) AS mode_count
  FROM (SELECT model, model_version, w, p, COUNT(*) AS c FROM valid GROUP BY model, model_version, w, p) AS v
  GROUP BY model, model_version, w
),
"""


_BASE_CTES = _base_ctes()

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


def _rank_tests(quantiles: tuple[tuple[str, float], ...]) -> str:
    # Rank r of the q-quantile's lower neighbour is floor(q * (n - 1)); the upper one is r + 1 (capped).
    # Computed in double precision, like NumPy and like :func:`mlmon.metrics.descriptive.quantile_ranks`.
    return " OR ".join(
        f"r = FLOOR(CAST({q!r} AS DOUBLE) * CAST(n_valid - 1 AS DOUBLE))"
        f" OR r = LEAST(FLOOR(CAST({q!r} AS DOUBLE) * CAST(n_valid - 1 AS DOUBLE)) + 1, n_valid - 1)"
        for _, q in quantiles
    )


def _portable_body(segments: Sequence[int] = ()) -> str:
    return (_base_ctes(segments) + _STATS.format(quantiles="CAST(NULL AS DOUBLE)") + f"""
ranked AS (
  SELECT v.model, v.model_version, v.w, v.p, s.n_valid,
    ROW_NUMBER() OVER (PARTITION BY v.model, v.model_version, v.w ORDER BY v.p) - 1 AS r
  FROM valid AS v
  JOIN stats AS s ON v.model = s.model AND v.model_version = s.model_version AND v.w = s.w
),
detail AS (
  SELECT model, model_version, w, 'q' AS kind, CAST(r AS BIGINT) AS i, p AS x
  FROM ranked WHERE {_rank_tests(QUANTILES)}
  UNION ALL
  {_HISTOGRAM}
)
""")


_DUCKDB_QUANTILES = "QUANTILE_CONT(CASE WHEN ok = 1 THEN p END, [{}])"


def _duckdb_body(segments: Sequence[int] = ()) -> str:
    return (_base_ctes(segments)
            + _STATS.format(quantiles=_DUCKDB_QUANTILES.format(", ".join(repr(q) for _, q in QUANTILES))) + """
hist AS (
  SELECT model, model_version, w, CAST(b AS BIGINT) AS b, COUNT(*) AS c
  FROM valid GROUP BY model, model_version, w, b
),
hists AS (
  SELECT model, model_version, w, LIST(b ORDER BY b) AS hb, LIST(c ORDER BY b) AS hc
  FROM hist GROUP BY model, model_version, w
)
""")


_DUCKDB_RESULT = """
SELECT s.model, s.model_version, s.w, s.n, s.n_valid, s.mean, s.sd, s.lo, s.hi,
       m.mode_count, s.qs, h.hb, h.hc{segment}
FROM stats AS s
LEFT JOIN modes AS m ON s.model = m.model AND s.model_version = m.model_version AND s.w = m.w
LEFT JOIN hists AS h ON s.model = h.model AND s.model_version = h.model_version AND s.w = h.w
"""

class SegmentedDetailRow(NamedTuple):
    """A row of the portable statement with segments: :class:`PredictionDetailRow`, then the segment column's
    index in ``segment_by`` and the value (both NULL on the unsegmented rows)."""

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
    qs: Any
    kind: Any
    i: Any
    x: Any
    sc: Any
    sv: Any


class SegmentedGroupRow(NamedTuple):
    """A row of DuckDB's statement with segments: :class:`PredictionGroupRow`, then ``sc`` and ``sv``; a segment
    row's ``qs`` holds p50 and p95 and its histogram lists are NULL."""

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
    qs: Any
    hb: Any
    hc: Any
    sc: Any
    sv: Any


#: every engine: order statistics by ROW_NUMBER over the valid rows of each group
_PORTABLE = Statement("predictions (portable)", PredictionDetailRow, _portable_body() + _RESULT)

#: DuckDB: its exact (linear) QUANTILE_CONT, all six in one aggregate, and no sort of the range; the
#: histogram comes back as two lists, so one result row per group (fewer Python objects to build)
_DUCKDB = Statement(
    "predictions (duckdb)", PredictionGroupRow,
    _duckdb_body() + _DUCKDB_RESULT.format(segment="") + "ORDER BY s.model, s.model_version, s.w",
)


# --- segments (``segment_by``): the same statements, plus per (model, version, window, column, value) the
# count, mean, p50, p95 and modal count, from the base rows unpivoted once per segment column

_SEGMENT_KEYS = "model, model_version, w, sc, sv"
_SEGMENT_JOIN = "{a}.model = {b}.model AND {a}.model_version = {b}.model_version AND {a}.w = {b}.w " \
    "AND {a}.sc = {b}.sc AND {a}.sv = {b}.sv"


def _segment_ctes(indexes: tuple[int, ...], quantiles: str) -> str:
    return f""",
segs AS (
  {unpivot("base", "model, model_version, w, p, ok", indexes)}
),
seg_modes AS (
  SELECT {_SEGMENT_KEYS}, MAX(c) AS mode_count
  FROM (SELECT {_SEGMENT_KEYS}, p, COUNT(*) AS c FROM segs WHERE ok = 1 GROUP BY {_SEGMENT_KEYS}, p) AS v
  GROUP BY {_SEGMENT_KEYS}
),
seg_stats AS (
  SELECT {_SEGMENT_KEYS},
    COUNT(*) AS n,
    SUM(ok) AS n_valid,
    AVG(CASE WHEN ok = 1 THEN p END) AS mean,
    {quantiles} AS qs
  FROM segs
  GROUP BY {_SEGMENT_KEYS}
)"""


@functools.lru_cache(maxsize=32)
def _segmented(dialect: str, indexes: tuple[int, ...]) -> Statement[Any]:
    """The predictions statement of ``dialect`` (``duckdb`` or any other: portable) with the segment columns at
    ``indexes`` (in ``segment_by``; those some model has a choice for), read and unpivoted: the unsegmented rows
    (``sc``, ``sv`` NULL), then one per segment group."""
    if dialect == "duckdb":
        quantiles = _DUCKDB_QUANTILES.format(", ".join(repr(q) for _, q in SEGMENT_QUANTILES))
        body = _duckdb_body(indexes).rstrip() + _segment_ctes(indexes, quantiles)
        sql = body + _DUCKDB_RESULT.format(segment=", CAST(NULL AS INTEGER) AS sc, CAST(NULL AS VARCHAR) AS sv") + f"""
UNION ALL
SELECT g.model, g.model_version, g.w, g.n, g.n_valid, g.mean, CAST(NULL AS DOUBLE) AS sd, CAST(NULL AS DOUBLE) AS lo,
       CAST(NULL AS DOUBLE) AS hi, gm.mode_count, g.qs, CAST(NULL AS BIGINT[]) AS hb, CAST(NULL AS BIGINT[]) AS hc,
       g.sc, g.sv
FROM seg_stats AS g
LEFT JOIN seg_modes AS gm ON {_SEGMENT_JOIN.format(a="g", b="gm")}
ORDER BY model, model_version, w
"""
        return Statement("predictions with segments (duckdb)", SegmentedGroupRow, sql)
    body = _portable_body(indexes).rstrip() + _segment_ctes(indexes, "CAST(NULL AS DOUBLE)")
    result = _RESULT.replace("d.x\n", "d.x, CAST(NULL AS INTEGER) AS sc, CAST(NULL AS VARCHAR) AS sv\n")
    result = result[: result.index("ORDER BY")]
    sql = body + f""",
seg_ranked AS (
  SELECT v.model, v.model_version, v.w, v.sc, v.sv, v.p, t.n_valid,
    ROW_NUMBER() OVER (PARTITION BY v.model, v.model_version, v.w, v.sc, v.sv ORDER BY v.p) - 1 AS r
  FROM segs AS v
  JOIN seg_stats AS t ON {_SEGMENT_JOIN.format(a="v", b="t")}
  WHERE v.ok = 1
),
seg_detail AS (
  SELECT {_SEGMENT_KEYS}, 'q' AS kind, CAST(r AS BIGINT) AS i, p AS x
  FROM seg_ranked WHERE {_rank_tests(SEGMENT_QUANTILES)}
)
{result}
UNION ALL
SELECT g.model, g.model_version, g.w, g.n, g.n_valid, g.mean, CAST(NULL AS DOUBLE) AS sd, CAST(NULL AS DOUBLE) AS lo,
       CAST(NULL AS DOUBLE) AS hi, gm.mode_count, g.qs, gd.kind, gd.i, gd.x, g.sc, g.sv
FROM seg_stats AS g
LEFT JOIN seg_modes AS gm ON {_SEGMENT_JOIN.format(a="g", b="gm")}
LEFT JOIN seg_detail AS gd ON {_SEGMENT_JOIN.format(a="g", b="gd")}
ORDER BY model, model_version, w, sc, sv, kind, i
"""
    return Statement("predictions with segments (portable)", SegmentedDetailRow, sql)


#: the time ranges the statement reads: the windows and their drift reference
RANGES = (("start", "end"), ("ref_start", "ref_end"))


@dataclass(frozen=True, order=True)
class GroupKey:
    """One (model, model_version, window index) group."""

    model: str
    model_version: str
    window_index: int


@dataclass(frozen=True, order=True)
class SegmentKey:
    """One segment group: (model, model_version, window index), a ``segment_by`` column and its value."""

    model: str
    model_version: str
    window_index: int
    column: str
    value: str

    @property
    def group(self) -> GroupKey:
        """The unsegmented group it is a slice of."""
        return GroupKey(self.model, self.model_version, self.window_index)


@dataclass(frozen=True)
class PredictionQueryResult:
    """Aggregates by group (and by segment group, with ``segment_by``), plus how many result rows the engine
    returned."""

    groups: dict[GroupKey, PredictionAggregate]
    rows_fetched: int
    segments: dict[SegmentKey, PredictionAggregate] = field(default_factory=dict)


def build_query(
    instance: Instance, models: Sequence[str] = (), dialect: str = "", segments: SegmentPlan | None = None,
) -> exp.Expression:
    """The statement for ``instance`` (optionally restricted to ``models``, bound as placeholders; with
    ``segments``, their values bound by :func:`~mlmon.warehouse.segments.segment_params`).

    ``dialect`` ``"duckdb"`` selects DuckDB's statement; any other value the portable one.
    """
    table = instance.tables.predictions
    if table is None:
        raise ValueError("predictions table is not configured")
    indexes = tuple(segments.active()) if segments is not None else ()
    if indexes:
        assert segments is not None
        statement = _segmented("duckdb" if dialect == "duckdb" else "", indexes)
        renames = column_renames(instance, "predictions", segments.columns)
    else:
        statement = _DUCKDB if dialect == "duckdb" else _PORTABLE
        renames = instance.columns.get("predictions", {})
    query = model_filter(statement.template.copy(), "base", models, ())
    query = partition_filter(query, "base", "src", instance.partition("predictions"), RANGES)
    if indexes:
        assert segments is not None
        query = bind_segments(query, segments, indexes)
    return bind_source(query, table, renames)


def query_params(
    start: float, end: float, ref_start: float, ref_end: float, window: float,
    models: Sequence[str] = (),
) -> dict[str, Any]:
    """Bound values for :func:`build_query` (times as UTC datetimes)."""
    return {
        "start": ts_param(start), "end": ts_param(end), "ref_start": ts_param(ref_start),
        "ref_end": ts_param(ref_end), "window_seconds": int(window), **drift_params(),
        **model_params(models, ()),
    }


def _aggregate(
    head: Any, order_stats: dict[int, float], buckets: npt.NDArray[np.int64], counts: npt.NDArray[np.int64],
    quantile_names: tuple[tuple[str, float], ...] = QUANTILES,
) -> PredictionAggregate:
    quantiles = None
    if head.qs is not None and all(v is not None for v in head.qs):
        quantiles = {name: float(v) for (name, _), v in zip(quantile_names, head.qs, strict=True)}
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


def _group(row: Any) -> GroupKey:
    return GroupKey(str(row.model), str(row.model_version), int(row.w))


def _segment(row: Any, columns: Sequence[str]) -> SegmentKey:
    return SegmentKey(str(row.model), str(row.model_version), int(row.w), columns[int(row.sc)], str(row.sv))


# the portable statement returns up to DRIFT_BUCKETS + 12 rows per group: its fold reads them by
# name through getters, not a row object apiece (that made the fold about 70 % slower)
_GROUP_COLUMNS = _PORTABLE.getter("model", "model_version", "w")
_DETAIL_COLUMNS = _PORTABLE.getter("kind", "i", "x")
_WIDTH = len(PredictionDetailRow._fields)


def parse_rows(rows: list[tuple[Any, ...]], columns: Sequence[str] = ()) -> PredictionQueryResult:
    """Fold the portable statement's rows (several per group) into one aggregate per group (and per segment
    group: rows of the statement with segments of ``columns``)."""
    head: dict[tuple[Any, ...], Any] = {}
    order_stats: dict[tuple[Any, ...], dict[int, float]] = defaultdict(dict)
    buckets: dict[tuple[Any, ...], list[tuple[int, int]]] = defaultdict(list)
    segmented = bool(columns)
    for row in rows:
        raw = _GROUP_COLUMNS(row)
        if segmented:
            raw = (*raw, row[_WIDTH], row[_WIDTH + 1])
        if raw not in head:
            head[raw] = SegmentedDetailRow._make(row) if segmented else PredictionDetailRow._make(row)
        kind, i, x = _DETAIL_COLUMNS(row)
        if kind == "q":
            order_stats[raw][int(i)] = float(x)
        elif kind == "h":
            buckets[raw].append((int(i), int(x)))
    out = PredictionQueryResult({}, len(rows))
    for raw, first in head.items():
        bs = buckets.get(raw, [])
        agg = _aggregate(
            first, order_stats.get(raw, {}),
            np.fromiter((b for b, _ in bs), np.int64, len(bs)), np.fromiter((c for _, c in bs), np.int64, len(bs)),
        )
        if segmented and first.sc is not None:
            out.segments[_segment(first, columns)] = agg
        else:
            out.groups[_group(first)] = agg
    return out


def parse_grouped_rows(rows: list[tuple[Any, ...]], columns: Sequence[str] = ()) -> PredictionQueryResult:
    """The DuckDB statement's rows (one per group, the histogram as two lists) as one aggregate per group (and
    per segment group, with ``columns``)."""
    out = PredictionQueryResult({}, len(rows))
    none = np.zeros(0, dtype=np.int64)
    rows_read: Iterable[Any] = (SegmentedGroupRow._make(r) for r in rows) if columns else _DUCKDB.rows(rows)
    for row in rows_read:
        if columns and row.sc is not None:
            out.segments[_segment(row, columns)] = _aggregate(row, {}, none, none, SEGMENT_QUANTILES)
        else:
            out.groups[_group(row)] = _aggregate(
                row, {}, np.asarray(row.hb or (), dtype=np.int64), np.asarray(row.hc or (), dtype=np.int64)
            )
    return out


def _float(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def fetch_prediction_aggregates(
    engine: Engine, instance: Instance, start: float, end: float, ref_start: float, ref_end: float,
    window: float, models: Sequence[str] = (), segments: SegmentPlan | None = None,
) -> PredictionQueryResult:
    """Run the statement for one range and return aggregates for every group in it (and every segment group of
    ``segments``)."""
    query = build_query(instance, models, engine.dialect, segments)
    params = {**query_params(start, end, ref_start, ref_end, window, models), **segment_params(segments)}
    params.update(partition_days(params, RANGES, instance.partition("predictions")))
    rows = engine.fetch(query, params)
    columns = segments.columns if segments is not None and segments.active() else ()
    parse = parse_grouped_rows if engine.dialect == "duckdb" else parse_rows
    return parse(rows, columns)
