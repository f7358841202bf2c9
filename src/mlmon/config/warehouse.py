"""``instances -> N -> warehouse``: one model per engine, told apart by ``engine:``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from mlmon.config.types import Duration, _Frozen

#: the name of a view a Parquet entry registers (no dots: a view lives in no schema)
_VIEW_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _view_name(value: object) -> str:
    if not isinstance(value, str) or not _VIEW_RE.fullmatch(value):
        raise ValueError(f"expected a view name matching [A-Za-z_][A-Za-z0-9_]* (no dots), got {value!r}")
    return value


ViewName = Annotated[str, BeforeValidator(_view_name)]


def _parquet_location(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a Parquet folder, file or glob")
    return value


ParquetLocation = Annotated[str, BeforeValidator(_parquet_location)]


_MEMORY_RE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _memory_size(value: object) -> str:
    if not isinstance(value, str) or not _MEMORY_RE.fullmatch(value.strip()):
        raise ValueError(f"expected a size such as 256MB or 2GB, got {value!r}")
    return value.strip()


MemorySize = Annotated[str, BeforeValidator(_memory_size)]


class _Bounded(_Frozen):
    """What every ``engine:`` shares: the bound on each statement."""

    #: how long one statement may run (``30s``, ``10m``, ``1h`` or seconds) before the engine cuts it; a cut
    #: statement fails its job (``mlmon.job.can_run`` CRITICAL naming this setting), its windows stay pending and
    #: the next run tries them again. How each engine enforces it: docs/engines.md
    query_timeout: Duration = Field(default=600.0, gt=0)


class DuckDBWarehouse(_Bounded):
    """The embedded engine: a DuckDB file (opened read-only) and/or folders of Parquet files."""

    engine: Literal["duckdb"]
    #: the database file; leave it out when every table comes from ``parquet`` (in-memory DuckDB)
    path: Path | None = None
    #: view name -> Parquet folder (every ``*.parquet`` below it, ``key=value`` folders read as columns),
    #: file or glob; each becomes a view that ``tables:`` can name
    parquet: dict[ViewName, ParquetLocation] = Field(default_factory=dict)
    #: DuckDB's buffer memory cap (``256MB``, ``2GB``); beyond it joins, sorts and aggregations spill to
    #: ``temp_directory``. Keeps the agent small next to the service it watches; raise it to spill less.
    memory_limit: MemorySize = "256MB"
    #: worker threads (default: DuckDB's, one per core)
    threads: int | None = Field(default=None, ge=1)
    #: where DuckDB spills (default: DuckDB's, ``<path>.tmp`` or ``.tmp`` in the working directory)
    temp_directory: Path | None = None

    @model_validator(mode="after")
    def _path_or_parquet(self) -> DuckDBWarehouse:
        if self.path is None and not self.parquet:
            raise ValueError("give path (a DuckDB file), parquet (view name -> folder), or both")
        return self


class PostgresWarehouse(_Bounded):
    """A PostgreSQL server, by libpq URL (``postgresql://user:password@host:5432/db``)."""

    engine: Literal["postgres"]
    url: SecretStr
    connect_timeout: Duration = Field(default=10.0, gt=0)


class SparkWarehouse(_Bounded):
    """Apache Spark through PySpark: a local master, a cluster, or Parquet folders read by Spark.

    One Spark session serves the whole process (a JVM per job would be slow); it runs in UTC.
    """

    engine: Literal["spark"]
    #: ``local[N]``, ``spark://host:7077``, ``yarn``, ``k8s://...``; ignored when a session already runs
    master: str = "local[2]"
    #: Spark settings (``spark.sql.shuffle.partitions: 8``); static ones apply when the session starts
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)
    #: view name -> Parquet folder or glob, registered as temporary views; other tables are catalog tables
    parquet: dict[ViewName, ParquetLocation] = Field(default_factory=dict)

    @field_validator("conf")
    @classmethod
    def _spark_keys(cls, value: dict[str, object]) -> dict[str, object]:
        for key in value:
            if not key.startswith("spark."):
                raise ValueError(f"expected Spark settings (spark.*), got {key!r}")
        return value


#: URL scheme (before any ``+driver``) -> sqlglot dialect
_URL_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9.-]*)(?:\+[A-Za-z0-9_.-]+)?://")
SQLALCHEMY_DIALECTS: Mapping[str, str] = {
    "postgresql": "postgres", "postgres": "postgres", "duckdb": "duckdb", "bigquery": "bigquery",
    "snowflake": "snowflake", "trino": "trino", "databricks": "databricks", "redshift": "redshift",
}
SQLAlchemyDialect = Literal["postgres", "duckdb", "bigquery", "snowflake", "trino", "databricks", "spark", "redshift"]


class SQLAlchemyWarehouse(_Bounded):
    """Any warehouse with a SQLAlchemy driver (BigQuery, Snowflake, Trino, Databricks SQL, Redshift, ...).

    The SQL dialect follows the URL's scheme unless ``dialect`` is given; the URL may hold a password or
    token and is never logged.
    """

    engine: Literal["sqlalchemy"]
    url: SecretStr
    dialect: SQLAlchemyDialect | None = None

    @model_validator(mode="after")
    def _known_dialect(self) -> SQLAlchemyWarehouse:
        # the messages quote the scheme only: the rest of the URL may hold a password
        if not _URL_SCHEME_RE.match(self.url.get_secret_value()):
            raise ValueError("expected a SQLAlchemy URL such as snowflake://user:password@account/db")
        if self.dialect is None and self.scheme() not in SQLALCHEMY_DIALECTS:
            raise ValueError(
                f"cannot tell the SQL dialect from the URL scheme {self.scheme()!r}; set dialect to one of "
                f"{', '.join(get_args(SQLAlchemyDialect))}"
            )
        return self

    def scheme(self) -> str:
        """The URL's scheme without its driver (``postgresql+psycopg://`` -> ``postgresql``)."""
        match = _URL_SCHEME_RE.match(self.url.get_secret_value())
        return match.group(1).lower() if match else ""

    def sql_dialect(self) -> str:
        """The sqlglot dialect queries are rendered in."""
        return self.dialect or SQLALCHEMY_DIALECTS[self.scheme()]


Warehouse = Annotated[
    DuckDBWarehouse | PostgresWarehouse | SparkWarehouse | SQLAlchemyWarehouse, Field(discriminator="engine")
]
