"""The training job's feature statements: the kinds probe and the feature aggregates.

* :func:`build_probe_query` reads no row; its result description gives the feature columns' types.
* :func:`build_features_query` reads ``training_features`` for each model's latest (role 0) and
  previous (role 1) version, given as bound placeholders, unpivots the features with UNION ALL and
  returns per (model, role, feature) the exact aggregates (rows, valid rows, mean, sample stddev,
  distinct and modal counts) on each of its rows, plus detail rows: ``kind = 'e'`` (numeric), for
  each distinct decile edge ``e`` of the previous version (``i``: the largest k with ``e_k = e``),
  the valid rows ``<= e``; ``kind = 'v'`` (categorical), the count and rank of each value ranked
  <= K in this version or, for the latest version, in the previous one (ties by value ascending, in
  the engine's collation). A group without detail comes back as one row with a NULL kind. Rows per
  (model, feature) are at most ``2 * 9`` (numeric) or ``3 * K`` (categorical), plus two.

Feature names only ever appear as quoted identifiers: the templates use the stand-in columns
``src.__feature_<i>__``, which :func:`~mlmon.warehouse.sql.bind_source` maps to the configured names;
features are labelled in SQL by their index. Numeric values are valid when finite, tested portably
as ``x >= -$float_max AND x <= $float_max`` (false for NaN and +-inf in every engine); categorical
values are compared as text (``CAST(... AS VARCHAR)``), NULL meaning missing.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from sqlglot import exp

from mlmon.config import Instance
from mlmon.metrics.drift import PSI_BINS
from mlmon.metrics.training import FeatureAggregate
from mlmon.warehouse.engines import Engine, QueryError, is_numeric_type
from mlmon.warehouse.sql import (
    Statement,
    bind_source,
    configured_table,
    finite_or_none,
    parse_template,
    used_params,
)

FeatureKind = Literal["numeric", "categorical"]

LATEST, PREVIOUS = 0, 1


class FeatureRow(NamedTuple):
    """Per (model, role, feature): its aggregates and one edge (``kind`` 'e') or value ('v') detail."""

    model: Any
    role: Any
    f: Any
    n: Any
    n_valid: Any
    mean: Any
    sd: Any
    n_distinct: Any
    mode_count: Any
    kind: Any
    i: Any
    x: Any
    c: Any
    cnt: Any


# Everything after the unpivot (its CTEs are built per call, :func:`feature_value_ctes`).
# ``value_counts`` holds one row per distinct valid value of each (model, role, feature): numeric
# values in ``x``, categorical ones in ``c`` (the other is NULL).
_FEATURES = Statement(
    "training features",
    FeatureRow,
    f"""
WITH stats AS (
  SELECT model, role, f, COUNT(*) AS n, COUNT(x) + COUNT(c) AS n_valid, AVG(x) AS mean, STDDEV_SAMP(x) AS sd
  FROM unpivoted
  GROUP BY model, role, f
),
value_counts AS (
  SELECT model, role, f, x, c, COUNT(*) AS cnt
  FROM unpivoted
  WHERE x IS NOT NULL OR c IS NOT NULL
  GROUP BY model, role, f, x, c
),
shape AS (
  SELECT model, role, f, COUNT(*) AS n_distinct, MAX(cnt) AS mode_count
  FROM value_counts
  GROUP BY model, role, f
),
prev_cum AS (
  SELECT model, f, x, cnt,
    SUM(cnt) OVER (PARTITION BY model, f ORDER BY x NULLS FIRST ROWS UNBOUNDED PRECEDING) AS cum,
    SUM(cnt) OVER (PARTITION BY model, f) AS total
  FROM value_counts
  WHERE role = {PREVIOUS} AND x IS NOT NULL
),
prev_k AS (
  -- x is e_k for every k in (k_below, k_upto]: (cum - cnt) / total < k / 10 <= cum / total
  SELECT model, f, x,
    FLOOR(CAST((cum - cnt) * {PSI_BINS} AS DOUBLE) / CAST(total AS DOUBLE)) AS k_below,
    LEAST(FLOOR(CAST(cum * {PSI_BINS} AS DOUBLE) / CAST(total AS DOUBLE)), {PSI_BINS - 1}) AS k_upto
  FROM prev_cum
),
edges AS (
  SELECT model, f, x AS e, CAST(k_upto AS BIGINT) AS k FROM prev_k WHERE k_below < k_upto
),
below AS (
  SELECT v.model, v.role, v.f, e.k, e.e, SUM(v.cnt) AS cnt
  FROM value_counts AS v
  JOIN edges AS e ON v.model = e.model AND v.f = e.f
  WHERE v.x <= e.e
  GROUP BY v.model, v.role, v.f, e.k, e.e
),
cat_ranked AS (
  SELECT model, role, f, c, cnt, ROW_NUMBER() OVER (PARTITION BY model, role, f ORDER BY cnt DESC, c) AS rk
  FROM value_counts
  WHERE c IS NOT NULL
),
prev_top AS (
  SELECT model, f, c FROM cat_ranked WHERE role = {PREVIOUS} AND rk <= $top_k
),
cat_detail AS (
  SELECT r.model, r.role, r.f, r.rk, r.c, r.cnt
  FROM cat_ranked AS r
  LEFT JOIN prev_top AS t ON r.role = {LATEST} AND t.model = r.model AND t.f = r.f AND t.c = r.c
  WHERE r.rk <= $top_k OR t.c IS NOT NULL
),
detail AS (
  SELECT model, role, f, 'e' AS kind, k AS i, e AS x, CAST(NULL AS VARCHAR) AS c, cnt FROM below
  UNION ALL
  SELECT model, role, f, 'v' AS kind, rk AS i, CAST(NULL AS DOUBLE) AS x, c, cnt FROM cat_detail
)
SELECT s.model, s.role, s.f, s.n, s.n_valid, s.mean, s.sd, h.n_distinct, h.mode_count, d.kind, d.i, d.x, d.c, d.cnt
FROM stats AS s
LEFT JOIN shape AS h ON s.model = h.model AND s.role = h.role AND s.f = h.f
LEFT JOIN detail AS d ON s.model = d.model AND s.role = d.role AND s.f = d.f
ORDER BY s.model, s.role, s.f, d.kind, d.i
""",
)


def _feature_column(i: int) -> str:
    return f"__feature_{i}__"


def _feature_columns(instance: Instance, features: Sequence[str]) -> dict[str, str]:
    """Column renames for ``training_features``: the configured ones plus the feature stand-ins."""
    renames = dict(instance.columns.get("training_features", {}))
    for i, name in enumerate(features):
        renames[_feature_column(i)] = instance.column("training_features", name)
    return renames


def build_probe_query(instance: Instance) -> exp.Expression:
    """``SELECT * FROM <training_features> WHERE 1 = 0``: the table's columns and types, no rows."""
    template = parse_template("SELECT * FROM __source__ AS src WHERE 1 = 0")
    return bind_source(template, configured_table(instance, "training_features"), {})


def feature_kinds(
    engine: Engine, instance: Instance, features: Sequence[str], categorical: Sequence[str] = ()
) -> dict[str, FeatureKind]:
    """Numeric or categorical for each feature, from the column types (bool and text: categorical).

    Raises :class:`QueryError` naming the table and the column when a feature column (or the model
    or model_version column) does not exist.
    """
    table = configured_table(instance, "training_features")
    types = dict(engine.column_types(build_probe_query(instance), {}))
    for logical in ("model", "model_version", *features):
        column = instance.column("training_features", logical)
        if column not in types:
            what = "feature" if logical in features else "column"
            raise QueryError(f"table {table} has no column {column} ({what} {logical})")
    return {
        name: "numeric"
        if name not in categorical and is_numeric_type(types[instance.column("training_features", name)])
        else "categorical"
        for name in features
    }


# --- feature aggregates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeaturesResult:
    """Aggregates by (model, feature): (latest, previous or None), plus the result rows fetched."""

    features: dict[tuple[str, str], tuple[FeatureAggregate, FeatureAggregate | None]]
    rows_fetched: int


def feature_value_ctes(features: Sequence[str], kinds: Mapping[str, FeatureKind], versions: Sequence[int]) -> str:
    """The ``picks``, ``picked`` and ``unpivoted`` CTEs (text to follow ``WITH``) shared by the feature
    statement and ``mlmon plan``'s counts: one ``unpivoted`` row (model, role, f, x, c) per training row
    and feature of each picked version, the numeric value in ``x`` (NULL unless finite), the categorical
    one in ``c``. ``versions[i]`` (1 or 2) is how many versions model ``i`` binds, see :func:`version_params`.
    """
    if not features or not versions:
        raise ValueError("a feature statement needs at least one feature and one model")
    picks = " UNION ALL ".join(
        f"SELECT CAST($model_{i} AS VARCHAR) AS model, CAST($version_{i}_{role} AS VARCHAR) AS model_version,"
        f" {role} AS role"
        for i, n in enumerate(versions)
        for role in range(n)
    )
    columns = ", ".join(f"src.{_feature_column(i)} AS v{i}" for i in range(len(features)))
    branches = []
    for i, name in enumerate(features):
        if kinds[name] == "numeric":
            x = f"CAST(v{i} AS DOUBLE)"
            branches.append(
                f"SELECT model, role, {i} AS f, CASE WHEN {x} >= -$float_max AND {x} <= $float_max THEN {x} END AS x,"
                f" CAST(NULL AS VARCHAR) AS c FROM picked"
            )
        else:
            branches.append(
                f"SELECT model, role, {i} AS f, CAST(NULL AS DOUBLE) AS x, CAST(v{i} AS VARCHAR) AS c FROM picked"
            )
    return f"""picks AS ({picks}),
picked AS (
  SELECT p.model AS model, p.role AS role, {columns}
  FROM __source__ AS src
  JOIN picks AS p ON src.model = p.model AND src.model_version = p.model_version
),
unpivoted AS ({" UNION ALL ".join(branches)})"""


def version_params(versions: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """``$model_<i>``, ``$version_<i>_<role>`` and ``$float_max`` for :func:`feature_value_ctes`:
    ``versions`` maps model -> (latest[, previous])."""
    params: dict[str, Any] = {"float_max": sys.float_info.max}
    for i, (model, names) in enumerate(versions.items()):
        params[f"model_{i}"] = model
        params.update({f"version_{i}_{role}": v for role, v in enumerate(names)})
    return params


def bind_features(template: exp.Expression, instance: Instance, features: Sequence[str]) -> exp.Expression:
    """``template`` with ``__source__`` bound to the instance's ``training_features`` and its feature columns."""
    return bind_source(template, configured_table(instance, "training_features"), _feature_columns(instance, features))


def build_features_query(
    instance: Instance, features: Sequence[str], kinds: Mapping[str, FeatureKind], versions: Sequence[int]
) -> exp.Expression:
    """The feature statement; ``versions[i]`` (1 or 2) is how many versions model ``i`` binds.

    Placeholders: ``$model_<i>``, ``$version_<i>_0`` (latest) and ``$version_<i>_1`` (previous), see
    :func:`features_params`; ``$top_k`` and ``$float_max``.
    """
    return bind_features(_FEATURES.with_ctes(feature_value_ctes(features, kinds, versions)), instance, features)


def features_params(versions: Mapping[str, Sequence[str]], top_k: int) -> dict[str, Any]:
    """Bound values for :func:`build_features_query`: ``versions`` maps model -> (latest[, previous])."""
    return {"top_k": int(top_k), **version_params(versions)}


def parse_features(
    rows: Sequence[tuple[Any, ...]], models: Sequence[str], features: Sequence[str], top_k: int
) -> dict[tuple[str, str], tuple[FeatureAggregate, FeatureAggregate | None]]:
    """Fold result rows into (latest, previous) aggregates per (model, feature).

    A (model, feature) whose latest version has no row is absent; a missing previous is ``None``.
    """
    head: dict[tuple[str, int, int], FeatureRow] = {}
    edges: dict[tuple[str, int, int], dict[int, tuple[float, int]]] = defaultdict(dict)
    values: dict[tuple[str, int, int], dict[str, tuple[int, int]]] = defaultdict(dict)
    for row in _FEATURES.rows(rows):
        key = (str(row.model), int(row.role), int(row.f))
        head.setdefault(key, row)
        if row.kind == "e":
            edges[key][int(row.i)] = (float(row.x), int(row.cnt))
        elif row.kind == "v":
            values[key][str(row.c)] = (int(row.i), int(row.cnt))

    known = set(models)

    def aggregate(key: tuple[str, int, int], top_k_edges: Mapping[int, float]) -> FeatureAggregate:
        first = head[key]
        own = edges.get(key, {})
        ranked = values.get(key, {})
        top = sorted((rank, v) for v, (rank, _) in ranked.items() if rank <= top_k)
        return FeatureAggregate(
            count=int(first.n),
            valid_count=int(first.n_valid or 0),
            mean=finite_or_none(first.mean),
            stddev=finite_or_none(first.sd),
            distinct_count=int(first.n_distinct or 0),
            mode_count=int(first.mode_count or 0),
            at_or_below=tuple((e, own[k][1] if k in own else 0) for k, e in sorted(top_k_edges.items())),
            value_counts={v: cnt for v, (_, cnt) in ranked.items()},
            top_values=tuple(v for _, v in top),
        )

    out: dict[tuple[str, str], tuple[FeatureAggregate, FeatureAggregate | None]] = {}
    for model, role, f in sorted(head):
        if role != LATEST or model not in known:
            continue
        prev_key = (model, PREVIOUS, f)
        prev_edges = {k: e for k, (e, _) in edges.get(prev_key, {}).items()}
        latest = aggregate((model, LATEST, f), prev_edges)
        previous = aggregate(prev_key, prev_edges) if prev_key in head else None
        out[(model, features[f])] = (latest, previous)
    return out


def fetch_feature_aggregates(
    engine: Engine,
    instance: Instance,
    features: Sequence[str],
    kinds: Mapping[str, FeatureKind],
    versions: Mapping[str, Sequence[str]],
    top_k: int,
) -> FeaturesResult:
    """Run the feature statement for ``versions`` (model -> (latest[, previous])). Raises :class:`QueryError`."""
    if not features or not versions:
        return FeaturesResult({}, 0)
    query = build_features_query(instance, features, kinds, [len(v) for v in versions.values()])
    rows = engine.fetch(query, used_params(query, features_params(versions, top_k)))
    return FeaturesResult(parse_features(rows, list(versions), features, top_k), len(rows))
