"""DuckDB (``engine: duckdb``): a database file, opened read-only, and/or Parquet folders read as views.

``warehouse.query_timeout``: DuckDB has no statement timeout setting; a :class:`~.base.Watchdog` calls the
connection's ``interrupt()`` when a statement runs past it, and the ``InterruptException`` DuckDB raises is a
:class:`~.base.QueryTimeout` (the connection stays usable).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlglot import exp

from mlmon.config import DuckDBWarehouse
from mlmon.warehouse.engines.base import OutOfMemory, QueryError, WarehouseError, Watchdog, naive_utc, timeout_error
from mlmon.warehouse.engines.parquet import parquet_source
from mlmon.warehouse.sql import render


class DuckDBEngine:
    """A DuckDB database file, opened read-only (the agent never writes to the warehouse), and/or
    Parquet folders read as views (in memory when there is no file).

    ``query_timeout`` (seconds; ``warehouse.query_timeout`` when opened from the config, None: unbounded)
    interrupts a statement that runs longer.
    """

    dialect = "duckdb"

    def __init__(
        self, path: str | None, parquet: Mapping[str, str] | None = None, settings: Mapping[str, Any] | None = None,
        *, query_timeout: float | None = None,
    ) -> None:
        import duckdb

        self._label = f"duckdb file {path}" if path else "duckdb"
        self._query_timeout = query_timeout
        # results are ordered by the statements themselves: not keeping insertion order saves memory
        config = {"preserve_insertion_order": False, **(settings or {})}
        try:
            if path:
                self._con = duckdb.connect(path, read_only=True, config=config)
            else:
                self._con = duckdb.connect(":memory:", config=config)
            self._con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open {self._label}: {exc}") from None
        try:
            for name, location in (parquet or {}).items():
                source, folder = parquet_source(name, location)
                files = str(Path(source) / "**" / "*.parquet") if folder else source
                # the relation API takes the path as a value: no configured string goes into SQL text;
                # register() makes a temporary view (the file stays read-only; a view named like one of
                # its tables hides that table), and each open lists the files anew
                self._con.register(name, self._con.read_parquet(files, hive_partitioning=True))
        except duckdb.Error as exc:
            self._con.close()
            raise WarehouseError(f"warehouse -> parquet -> {name}: cannot read {location}: {exc}") from None
        except WarehouseError:
            self._con.close()
            raise

    def _run(self, query: exp.Expression, params: Mapping[str, Any]) -> tuple[list[tuple[Any, ...]], list[Any]]:
        """The statement's rows and description, interrupted past the timeout."""
        import duckdb

        watchdog = Watchdog(self._query_timeout, self._con.interrupt)
        try:
            with watchdog:
                cursor = self._con.execute(render(query, self.dialect), naive_utc(params))
                rows = cursor.fetchall()
                return rows, list(cursor.description or ())
        except duckdb.InterruptException as exc:
            if watchdog.fired and self._query_timeout is not None:
                raise timeout_error(self._label, self._query_timeout, str(exc)) from None
            raise QueryError(f"{self._label}: {exc}") from None
        except duckdb.OutOfMemoryException as exc:
            first = str(exc).splitlines()[0]  # DuckDB's tuning hints follow; the warning names the settings
            raise OutOfMemory(f"{self._label}: {first} (warehouse -> memory_limit)") from None
        except duckdb.Error as exc:
            raise QueryError(f"{self._label}: {exc}") from None

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return self._run(query, params)[0]

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [(str(d[0]), str(d[1])) for d in self._run(query, params)[1]]

    def close(self) -> None:
        self._con.close()


def open_duckdb(warehouse: DuckDBWarehouse) -> DuckDBEngine:
    """The engine for an ``engine: duckdb`` warehouse: its file, its Parquet views, its memory, threads and
    statement timeout."""
    settings: dict[str, Any] = {"memory_limit": warehouse.memory_limit}
    if warehouse.threads is not None:
        settings["threads"] = warehouse.threads
    if warehouse.temp_directory is not None:
        settings["temp_directory"] = str(warehouse.temp_directory)
    path = str(warehouse.path) if warehouse.path is not None else None
    return DuckDBEngine(path, warehouse.parquet, settings, query_timeout=warehouse.query_timeout)
