"""One portable query layer: queries are sqlglot trees written once, rendered per dialect.

Templates are written in DuckDB's SQL with two kinds of stand-in names: the table ``__source__``
and columns qualified by ``src.`` (their data-contract names). :func:`bind_source` swaps them for the
configured physical names as *quoted identifier nodes*; values (time ranges, model names, sizes)
stay bound placeholders (``$start``). No configured string is ever spliced into SQL text.

A query module declares each statement as a :class:`Statement`: the template and the ``NamedTuple``
its rows are read as, checked against each other when the module is imported.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, NamedTuple, TypeVar

import sqlglot
from sqlglot import exp

#: the dialects every query must render in (tested); duckdb, postgres and spark are executed for real
DIALECTS = ("duckdb", "postgres", "bigquery", "snowflake", "trino", "spark", "databricks", "redshift")

SOURCE_TABLE = "__source__"
SOURCE_ALIAS = "src"


def parse_template(sql: str) -> exp.Expression:
    """Parse a DuckDB-dialect query template once (at import time of the query module)."""
    tree: exp.Expression = sqlglot.parse_one(sql, read="duckdb")  # type: ignore[assignment]
    return tree


class StatementError(ValueError):
    """A statement's result columns are not its row type's fields (raised when its module is imported)."""


def result_columns(query: exp.Expression) -> list[str]:
    """The output column names of ``query``'s outermost select, in order (an unnamed one as its SQL)."""
    if not isinstance(query, exp.Query):
        raise TypeError(f"not a query: {query.sql('duckdb')}")
    return [e.output_name or e.sql("duckdb") for e in query.selects]


def _top_with(query: exp.Expression) -> exp.With | None:
    return next((w for w in query.find_all(exp.With) if w.parent is query), None)


Row = TypeVar("Row", bound=NamedTuple)


class Statement(Generic[Row]):
    """A parsed template and the ``NamedTuple`` each of its result rows is read as.

    Declared at import time of the query module; raises :class:`StatementError` naming the statement
    and the difference unless the select's output columns are ``row``'s fields, in order.
    """

    def __init__(self, name: str, row: type[Row], sql: str) -> None:
        self.name = name
        self.row = row
        self.template = parse_template(sql)
        columns, fields = result_columns(self.template), list(row._fields)
        if columns != fields:
            raise StatementError(_column_difference(name, row.__name__, columns, fields))

    def with_ctes(self, ctes: str) -> exp.Expression:
        """A copy of the template with the CTEs ``ctes`` (text to follow ``WITH``) before its own.

        For statements whose first CTEs are built per call; the result columns stay the declared ones.
        """
        query = self.template.copy()
        assert isinstance(query, exp.Query)
        own = _top_with(query)
        existing = list(own.pop().expressions) if own is not None else []
        head = _top_with(parse_template(f"WITH {ctes} SELECT 1"))
        assert head is not None
        for cte in [*head.expressions, *existing]:
            query = query.with_(cte.alias, as_=cte.this, copy=False)
        return query

    def rows(self, fetched: Iterable[tuple[Any, ...]]) -> Iterator[Row]:
        """``fetched`` (the engine's tuples) as rows of the declared type, one at a time."""
        # lazily: a list of every row would keep hundreds of thousands of tuples alive for the collector to scan
        return map(self.row._make, fetched)

    def getter(self, *names: str) -> Callable[[tuple[Any, ...]], Any]:
        """An ``itemgetter`` of the columns ``names`` of the engine's tuples (a tuple of them for several).

        For a loop over many rows, where building a row object per row would cost more than the fold.
        """
        if unknown := [n for n in names if n not in self.row._fields]:
            raise StatementError(f"statement {self.name!r} has no column {', '.join(unknown)} ({self.row.__name__})")
        return operator.itemgetter(*(self.row._fields.index(n) for n in names))


def _column_difference(name: str, row: str, columns: list[str], fields: list[str]) -> str:
    lines = [f"statement {name!r} returns columns that are not the fields of {row}, in order:",
             f"  columns: {', '.join(columns)}", f"  fields:  {', '.join(fields)}"]
    if missing := [f for f in fields if f not in columns]:
        lines.append(f"  fields without a column: {', '.join(missing)}")
    if extra := [c for c in columns if c not in fields]:
        lines.append(f"  columns without a field: {', '.join(extra)}")
    at = next(i for i in range(max(len(columns), len(fields))) if columns[i:i + 1] != fields[i:i + 1])
    column, field = (names[at] if at < len(names) else "(none)" for names in (columns, fields))
    lines.append(f"  first difference: column {at + 1} is {column}, field {at + 1} is {field}")
    return "\n".join(lines)


def _table_node(name: str) -> exp.Table:
    parts = name.split(".")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError(f"bad table name {name!r}")
    ident = [exp.to_identifier(p, quoted=True) for p in parts]
    catalog = ident[-3] if len(ident) == 3 else None
    db = ident[-2] if len(ident) >= 2 else None
    return exp.Table(this=ident[-1], db=db, catalog=catalog)


def bind_tables(template: exp.Expression, sources: Mapping[str, tuple[str, Mapping[str, str]]]) -> exp.Expression:
    """Bind several stand-in tables at once.

    ``sources`` maps a template alias (``src``, ``lab``, ``rep``) to ``(physical table, column
    renames)``: the table ``__<alias>__`` (``__source__`` for ``src``) becomes the quoted physical
    table and every column qualified by the alias becomes its quoted physical column.
    """
    tables = {("__source__" if alias == SOURCE_ALIAS else f"__{alias}__"): alias for alias in sources}

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name in tables:
            new = _table_node(sources[tables[node.name]][0])
            if node.args.get("alias"):
                new.set("alias", node.args["alias"].copy())
            return new
        if isinstance(node, exp.Column) and node.table in sources:
            physical = sources[node.table][1].get(node.name, node.name)
            return exp.Column(this=exp.to_identifier(physical, quoted=True), table=exp.to_identifier(node.table))
        return node

    return template.transform(swap, copy=True)


def bind_source(template: exp.Expression, table: str, columns: Mapping[str, str]) -> exp.Expression:
    """Return a copy of ``template`` reading ``table`` with logical columns renamed per ``columns``."""
    return bind_tables(template, {SOURCE_ALIAS: (table, columns)})


def in_list(column: exp.Expression, names: Sequence[str], prefix: str) -> exp.Expression:
    """``column IN ($prefix_0, $prefix_1, ...)`` with one bound placeholder per value."""
    return exp.In(this=column, expressions=[exp.Placeholder(this=f"{prefix}_{i}") for i in range(len(names))])


def cte_select(query: exp.Expression, name: str) -> exp.Select:
    """The SELECT of the CTE ``name`` in ``query`` (to add conditions to it in place)."""
    return next(s for s in query.find_all(exp.Select) if isinstance(s.parent, exp.CTE) and s.parent.alias == name)


def model_filter(
    query: exp.Expression, cte: str, include: Sequence[str], exclude: Sequence[str], column: str = "model"
) -> exp.Expression:
    """Add ``src.model IN (...)`` / ``NOT src.model IN (...)`` (bound placeholders) to the CTE ``cte``.

    Placeholders are ``$model_<i>`` and ``$exclude_<i>``; see :func:`model_params`.
    """
    select = cte_select(query, cte)
    col = exp.column(column, table=SOURCE_ALIAS)
    if include:
        select.where(in_list(col, include, "model"), copy=False)
    if exclude:
        select.where(exp.Not(this=in_list(col.copy(), exclude, "exclude")), copy=False)
    return query


def model_params(include: Sequence[str], exclude: Sequence[str]) -> dict[str, str]:
    """The bound values of :func:`model_filter`."""
    return {**{f"model_{i}": m for i, m in enumerate(include)}, **{f"exclude_{i}": m for i, m in enumerate(exclude)}}


def used_params(query: exp.Expression, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` less the values ``query`` has no placeholder for (DuckDB refuses extra named values)."""
    used = {p.name for p in query.find_all(exp.Placeholder)}
    return {k: v for k, v in params.items() if k in used}


def partition_filter(
    query: exp.Expression, cte: str, alias: str, column: str | None, ranges: Sequence[tuple[str, str]]
) -> exp.Expression:
    """Add ``CAST(alias.column AS VARCHAR) BETWEEN $<a>_day AND $<b>_day OR ...`` to the CTE ``cte``, one
    term per time range ``[$a, $b)`` the CTE reads; nothing when ``column`` is None.

    ``column`` is a date partition column (``dt=2026-12-01/`` folders; DATE or ``'YYYY-MM-DD'`` text) holding
    the UTC date of the table's time column: a predicate on the partition column itself is what lets an
    engine skip whole partitions (DuckDB and Spark over Parquet, Hive tables in Trino), where the time
    predicate alone is checked file by file. Bind the days with :func:`partition_days`.
    """
    if column is None:
        return query
    text = exp.cast(exp.column(column, table=alias), "VARCHAR")
    terms = [exp.Between(this=text.copy(), low=exp.Placeholder(this=f"{a}_day"), high=exp.Placeholder(this=f"{b}_day"))
             for a, b in ranges]
    cte_select(query, cte).where(exp.Paren(this=exp.or_(*terms)), copy=False)
    return query


def partition_days(params: Mapping[str, Any], ranges: Sequence[tuple[str, str]], column: str | None) -> dict[str, str]:
    """The bound days of :func:`partition_filter` over ``column`` (none when it is None): for each range
    ``[$a, $b)`` of ``params`` (naive UTC datetimes), ``<a>_day`` is the date of ``$a`` and ``<b>_day`` that of
    the range's last instant."""
    out: dict[str, str] = {}
    if column is None:
        return out
    for a, b in ranges:
        out[f"{a}_day"] = params[a].date().isoformat()
        out[f"{b}_day"] = max(params[a], params[b] - dt.timedelta(microseconds=1)).date().isoformat()
    return out


def _portable(node: exp.Expression, dialect: str) -> exp.Expression:
    if isinstance(node, exp.TimeToUnix):
        # sqlglot renders DuckDB's EPOCH(ts) as TIME_TO_UNIX(ts) for BigQuery, which has no such
        # function; UNIX_SECONDS is BigQuery's spelling (whole seconds, enough to place a row in a window).
        if dialect == "bigquery":
            return exp.UnixSeconds(this=node.this)
        # Spark's UNIX_TIMESTAMP (sqlglot's spelling) drops the fraction of a second; EPOCH keeps it
        if dialect in ("spark", "databricks"):
            micros = exp.cast(exp.UnixMicros(this=node.this), "double")
            return exp.Paren(this=exp.Div(this=micros, expression=exp.Literal.number(1_000_000)))
    return node


_PLACEHOLDER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _colon_placeholder(node: exp.Expression) -> exp.Expression:
    # a Var renders as written: the name is mlmon's own (start, model_0), checked, never a config value
    if isinstance(node, exp.Placeholder) and node.name:
        if not _PLACEHOLDER_NAME.fullmatch(node.name):
            raise ValueError(f"bad placeholder name {node.name!r}")
        return exp.Var(this=f":{node.name}")
    return node


def render(query: exp.Expression, dialect: str, placeholders: Literal["dialect", "colon"] = "dialect") -> str:
    """SQL text for ``dialect``; raises ``sqlglot.errors.UnsupportedError`` if it cannot be expressed.

    ``placeholders``: the dialect's own bound-parameter markers (``$start``, ``%(start)s``, ``@start``,
    ``:start``), or ``:start`` whatever the dialect (SQLAlchemy's ``text()`` binds those, then hands the
    driver its own style).
    """
    tree = query.transform(_portable, dialect, copy=True)
    if placeholders == "colon":
        tree = tree.transform(_colon_placeholder, copy=False)
    return tree.sql(dialect=dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)


def ts_param(seconds: float) -> dt.datetime:
    """A bound timestamp value: Unix seconds as a naive UTC datetime (engines run in UTC)."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).replace(tzinfo=None)


_EXISTS = parse_template("SELECT 1 AS one FROM __source__ AS src WHERE 1 = 0")


def exists_query(table: str) -> exp.Expression:
    """A query that fails only if ``table`` does not exist (it reads no rows and names no column)."""
    return bind_source(_EXISTS, table, {})


def configured_table(instance: Any, attr: str) -> str:
    """The physical name of table ``attr`` of ``instance``; a ``ValueError`` when it is not configured."""
    table: str | None = getattr(instance.tables, attr)
    if table is None:
        raise ValueError(f"{attr} table is not configured")
    return table


def finite_or_none(value: Any) -> float | None:
    """A fetched number as a float, None when NULL, NaN or infinite."""
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None
