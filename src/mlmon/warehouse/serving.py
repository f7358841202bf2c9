"""The serving_features job's statement: per (model, model_version, window, feature) statistics of the
serving inputs, and the training values of each served version they are compared with.

The serving rows are read from ``tables.serving_features`` or, when that is null, ``predictions``
(:func:`source_table`), bounded by ``ts`` in ``[$start, $end)`` (and by the table's date partition
column with ``partitions:``). With a reference, the rows of ``training_features`` of the (model,
version) pairs served in that range are read too (bounded by those versions, not by time: training
data has no serving time). Each feature of both is aggregated on its own and the results stacked into
``stats``, ``num_counts`` (the serving windows' numeric value counts, read once) and ``value_counts``
(the rest) CTEs keyed by (model, model_version, role, w, f): role 0 is a serving
window ``w``, role 1 the version's training rows (``w = -1``); ``f`` is the feature's index (feature
names only ever appear as quoted identifiers).

Per key, every result row carries the exact aggregates (rows, valid rows, mean, sample stddev, min,
max, distinct and modal counts, and for serving windows the valid categorical rows whose value no
training row of the version has); detail rows add ``kind = 'e'`` (numeric: for each distinct decile
edge ``e`` of the training values, ``i`` the largest k with ``e_k = e``, the valid rows ``<= e``) and
``kind = 'v'`` (categorical: count and rank of each value ranked <= K in the key or, for a serving
window, in the version's training top K; ties by value ascending, in the engine's collation). A key
without detail comes back as one row with a NULL kind. Rows per (model, version, window, feature)
are at most 9 (numeric) or 2K (categorical), plus at most 9 or K per (model, version, feature) for
the reference: a constant, whatever the row counts.

Numeric values are valid when finite (``x >= -$float_max AND x <= $float_max``, false for NULL, NaN
and +-inf in every engine); categorical values are compared as text (``CAST(... AS VARCHAR)``), NULL
meaning missing.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlglot import exp

from mlmon.config import Instance
from mlmon.metrics.drift import PSI_BINS
from mlmon.metrics.serving import ServingAggregate
from mlmon.warehouse.engines import Engine, QueryError, is_numeric_type
from mlmon.warehouse.features import FeatureKind
from mlmon.warehouse.predictions import GroupKey
from mlmon.warehouse.sql import (
    Statement,
    bind_tables,
    configured_table,
    finite_or_none,
    model_filter,
    model_params,
    parse_template,
    partition_days,
    partition_filter,
    ts_param,
    used_params,
)

SERVING, TRAINING = 0, 1
#: the window index of the training rows of a version (serving windows are >= 0)
TRAINING_WINDOW = -1
#: the time range the statement reads the serving table by
RANGE = ("start", "end")


class ServingRow(NamedTuple):
    """Per (model, version, role, window, feature): its aggregates and one edge ('e') or value ('v') detail."""

    model: Any
    model_version: Any
    role: Any
    w: Any
    f: Any
    n: Any
    n_valid: Any
    mean: Any
    sd: Any
    lo: Any
    hi: Any
    n_distinct: Any
    mode_count: Any
    n_unseen: Any
    kind: Any
    i: Any
    x: Any
    c: Any
    cnt: Any


_KEY = "model, model_version, role, w, f"
#: the decile edges of a (model, version, feature) as one row, ``e1`` .. ``e9`` (NULL where edges merged)
_EDGE_COLUMNS = ", ".join(f"MAX(CASE WHEN k = {k} THEN e END) AS e{k}" for k in range(1, PSI_BINS))
#: the bin of value ``v.x``: the first k with ``x <= e_k`` (a NULL edge is skipped), NULL above ``e9``
_BIN = "CASE " + " ".join(f"WHEN v.x <= r.e{k} THEN {k}" for k in range(1, PSI_BINS)) + " END"


def _on(a: str, b: str, keys: Sequence[str] = ("model", "model_version", "role", "w", "f")) -> str:
    return " AND ".join(f"{a}.{k} = {b}.{k}" for k in keys)


# Everything after the unpivot (its CTEs are built per call, :func:`serving_value_ctes`).
_SERVING = Statement(
    "serving features",
    ServingRow,
    f"""
WITH unseen AS (
  SELECT v.model, v.model_version, v.role, v.w, v.f, SUM(v.cnt) AS n_unseen
  FROM value_counts AS v
  LEFT JOIN value_counts AS t
    ON t.role = {TRAINING} AND {_on("t", "v", ("model", "model_version", "f", "c"))}
  WHERE v.role = {SERVING} AND v.c IS NOT NULL AND t.c IS NULL
  GROUP BY v.model, v.model_version, v.role, v.w, v.f
),
ref_cum AS (
  SELECT model, model_version, f, x, cnt,
    SUM(cnt) OVER (PARTITION BY model, model_version, f ORDER BY x NULLS FIRST ROWS UNBOUNDED PRECEDING) AS cum,
    SUM(cnt) OVER (PARTITION BY model, model_version, f) AS total
  FROM value_counts
  WHERE role = {TRAINING} AND x IS NOT NULL
),
ref_k AS (
  -- x is e_k for every k in (k_below, k_upto]: (cum - cnt) / total < k / 10 <= cum / total
  SELECT model, model_version, f, x,
    FLOOR(CAST((cum - cnt) * {PSI_BINS} AS DOUBLE) / CAST(total AS DOUBLE)) AS k_below,
    LEAST(FLOOR(CAST(cum * {PSI_BINS} AS DOUBLE) / CAST(total AS DOUBLE)), {PSI_BINS - 1}) AS k_upto
  FROM ref_cum
),
edges AS (
  SELECT model, model_version, f, x AS e, CAST(k_upto AS BIGINT) AS k FROM ref_k WHERE k_below < k_upto
),
edge_row AS (
  SELECT model, model_version, f, {_EDGE_COLUMNS}
  FROM edges
  GROUP BY model, model_version, f
),
binned AS (
  -- each distinct value in the bin of the first edge at or above it (NULL above the last, and without
  -- edges): one CASE, not one joined row per (value, edge). The serving windows' numeric value counts are
  -- read here only, once: their distinct and modal counts come out of the same pass
  SELECT v.model, v.model_version, v.role, v.w, v.f, {_BIN} AS k, SUM(v.cnt) AS cnt, COUNT(*) AS nd,
    MAX(v.cnt) AS mc
  FROM num_counts AS v
  LEFT JOIN edge_row AS r ON {_on("v", "r", ("model", "model_version", "f"))}
  GROUP BY v.model, v.model_version, v.role, v.w, v.f, {_BIN}
  UNION ALL
  SELECT v.model, v.model_version, v.role, v.w, v.f, {_BIN} AS k, SUM(v.cnt) AS cnt, COUNT(*) AS nd,
    MAX(v.cnt) AS mc
  FROM value_counts AS v
  JOIN edge_row AS r ON {_on("v", "r", ("model", "model_version", "f"))}
  WHERE v.x IS NOT NULL
  GROUP BY v.model, v.model_version, v.role, v.w, v.f, {_BIN}
),
shape AS (
  SELECT {_KEY}, SUM(nd) AS n_distinct, MAX(mc) AS mode_count
  FROM binned
  WHERE role = {SERVING}
  GROUP BY {_KEY}
  UNION ALL
  SELECT {_KEY}, COUNT(*) AS n_distinct, MAX(cnt) AS mode_count
  FROM value_counts
  GROUP BY {_KEY}
),
below AS (
  SELECT b.model, b.model_version, b.role, b.w, b.f, e.k, e.e, SUM(b.cnt) AS cnt
  FROM binned AS b
  JOIN edges AS e ON {_on("b", "e", ("model", "model_version", "f"))}
  WHERE b.k <= e.k
  GROUP BY b.model, b.model_version, b.role, b.w, b.f, e.k, e.e
),
cat_ranked AS (
  SELECT {_KEY}, c, cnt, ROW_NUMBER() OVER (PARTITION BY {_KEY} ORDER BY cnt DESC, c) AS rk
  FROM value_counts
  WHERE c IS NOT NULL
),
ref_top AS (
  SELECT model, model_version, f, c FROM cat_ranked WHERE role = {TRAINING} AND rk <= $top_k
),
cat_detail AS (
  SELECT r.model, r.model_version, r.role, r.w, r.f, r.rk, r.c, r.cnt
  FROM cat_ranked AS r
  LEFT JOIN ref_top AS t ON r.role = {SERVING} AND {_on("t", "r", ("model", "model_version", "f", "c"))}
  WHERE r.rk <= $top_k OR t.c IS NOT NULL
),
detail AS (
  SELECT {_KEY}, 'e' AS kind, k AS i, e AS x, CAST(NULL AS VARCHAR) AS c, cnt FROM below
  UNION ALL
  SELECT {_KEY}, 'v' AS kind, rk AS i, CAST(NULL AS DOUBLE) AS x, c, cnt FROM cat_detail
)
SELECT s.model, s.model_version, s.role, s.w, s.f, s.n, s.n_valid, s.mean, s.sd, s.lo, s.hi,
  h.n_distinct, h.mode_count, u.n_unseen, d.kind, d.i, d.x, d.c, d.cnt
FROM stats AS s
LEFT JOIN shape AS h ON {_on("s", "h")}
LEFT JOIN unseen AS u ON {_on("s", "u")}
LEFT JOIN detail AS d ON {_on("s", "d")}
ORDER BY s.model, s.model_version, s.role, s.w, s.f, d.kind, d.i
""",
)


def source_table(instance: Instance) -> str:
    """The data-contract table the serving values are read from: ``serving_features`` when configured,
    else ``predictions``."""
    return "serving_features" if instance.tables.serving_features is not None else "predictions"


def _feature_column(i: int) -> str:
    return f"__feature_{i}__"


def _value(i: int, kind: FeatureKind) -> tuple[str, str]:
    """The numeric (``x``) and categorical (``c``) value of feature ``i`` (column ``v<i>``), as SQL."""
    if kind == "numeric":
        x = f"CAST(v{i} AS DOUBLE)"
        return f"CASE WHEN {x} >= -$float_max AND {x} <= $float_max THEN {x} END", "CAST(NULL AS VARCHAR)"
    return "CAST(NULL AS DOUBLE)", f"CAST(v{i} AS VARCHAR)"


#: value counts of no row, of the shape of the others (a statement without numeric or without other features)
_NO_COUNTS = ("SELECT CAST(NULL AS VARCHAR) AS model, CAST(NULL AS VARCHAR) AS model_version, 0 AS role, "
              "CAST(0 AS BIGINT) AS w, 0 AS f, CAST(NULL AS DOUBLE) AS x, CAST(NULL AS VARCHAR) AS c, "
              "CAST(0 AS BIGINT) AS cnt WHERE 1 = 0")


def serving_value_ctes(
    features: Sequence[str], kinds: Mapping[str, FeatureKind], reference: Sequence[str] = ()
) -> str:
    """The ``base`` (serving rows of the range), ``served`` and ``trained`` (training rows of the versions
    served, for the ``reference`` features), ``stats``, ``num_counts`` and ``value_counts`` CTEs (text to follow
    ``WITH``)."""
    if not features:
        raise ValueError("a serving features statement needs at least one feature")
    columns = ", ".join(f"src.{_feature_column(i)} AS v{i}" for i in range(len(features)))
    ctes = [f"""base AS (
  SELECT src.model AS model, COALESCE(CAST(src.model_version AS VARCHAR), '') AS model_version,
    CAST(FLOOR(EPOCH(src.ts) / $window_seconds) AS BIGINT) AS w, {columns}
  FROM __source__ AS src
  WHERE src.model IS NOT NULL AND src.ts >= $start AND src.ts < $end
)"""]
    branches, keys = [], []  # keys: (feature index, role) of each branch
    for i, name in enumerate(features):
        x, c = _value(i, kinds[name])
        branches.append(f"SELECT model, model_version, {SERVING} AS role, w, {i} AS f, {x} AS x, {c} AS c FROM base")
        keys.append((i, SERVING))
    if reference:
        ref = [i for i, name in enumerate(features) if name in reference]
        trained = ", ".join(f"trn.{_feature_column(i)} AS v{i}" for i in ref)
        ctes.append("served AS (SELECT DISTINCT model, model_version FROM base)")
        ctes.append(f"""trained AS (
  SELECT s.model AS model, s.model_version AS model_version, {trained}
  FROM __trn__ AS trn
  JOIN served AS s ON trn.model = s.model AND CAST(trn.model_version AS VARCHAR) = s.model_version
)""")
        for i in ref:
            x, c = _value(i, kinds[features[i]])
            branches.append(f"SELECT model, model_version, {TRAINING} AS role, {TRAINING_WINDOW} AS w, {i} AS f,"
                            f" {x} AS x, {c} AS c FROM trained")
            keys.append((i, TRAINING))
    # each feature aggregated on its own, then stacked: one unpivoted CTE read by both aggregates made the
    # engine hold the whole range's rows, once per feature, for its two readers (benchmarks/RESULTS.md)
    def stats(branch: str) -> str:
        return (f"SELECT {_KEY}, COUNT(*) AS n, COUNT(x) + COUNT(c) AS n_valid, AVG(x) AS mean, STDDEV_SAMP(x) AS sd,"
                f" MIN(x) AS lo, MAX(x) AS hi FROM ({branch}) AS u GROUP BY {_KEY}")

    def counts(branch: str) -> str:
        return (f"SELECT {_KEY}, x, c, COUNT(*) AS cnt FROM ({branch}) AS u WHERE x IS NOT NULL OR c IS NOT NULL"
                f" GROUP BY {_KEY}, x, c")

    # the serving windows' numeric value counts (about one row per row for a continuous feature) apart from
    # the rest (categorical values, the training rows): read by one CTE only, they stream through it
    serving_numeric = [counts(b) for b, (i, role) in zip(branches, keys, strict=True)
                       if role == SERVING and kinds[features[i]] == "numeric"]
    rest = [counts(b) for b, (i, role) in zip(branches, keys, strict=True)
            if role != SERVING or kinds[features[i]] != "numeric"]
    ctes.append(f"stats AS ({' UNION ALL '.join(map(stats, branches))})")
    ctes.append(f"num_counts AS ({' UNION ALL '.join(serving_numeric or [_NO_COUNTS])})")
    ctes.append(f"value_counts AS ({' UNION ALL '.join(rest or [_NO_COUNTS])})")
    return ",\n".join(ctes)


def build_serving_query(
    instance: Instance, features: Sequence[str], kinds: Mapping[str, FeatureKind], reference: Sequence[str] = (),
    include: Sequence[str] = (),
) -> exp.Expression:
    """The statement over the instance's serving table (and ``training_features`` for the ``reference``
    features, those of ``features`` that table has), for the models ``include`` (empty: every model)."""
    source = source_table(instance)
    query = model_filter(_SERVING.with_ctes(serving_value_ctes(features, kinds, reference)), "base", include, ())
    query = partition_filter(query, "base", "src", instance.partition(source), (RANGE,))
    renames = dict(instance.columns.get(source, {}))
    renames.update({_feature_column(i): instance.column(source, f) for i, f in enumerate(features)})
    tables: dict[str, tuple[str, Mapping[str, str]]] = {"src": (configured_table(instance, source), renames)}
    if reference:
        trained = dict(instance.columns.get("training_features", {}))
        trained.update({_feature_column(i): instance.column("training_features", f)
                        for i, f in enumerate(features) if f in reference})
        tables["trn"] = (configured_table(instance, "training_features"), trained)
    return bind_tables(query, tables)


def serving_params(
    instance: Instance, start: float, end: float, width: float, top_k: int, include: Sequence[str] = ()
) -> dict[str, Any]:
    """Bound values for :func:`build_serving_query` (those a statement has no placeholder for are dropped
    when it runs)."""
    params: dict[str, Any] = {"start": ts_param(start), "end": ts_param(end), "window_seconds": int(width),
                              "top_k": int(top_k), "float_max": sys.float_info.max, **model_params(include, ())}
    params.update(partition_days(params, (RANGE,), instance.partition(source_table(instance))))
    return params


_PROBE = parse_template("SELECT * FROM __source__ AS src WHERE 1 = 0")


def table_types(engine: Engine, instance: Instance, table: str) -> dict[str, str]:
    """Column name -> type name of the contract table ``table`` (a probe that reads no row). Raises ``QueryError``."""
    probe = bind_tables(_PROBE, {"src": (configured_table(instance, table), {})})
    return dict(engine.column_types(probe, {}))


def serving_kinds(
    engine: Engine, instance: Instance, features: Sequence[str], categorical: Sequence[str] = ()
) -> dict[str, FeatureKind]:
    """Numeric or categorical for each feature, from the serving columns' types (bool and text: categorical).

    Raises :class:`QueryError` naming the table and the column when a feature column (or the model,
    model_version or ts column) does not exist.
    """
    source = source_table(instance)
    table = configured_table(instance, source)
    types = table_types(engine, instance, source)
    for logical in ("model", "model_version", "ts", *features):
        column = instance.column(source, logical)
        if column not in types:
            what = "feature" if logical in features else "column"
            raise QueryError(f"table {table} has no column {column} ({what} {logical})")
    return {
        name: "numeric" if name not in categorical and is_numeric_type(types[instance.column(source, name)])
        else "categorical"
        for name in features
    }


def reference_features(engine: Engine, instance: Instance, features: Sequence[str]) -> list[str]:
    """The ``features`` that ``training_features`` has a column for (and its version columns). Raises ``QueryError``."""
    types = table_types(engine, instance, "training_features")
    for logical in ("model", "model_version"):
        if (column := instance.column("training_features", logical)) not in types:
            raise QueryError(f"table {instance.tables.training_features} has no column {column}")
    return [f for f in features if instance.column("training_features", f) in types]


# --- folding the rows ----------------------------------------------------------------------------------


@dataclass
class _Folded:
    head: ServingRow
    edges: dict[int, tuple[float, int]] = field(default_factory=dict)
    values: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class ServingResult:
    """Aggregates by (model, version, window) group and feature name, plus the result rows fetched."""

    groups: dict[GroupKey, dict[str, ServingAggregate]]
    rows_fetched: int


def parse_serving(rows: Sequence[tuple[Any, ...]], features: Sequence[str], top_k: int) -> ServingResult:
    """Fold result rows into one :class:`ServingAggregate` per (group, feature), each with its version's
    training aggregate when the statement read one."""
    folded: dict[tuple[str, str, int, int, int], _Folded] = {}
    for row in _SERVING.rows(rows):
        key = (str(row.model), str(row.model_version), int(row.role), int(row.w), int(row.f))
        item = folded.setdefault(key, _Folded(row))
        if row.kind == "e":
            item.edges[int(row.i)] = (float(row.x), int(row.cnt))
        elif row.kind == "v":
            item.values[str(row.c)] = (int(row.i), int(row.cnt))

    def aggregate(item: _Folded, edges: Mapping[int, float], reference: ServingAggregate | None) -> ServingAggregate:
        head = item.head
        top = sorted((rank, v) for v, (rank, _) in item.values.items() if rank <= top_k)
        return ServingAggregate(
            count=int(head.n), valid_count=int(head.n_valid or 0), mean=finite_or_none(head.mean),
            stddev=finite_or_none(head.sd), minimum=finite_or_none(head.lo), maximum=finite_or_none(head.hi),
            distinct_count=int(head.n_distinct or 0), mode_count=int(head.mode_count or 0),
            unseen_count=int(head.n_unseen or 0),
            at_or_below=tuple((e, item.edges[k][1] if k in item.edges else 0) for k, e in sorted(edges.items())),
            value_counts={v: cnt for v, (_, cnt) in item.values.items()},
            top_values=tuple(v for _, v in top),
            reference=reference,
        )

    references: dict[tuple[str, str, int], ServingAggregate] = {}
    ref_edges: dict[tuple[str, str, int], dict[int, float]] = {}
    for (model, version, role, _, f), item in folded.items():
        if role == TRAINING:
            ref_edges[(model, version, f)] = edges = {k: e for k, (e, _) in item.edges.items()}
            references[(model, version, f)] = aggregate(item, edges, None)
    groups: dict[GroupKey, dict[str, ServingAggregate]] = defaultdict(dict)
    for (model, version, role, w, f), item in sorted(folded.items()):
        if role == SERVING:
            ref = (model, version, f)
            groups[GroupKey(model, version, w)][features[f]] = aggregate(item, ref_edges.get(ref, {}),
                                                                          references.get(ref))
    return ServingResult(dict(groups), len(rows))


def fetch_serving_features(
    engine: Engine, instance: Instance, start: float, end: float, width: float, features: Sequence[str],
    kinds: Mapping[str, FeatureKind], top_k: int, reference: Sequence[str] = (), include: Sequence[str] = (),
) -> ServingResult:
    """Run the statement for ``[start, end)``: aggregates per (model, version, window) and feature, compared
    with the served versions' training rows for the ``reference`` features. Raises :class:`QueryError`."""
    query = build_serving_query(instance, features, kinds, reference, include)
    rows = engine.fetch(query, used_params(query, serving_params(instance, start, end, width, top_k, include)))
    return parse_serving(rows, features, top_k)
