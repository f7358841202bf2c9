"""Engines: open a connection, run a rendered query with bound parameters, return result tuples.

DuckDB (a file and/or Parquet folders), PostgreSQL, Apache Spark (PySpark) and any SQLAlchemy URL
(BigQuery, Snowflake, Trino, Databricks SQL, Redshift). Every engine runs its session in UTC, so
naive timestamps mean UTC everywhere, and bounds each statement by ``warehouse.query_timeout`` (a cut
statement is a :class:`QueryTimeout`; how each engine cuts it: its module's docstring and docs/engines.md).

One module per engine, each registered in :data:`ENGINES` under the config's ``engine:``; this
package lists the public names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mlmon.config import DuckDBWarehouse, PostgresWarehouse, SparkWarehouse, SQLAlchemyWarehouse
from mlmon.warehouse.engines.base import Engine, OutOfMemory, QueryError, QueryTimeout, WarehouseError
from mlmon.warehouse.engines.duckdb_engine import DuckDBEngine, open_duckdb
from mlmon.warehouse.engines.postgres_engine import PostgresEngine, open_postgres
from mlmon.warehouse.engines.spark_engine import SparkEngine
from mlmon.warehouse.engines.spark_sessions import SPARK, SparkSessions
from mlmon.warehouse.engines.sqlalchemy_engine import SQLAlchemyEngine, open_sqlalchemy
from mlmon.warehouse.engines.type_kinds import is_numeric_type, type_kind

__all__ = [
    "ENGINES", "SPARK", "DuckDBEngine", "Engine", "OutOfMemory", "PostgresEngine", "QueryError", "QueryTimeout",
    "SQLAlchemyEngine", "SparkEngine", "SparkSessions", "WarehouseError", "is_numeric_type", "open_engine",
    "type_kind",
]

#: how each ``warehouse: engine:`` opens: (its validated config, the caller's Spark sessions) -> an engine;
#: only Spark's uses the sessions
ENGINES: Mapping[str, Callable[[Any, SparkSessions], Engine]] = {
    "duckdb": lambda warehouse, _spark: open_duckdb(warehouse),
    "postgres": lambda warehouse, _spark: open_postgres(warehouse),
    "spark": SparkEngine,
    "sqlalchemy": lambda warehouse, _spark: open_sqlalchemy(warehouse),
}


def open_engine(
    warehouse: DuckDBWarehouse | PostgresWarehouse | SparkWarehouse | SQLAlchemyWarehouse,
    *,
    spark: SparkSessions = SPARK,
) -> Engine:
    """Connect to the configured warehouse. Raises :class:`WarehouseError`.

    An ``engine: spark`` warehouse runs in a session of ``spark``, the caller's; by default the
    process's (:data:`SPARK`, which every caller shares and which stops at exit).
    """
    return ENGINES[warehouse.engine](warehouse, spark)
