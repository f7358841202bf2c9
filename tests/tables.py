"""Write arbitrary small tables into the test warehouses (a DuckDB file or a PostgreSQL schema)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.helpers import Warehouse

#: portable column type -> (DuckDB type, PostgreSQL type)
TYPES = {
    "text": ("VARCHAR", "TEXT"),
    "double": ("DOUBLE", "DOUBLE PRECISION"),
    "bigint": ("BIGINT", "BIGINT"),
    "integer": ("INTEGER", "INTEGER"),
    "boolean": ("BOOLEAN", "BOOLEAN"),
    "timestamp": ("TIMESTAMP", "TIMESTAMP"),
    "timestamptz": ("TIMESTAMPTZ", "TIMESTAMPTZ"),
    "date": ("DATE", "DATE"),
}


def write_table(
    warehouse: Warehouse, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]],
    replace: bool = False,
) -> None:
    """Create table ``name`` with ``columns`` ((name, portable type), ...) and insert ``rows``.

    ``replace``: drop the table first if it exists.
    """
    engine_index = 0 if warehouse.engine == "duckdb" else 1
    ddl = ", ".join(f'"{c}" {TYPES[t][engine_index]}' for c, t in columns)
    if warehouse.engine == "duckdb":
        import duckdb

        con = duckdb.connect(str(warehouse.path))  # type: ignore[attr-defined]
        try:
            if replace:
                con.execute(f'DROP TABLE IF EXISTS "{name}"')
            con.execute(f'CREATE TABLE "{name}" ({ddl})')
            row_marks = "(" + ", ".join("?" for _ in columns) + ")"
            for i in range(0, len(rows), 500):  # multi-row inserts: executemany is slow on DuckDB
                part = rows[i : i + 500]
                marks = ", ".join(row_marks for _ in part)
                con.execute(f'INSERT INTO "{name}" VALUES {marks}', [v for r in part for v in r])
        finally:
            con.close()
        return
    import psycopg

    table = f'"{warehouse.schema}"."{name}"'  # type: ignore[attr-defined]
    with psycopg.connect(warehouse.url, autocommit=True) as con:  # type: ignore[attr-defined]
        if replace:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(f"CREATE TABLE {table} ({ddl})")
        with con.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row))
