"""Segments (``segment_by``): which values of each segment column are kept, and the SQL that maps a row to its
segment value inside the predictions and quality statements.

The choice statement (:func:`fetch_choice`) reads one UTC day of the prediction log and returns, per model and
segment column, the ``segment_top_k`` values with the most rows (ties by value), the NULL rows' count and the
number of distinct values: at most ``top_k + 1`` rows per (model, column), whatever the traffic.

In the windows' statements every prediction row is repeated once per segment column (a ``UNION ALL`` of the
rows whose model has a choice for the row's day), with its value mapped by :func:`segment_value`: NULL is
``__null__``, a kept value stays, anything else is ``__other__``. The segment aggregates then group by
``(model, model_version, w, sc, sv)`` beside the unsegmented ones, in the same statement: one read of the
tables, and the ranks of the AUC and the quantiles are taken within each slice (which ``GROUPING SETS``,
aggregating only, cannot give). Values are compared in their text form (``CAST(... AS VARCHAR)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlglot import exp

from mlmon.config import Instance
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

OTHER = "__other__"
NULL = "__null__"
DAY = 86400.0


def segment_columns(indexes: Sequence[int], alias: str = "src") -> str:
    """``, CAST(src.__segment_0__ AS VARCHAR) AS s0, ...``: the raw values of the segment columns at ``indexes`` (in
    ``segment_by``), for a CTE's select list."""
    return "".join(f",\n    CAST({alias}.__segment_{i}__ AS VARCHAR) AS s{i}" for i in indexes)


def column_renames(instance: Instance, table: str, columns: Sequence[str]) -> dict[str, str]:
    """The table's column renames plus the stand-ins ``__segment_<i>__`` -> the segment columns."""
    return {**instance.columns.get(table, {}), **{f"__segment_{i}__": c for i, c in enumerate(columns)}}


class ChoiceRow(NamedTuple):
    """One kept value (or the NULL rows, ``sv`` NULL) of one segment column of one model."""

    model: Any
    sc: Any
    sv: Any
    c: Any
    n_distinct: Any


def _choice_statement(count: int) -> Statement[ChoiceRow]:
    values = "\n  UNION ALL\n  ".join(
        f"SELECT model, {i} AS sc, s{i} AS sv, COUNT(*) AS c FROM base GROUP BY model, s{i}" for i in range(count)
    )
    return Statement("segment values", ChoiceRow, f"""
WITH base AS (
  SELECT src.model AS model{segment_columns(range(count))}
  FROM __source__ AS src
  WHERE src.model IS NOT NULL AND src.ts >= $start AND src.ts < $end
),
vals AS (
  {values}
),
ranked AS (
  SELECT model, sc, sv, c,
    ROW_NUMBER() OVER (PARTITION BY model, sc, CASE WHEN sv IS NULL THEN 1 ELSE 0 END
                       ORDER BY c DESC, sv NULLS FIRST) AS r,
    COUNT(sv) OVER (PARTITION BY model, sc) AS n_distinct
  FROM vals
)
SELECT model, sc, sv, c, n_distinct FROM ranked WHERE r <= $top_k OR sv IS NULL ORDER BY model, sc, r
""")


@dataclass(frozen=True)
class ColumnChoice:
    """One segment column of one model over one day: the kept values (most rows first), rows with NULL, distinct
    values (NULL not counted)."""

    values: tuple[str, ...]
    nulls: int
    distinct: int

    def to_json(self) -> dict[str, Any]:
        return {"values": list(self.values), "nulls": self.nulls, "distinct": self.distinct}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnChoice:
        return cls(tuple(str(v) for v in data["values"]), int(data["nulls"]), int(data["distinct"]))


#: model -> segment column -> its choice
Choice = dict[str, dict[str, ColumnChoice]]


def fetch_choice(
    engine: Engine, instance: Instance, columns: Sequence[str], start: float, end: float, top_k: int,
    models: Sequence[str] = (),
) -> tuple[Choice, int]:
    """The choice over ``[start, end)`` for every model with rows there (restricted to ``models``), and the rows
    fetched."""
    table = instance.tables.predictions
    if table is None:
        raise ValueError("predictions table is not configured")
    statement = _choice_statement(len(columns))
    ranges = (("start", "end"),)
    query = model_filter(statement.template.copy(), "base", models, ())
    query = partition_filter(query, "base", "src", instance.partition("predictions"), ranges)
    query = bind_source(query, table, column_renames(instance, "predictions", columns))
    params: dict[str, Any] = {"start": ts_param(start), "end": ts_param(end), "top_k": int(top_k),
                              **model_params(models, ())}
    params.update(partition_days(params, ranges, instance.partition("predictions")))
    rows = engine.fetch(query, params)
    found: dict[tuple[str, int], tuple[list[str], int, int]] = {}
    for row in statement.rows(rows):
        key = (str(row.model), int(row.sc))
        values, nulls, _ = found.get(key, ([], 0, 0))
        if row.sv is None:
            nulls = int(row.c)
        else:
            values.append(str(row.sv))
        found[key] = (values, nulls, int(row.n_distinct or 0))
    out: Choice = {}
    for (model, sc), (values, nulls, distinct) in sorted(found.items()):
        out.setdefault(model, {})[columns[sc]] = ColumnChoice(tuple(values), nulls, distinct)
    return out, len(rows)


@dataclass(frozen=True)
class DayChoice:
    """The choice in force for the windows ``[lo, hi)`` (window indexes) of one day, less the refused columns."""

    lo: int
    hi: int
    #: segment column -> model -> kept values (only models whose column is not refused)
    kept: Mapping[str, Mapping[str, tuple[str, ...]]]


@dataclass(frozen=True)
class SegmentPlan:
    """What a statement needs to compute segments: the columns, and the days' choices of the range."""

    columns: tuple[str, ...]
    days: tuple[DayChoice, ...]

    def active(self) -> list[int]:
        """The indexes of the columns some model of some day has a choice for (the others add nothing)."""
        return [i for i, c in enumerate(self.columns) if any(day.kept.get(c) for day in self.days)]


def _ph(name: str) -> exp.Placeholder:
    return exp.Placeholder(this=name)


def _in_day(d: int) -> exp.Condition:
    w = exp.column("w")
    return exp.and_(exp.GTE(this=w, expression=_ph(f"sgd{d}_lo")), exp.LT(this=w.copy(), expression=_ph(f"sgd{d}_hi")))


def _in(column: exp.Expression, names: Sequence[str]) -> exp.Expression:
    return exp.In(this=column, expressions=[_ph(n) for n in names])


def segment_terms(plan: SegmentPlan, i: int) -> tuple[exp.Condition, exp.Expression, dict[str, Any]]:
    """For segment column ``i``: which rows it covers (their model has a choice for their day), the row's segment
    value (:data:`NULL`, the kept value, or :data:`OTHER`) and the values bound."""
    column = plan.columns[i]
    raw = exp.column(f"s{i}")
    eligible, kept_terms = [], []
    params: dict[str, Any] = {}
    for d, day in enumerate(plan.days):
        models = sorted(day.kept.get(column, {}))
        if not models:
            continue
        params[f"sgd{d}_lo"], params[f"sgd{d}_hi"] = day.lo, day.hi
        names = [f"sg{i}_{d}_m{j}" for j in range(len(models))]
        params.update(zip(names, models, strict=True))
        eligible.append(exp.and_(_in_day(d), _in(exp.column("model"), names)))
        for j, model in enumerate(models):
            values = day.kept[column][model]
            if not values:
                continue
            value_names = [f"sg{i}_{d}_m{j}_v{k}" for k in range(len(values))]
            params.update(zip(value_names, values, strict=True))
            kept_terms.append(exp.and_(_in_day(d), exp.EQ(this=exp.column("model"), expression=_ph(names[j])),
                                       _in(raw.copy(), value_names)))
    case = exp.Case(ifs=[exp.If(this=exp.Is(this=raw.copy(), expression=exp.Null()), true=exp.Literal.string(NULL))])
    if kept_terms:
        case.append("ifs", exp.If(this=exp.or_(*kept_terms), true=raw.copy()))
    case.set("default", exp.Literal.string(OTHER))
    where = exp.or_(*eligible) if eligible else exp.false()
    return where, case, params


def bind_segments(query: exp.Expression, plan: SegmentPlan, indexes: Sequence[int]) -> exp.Expression:
    """Swap the template's stand-ins ``__in<k>__`` and ``__sv<k>__`` (the k-th unpivoted branch, for segment
    column ``indexes[k]``) for the conditions of :func:`segment_terms` (values: :func:`segment_params`)."""
    swaps: dict[str, Any] = {}
    for k, i in enumerate(indexes):
        where, value, _ = segment_terms(plan, i)
        swaps[f"__in{k}__"], swaps[f"__sv{k}__"] = where, value

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name in swaps:
            new: exp.Expression = swaps[node.name].copy()
            return new
        return node

    return query.transform(swap, copy=False)


def segment_params(plan: SegmentPlan | None) -> dict[str, Any]:
    """The values the segment terms of :func:`bind_segments` bind (none without a plan)."""
    params: dict[str, Any] = {}
    if plan is not None:
        for i in plan.active():
            params.update(segment_terms(plan, i)[2])
    return params


def unpivot(source: str, columns: str, indexes: Sequence[int]) -> str:
    """``SELECT <columns>, 0 AS sc, __sv0__ AS sv FROM <source> WHERE __in0__ UNION ALL ...``: each row of
    ``source`` once per segment column it is eligible for (``sc`` the column's index in ``segment_by``)."""
    return "\n  UNION ALL\n  ".join(
        f"SELECT {columns}, {i} AS sc, __sv{k}__ AS sv FROM {source} WHERE __in{k}__" for k, i in enumerate(indexes)
    )
