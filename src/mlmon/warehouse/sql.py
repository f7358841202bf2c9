"""One portable query layer: queries are sqlglot trees written once, rendered per dialect.

Templates are written in DuckDB's SQL with two kinds of stand-in names: the table ``__source__``
and columns qualified by ``src.`` (their data-contract names). :func:`bind_source` swaps them for the
configured physical names as *quoted identifier nodes*; values (time ranges, model names, sizes)
stay bound placeholders (``$start``). No configured string is ever spliced into SQL text.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlglot
from sqlglot import exp

#: the dialects every query must render in (tested); the first two are executed for real
DIALECTS = ("duckdb", "postgres", "bigquery", "snowflake", "trino", "spark")

SOURCE_TABLE = "__source__"
SOURCE_ALIAS = "src"


def parse_template(sql: str) -> exp.Expression:
    """Parse a DuckDB-dialect query template once (at import time of the query module)."""
    tree: exp.Expression = sqlglot.parse_one(sql, read="duckdb")  # type: ignore[assignment]
    return tree


def _table_node(name: str) -> exp.Table:
    parts = name.split(".")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError(f"bad table name {name!r}")
    ident = [exp.to_identifier(p, quoted=True) for p in parts]
    catalog = ident[-3] if len(ident) == 3 else None
    db = ident[-2] if len(ident) >= 2 else None
    return exp.Table(this=ident[-1], db=db, catalog=catalog)


def bind_source(template: exp.Expression, table: str, columns: Mapping[str, str]) -> exp.Expression:
    """Return a copy of ``template`` reading ``table`` with logical columns renamed per ``columns``."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name == SOURCE_TABLE:
            new = _table_node(table)
            if node.args.get("alias"):
                new.set("alias", node.args["alias"].copy())
            return new
        if isinstance(node, exp.Column) and node.table == SOURCE_ALIAS:
            physical = columns.get(node.name, node.name)
            return exp.Column(
                this=exp.to_identifier(physical, quoted=True),
                table=exp.to_identifier(SOURCE_ALIAS),
            )
        return node

    return template.transform(swap, copy=True)


def in_list(column: exp.Expression, names: list[str], prefix: str) -> exp.Expression:
    """``column IN ($prefix_0, $prefix_1, ...)`` with one bound placeholder per value."""
    return exp.In(this=column, expressions=[exp.Placeholder(this=f"{prefix}_{i}") for i in range(len(names))])


def _portable(node: exp.Expression, dialect: str) -> exp.Expression:
    # sqlglot renders DuckDB's EPOCH(ts) as TIME_TO_UNIX(ts) for BigQuery, which has no such
    # function; UNIX_SECONDS is BigQuery's spelling (whole seconds, enough to place a row in a window).
    if dialect == "bigquery" and isinstance(node, exp.TimeToUnix):
        return exp.UnixSeconds(this=node.this)
    return node


def render(query: exp.Expression, dialect: str) -> str:
    """SQL text for ``dialect``; raises ``sqlglot.errors.UnsupportedError`` if it cannot be expressed."""
    tree = query.transform(_portable, dialect, copy=True)
    return tree.sql(dialect=dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)
