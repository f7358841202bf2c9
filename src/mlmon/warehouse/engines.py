"""Engines: open a connection, run a rendered query with bound parameters, return result tuples.

DuckDB (a file and/or Parquet folders), PostgreSQL, Apache Spark (PySpark) and any SQLAlchemy URL
(BigQuery, Snowflake, Trino, Databricks SQL, Redshift). Every engine runs its session in UTC, so
naive timestamps mean UTC everywhere.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import glob
import logging
import re
import signal
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from sqlglot import exp

from mlmon.config import DuckDBWarehouse, PostgresWarehouse, SparkWarehouse, SQLAlchemyWarehouse
from mlmon.warehouse.sql import render


class WarehouseError(Exception):
    """The warehouse cannot be reached or opened."""


class QueryError(Exception):
    """A query failed (missing table or column, type error, engine error)."""


class OutOfMemory(QueryError):
    """A query needed more memory than the engine may use (the same windows in smaller statements may fit)."""


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def scrub_url(text: str) -> str:
    """Hide the password part of any ``scheme://user:password@host`` in ``text``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


#: the password of a URL as written (``user:password@``, ``?password=``, a token parameter such as Databricks'
#: ``access_token`` or Spark Connect's ``;token=``), spaces and stray ``%`` included: libpq quotes such a
#: token in its error
_URL_PASSWORD_VALUE = re.compile(
    r"://[^:/@\s]*:([^@]+)@|[?&;](?:password|access_token|token|private_key_passphrase)=([^&;#\s]+)", re.IGNORECASE
)


def url_password_forms(url: str) -> list[str]:
    """The passwords in ``url`` as written and percent-decoded (none too short to replace safely)."""
    from urllib.parse import unquote

    found = [p for m in _URL_PASSWORD_VALUE.finditer(url) for p in m.groups() if p]
    return sorted({form for p in found for form in (p, unquote(p)) if len(form) >= 4}, key=len, reverse=True)


class Engine(Protocol):
    """A connection that runs sqlglot queries and returns plain tuples."""

    dialect: str

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run ``query`` with bound ``params`` and return every result row."""
        ...

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Run ``query`` (a ``WHERE 1 = 0`` probe) and return its result columns' (name, type name)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


#: numeric type names as engines report them (DuckDB: upper-case names; PostgreSQL: ``pg_type`` names;
#: Spark/Databricks: ``DataType.simpleString()``; BigQuery, Snowflake (``FIXED`` is NUMBER), Trino: their
#: DB-API type codes)
_NUMERIC_TYPES = frozenset({
    "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger", "ubigint",
    "uhugeint", "float", "double", "real", "decimal", "numeric",
    "int2", "int4", "int8", "float4", "float8",
    "int", "long", "short", "byte",
    "int64", "float64", "bignumeric", "bigdecimal", "fixed", "number", "decfloat", "double precision",
})


def is_numeric_type(name: str) -> bool:
    """Whether a type name from :meth:`Engine.column_types` is a number type (bool is not)."""
    return name.lower().split("(", 1)[0].strip() in _NUMERIC_TYPES


#: the other kinds of type, by the names engines report (as for :data:`_NUMERIC_TYPES`); Trino and Spark
#: add lengths (``varchar(10)``), Trino precisions (``timestamp(3) with time zone``)
_TYPE_KINDS: Mapping[str, frozenset[str]] = {
    "text": frozenset({"varchar", "text", "string", "char", "character", "character varying", "bpchar", "name",
                       "nvarchar", "nchar"}),
    "boolean": frozenset({"boolean", "bool"}),
    "date": frozenset({"date"}),
    # BigQuery's DATETIME is a civil time: UNIX_SECONDS and TIMESTAMP comparisons reject it
    "datetime": frozenset({"datetime"}),
    "time": frozenset({"time", "timetz", "time with time zone", "time without time zone"}),
    "uuid": frozenset({"uuid"}),
    "binary": frozenset({"blob", "bytea", "binary", "varbinary", "bytes"}),
}


def type_kind(name: str) -> str:
    """The kind of a type name from :meth:`Engine.column_types`: ``number``, ``text``, ``boolean``,
    ``timestamp`` (with or without time zone), ``date``, ``datetime``, ``time``, ``uuid``, ``binary``, or
    ``unknown`` (a type mlmon does not recognise: JSON, VARIANT, an enum, an array...)."""
    if is_numeric_type(name):
        return "number"
    base = re.sub(r"\(.*?\)", "", name.lower()).strip()
    if base.startswith("timestamp"):  # timestamptz, timestamp_ntz, timestamp with time zone, timestamp_ms...
        return "timestamp"
    return next((kind for kind, names in _TYPE_KINDS.items() if base in names), "unknown")


def _naive_utc(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        out[key] = value
    return out


def _has_glob(location: str) -> bool:
    return any(c in location for c in "*?[")


def _parquet_source(key: str, location: str) -> tuple[str, bool]:
    """What an engine reads for ``warehouse.parquet.<key>``, and whether it is a folder.

    Local paths are checked here so that a typo is an error naming the key and the path, not an
    engine's message about a view; object-store URLs (``s3://...``) are left to the engine.
    """
    where = f"warehouse -> parquet -> {key}"
    if "://" in location:
        return location, False
    if _has_glob(location):
        if not any(Path(p).is_file() for p in glob.iglob(location, recursive=True)):
            raise WarehouseError(f"{where}: {location} matches no file")
        return location, False
    path = Path(location)
    if not path.exists():
        raise WarehouseError(f"{where}: {location} does not exist")
    if path.is_dir():
        if next(path.rglob("*.parquet"), None) is None:
            raise WarehouseError(f"{where}: no *.parquet file under {location}")
        return location, True
    return location, False


class DuckDBEngine:
    """A DuckDB database file, opened read-only (the agent never writes to the warehouse), and/or
    Parquet folders read as views (in memory when there is no file)."""

    dialect = "duckdb"

    def __init__(
        self, path: str | None, parquet: Mapping[str, str] | None = None, settings: Mapping[str, Any] | None = None
    ) -> None:
        import duckdb

        self._label = f"duckdb file {path}" if path else "duckdb"
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
                source, folder = _parquet_source(name, location)
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

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        import duckdb

        try:
            return self._con.execute(render(query, self.dialect), _naive_utc(params)).fetchall()
        except duckdb.OutOfMemoryException as exc:
            first = str(exc).splitlines()[0]  # DuckDB's tuning hints follow; the warning names the settings
            raise OutOfMemory(f"{self._label}: {first} (warehouse -> memory_limit)") from None
        except duckdb.Error as exc:
            raise QueryError(f"{self._label}: {exc}") from None

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        import duckdb

        try:
            cursor = self._con.execute(render(query, self.dialect), _naive_utc(params))
            cursor.fetchall()
        except duckdb.Error as exc:
            raise QueryError(f"{self._label}: {exc}") from None
        return [(str(d[0]), str(d[1])) for d in cursor.description or ()]

    def close(self) -> None:
        self._con.close()


class PostgresEngine:
    """A PostgreSQL server; the session runs in UTC so naive timestamps mean UTC."""

    dialect = "postgres"

    def __init__(self, url: str, connect_timeout: float) -> None:
        import psycopg

        self._passwords = url_password_forms(url)
        try:
            self._con = psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, int(connect_timeout)), options="-c TimeZone=UTC"
            )
        except psycopg.Error as exc:
            raise WarehouseError(f"cannot connect to postgres: {self._scrub(exc)}") from None

    def _scrub(self, exc: Exception) -> str:
        """The error's text without the password: libpq quotes a malformed URL's password token."""
        text = str(exc)
        for password in self._passwords:
            text = text.replace(password, "***")
        return scrub_url(text).strip()

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with self._con.cursor() as cur:
                cur.execute(render(query, self.dialect), _naive_utc(params))
                return list(cur.fetchall())
        except psycopg.OperationalError as exc:
            raise WarehouseError(f"postgres connection lost: {self._scrub(exc)}") from None
        except psycopg.Error as exc:
            raise QueryError(f"postgres: {self._scrub(exc)}") from None

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        import psycopg

        try:
            with self._con.cursor() as cur:
                cur.execute(render(query, self.dialect), _naive_utc(params))
                cur.fetchall()
                description = list(cur.description or ())
        except psycopg.OperationalError as exc:
            raise WarehouseError(f"postgres connection lost: {self._scrub(exc)}") from None
        except psycopg.Error as exc:
            raise QueryError(f"postgres: {self._scrub(exc)}") from None
        types = self._con.adapters.types
        out = []
        for column in description:
            info = types.get(column.type_code)
            out.append((column.name, info.name if info is not None else str(column.type_code)))
        return out

    def close(self) -> None:
        self._con.close()


class _SparkSessions:
    """The process's Spark: one JVM, started on first use and stopped at exit.

    The agent opens an engine per job and run; a JVM per open would take seconds each time. Each
    distinct warehouse config gets a child session of its own (``newSession``: its own temporary views
    and SQL settings, the shared SparkContext), so two instances' Parquet views cannot collide and
    closing an engine never stops what another engine uses.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._root: Any = None
        self._master: str | None = None
        self._children: dict[str, Any] = {}
        self._stop_at_exit = False

    def session(self, warehouse: SparkWarehouse) -> Any:
        """A live session for ``warehouse``. Raises :class:`WarehouseError`."""
        with self._lock:
            root = self._start(warehouse)
            key = warehouse.model_dump_json()
            child = self._children.get(key)
            if child is None:
                child = root.newSession()
                _spark_settings(root, child, warehouse)
                self._children[key] = child
            return child

    def _start(self, warehouse: SparkWarehouse) -> Any:
        if self._root is not None and self._root.sparkContext._jsc is not None:
            if warehouse.master != self._master:
                raise WarehouseError(
                    f"warehouse -> master: this process already runs Spark with master {self._master}; "
                    f"one process runs one Spark master (run one agent per master)"
                )
            return self._root
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise WarehouseError("engine spark needs PySpark: pip install 'mlmon[spark]'") from None
        builder = SparkSession.builder.appName("mlmon").master(warehouse.master)
        for key, value in {**_SPARK_DEFAULTS, **warehouse.conf}.items():
            builder = builder.config(key, _spark_value(value))
        main = threading.current_thread() is threading.main_thread()
        saved = signal.getsignal(signal.SIGINT) if main else None
        try:
            with warnings.catch_warnings():
                # PySpark warns about the pandas version when it first converts a Python value, from a
                # module it imports lazily; mlmon hands Spark no pandas objects
                warnings.simplefilter("ignore", FutureWarning)
                root = builder.getOrCreate()
                with contextlib.suppress(ImportError):
                    import pyspark.testing.utils  # noqa: F401
        except Exception as exc:  # Java missing, bad master URL, port taken: PySpark raises several kinds
            raise WarehouseError(f"cannot start spark (master {warehouse.master}): {_spark_message(exc)}") from None
        finally:
            # SparkContext installs its own SIGINT handler (cancel jobs, KeyboardInterrupt); mlmon's own
            # handler stops at a safe point instead
            if main and saved is not None:
                signal.signal(signal.SIGINT, saved)
        root.sparkContext.setLogLevel("ERROR")
        # py4j logs every connection it opens and closes at INFO (some during interpreter shutdown)
        logging.getLogger("py4j").setLevel(logging.WARNING)
        if not self._stop_at_exit:
            atexit.register(self.stop)
            self._stop_at_exit = True
        self._root, self._master, self._children = root, warehouse.master, {}
        return root

    def stop(self) -> None:
        """Stop the process's Spark (at exit; tests may call it)."""
        with self._lock:
            if self._root is not None:
                self._root.stop()
            self._root, self._master, self._children = None, None, {}


#: settings mlmon starts Spark with (the config's ``conf`` overrides them): quiet, no UI, UTC
_SPARK_DEFAULTS: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
}


def _spark_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _spark_settings(root: Any, child: Any, warehouse: SparkWarehouse) -> None:
    """Apply the warehouse's runtime settings to its child session; static ones it sets must match the
    running JVM's (mlmon's own static defaults do not: a session started elsewhere keeps its UI)."""
    for key, value in {**_SPARK_DEFAULTS, **warehouse.conf}.items():
        wanted = _spark_value(value)
        if root.conf.isModifiable(key):
            child.conf.set(key, wanted)
            continue
        current = root.sparkContext.getConf().get(key, None)
        if key in warehouse.conf and current is not None and current != wanted:
            raise WarehouseError(
                f"warehouse -> conf -> {key}: a static Spark setting cannot change in the running session "
                f"(this process started Spark with {current}); give every spark instance the same value"
            )
    if child.conf.get("spark.sql.session.timeZone") != "UTC":
        raise WarehouseError("warehouse -> conf -> spark.sql.session.timeZone: mlmon reads naive timestamps "
                             "as UTC; leave the session time zone at UTC")


def _spark_message(exc: BaseException) -> str:
    """The first line of a Spark error (the rest is a query plan or a JVM stack trace)."""
    text = str(exc)
    java = getattr(exc, "java_exception", None)  # Py4JJavaError: "An error occurred while calling o42..."
    if java is not None:
        with contextlib.suppress(Exception):  # the JVM may be gone
            text = str(java.toString())
    text = text.strip()
    return (text.splitlines() or [type(exc).__name__])[0].strip()


#: one Spark per process (see :class:`_SparkSessions`)
SPARK = _SparkSessions()


class SparkEngine:
    """Apache Spark through PySpark: Spark catalog tables and Parquet folders registered as views."""

    dialect = "spark"

    def __init__(self, warehouse: SparkWarehouse, sessions: _SparkSessions = SPARK) -> None:
        self._session = sessions.session(warehouse)
        for name, location in warehouse.parquet.items():
            source, folder = _parquet_source(name, location)
            reader = self._session.read
            if folder:  # every *.parquet below, key=value folders read as partition columns
                reader = reader.option("pathGlobFilter", "*.parquet")
            try:
                # registered at each open: a view lists its files once, and new files arrive between runs
                reader.parquet(source).createOrReplaceTempView(name)
            except Exception as exc:
                raise WarehouseError(f"warehouse -> parquet -> {name}: cannot read {location}: "
                                     f"{_spark_message(exc)}") from None

    def _frame(self, query: exp.Expression, params: Mapping[str, Any]) -> Any:
        # named parameter markers (:start): values are bound by Spark, never spliced into the text
        return self._session.sql(render(query, self.dialect), args=_spark_params(params))

    def _run(self, action: Any) -> Any:
        from py4j.protocol import Py4JError, Py4JNetworkError

        try:
            return action()
        except Py4JNetworkError as exc:
            raise WarehouseError(f"spark session lost: {_spark_message(exc)}") from None
        except Py4JError as exc:
            raise QueryError(f"spark: {_spark_message(exc)}") from None
        except Exception as exc:
            from pyspark.errors import PySparkException

            if isinstance(exc, PySparkException):
                raise QueryError(f"spark: {_spark_message(exc)}") from None
            raise

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        def collect() -> list[tuple[Any, ...]]:
            from pyspark.sql.types import TimestampType

            frame = self._frame(query, params)
            local_ts = [isinstance(f.dataType, TimestampType) for f in frame.schema.fields]
            return [tuple(_utc_naive(v) if is_ts else v for v, is_ts in zip(row, local_ts, strict=True))
                    for row in frame.collect()]

        result: list[tuple[Any, ...]] = self._run(collect)
        return result

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        def schema() -> list[tuple[str, str]]:
            fields = self._frame(query, params).schema.fields  # analysed, not run: it reads no rows
            return [(f.name, f.dataType.simpleString()) for f in fields]

        result: list[tuple[str, str]] = self._run(schema)
        return result

    def close(self) -> None:
        """Nothing to release: the session is the process's (stopped at exit)."""


def _spark_params(params: Mapping[str, Any]) -> dict[str, Any]:
    # PySpark turns a naive datetime into a TIMESTAMP literal through the *process's* local time zone;
    # an aware one is exact
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dt.datetime):
            value = value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
        out[key] = value
    return out


def _utc_naive(value: Any) -> Any:
    # and collect() hands TIMESTAMP values back as naive *local* times (TIMESTAMP_NTZ comes back as is)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


#: statements that put a session in UTC, by dialect (fixed text; BigQuery's TIMESTAMP is UTC already, and
#: Trino takes its time zone as a connection argument)
_UTC_SESSION = {
    "postgres": "SET TIME ZONE 'UTC'",
    "redshift": "SET TIME ZONE 'UTC'",
    "snowflake": "ALTER SESSION SET TIMEZONE = 'UTC'",
    "databricks": "SET TIME ZONE 'UTC'",
    "spark": "SET TIME ZONE 'UTC'",
    "duckdb": "SET TimeZone = 'UTC'",
}

#: the extra that installs each dialect's SQLAlchemy driver
_DRIVER_EXTRAS = {"bigquery": "bigquery", "snowflake": "snowflake", "trino": "trino", "databricks": "databricks",
                  "spark": "databricks", "redshift": "redshift"}


class SQLAlchemyEngine:
    """Any database with a SQLAlchemy driver: queries rendered in its dialect, values bound by ``text()``."""

    def __init__(self, url: str, dialect: str, scheme: str) -> None:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        self.dialect = dialect
        self._label = f"{scheme} (sqlalchemy)"
        self._passwords = url_password_forms(url)
        connect_args = {"timezone": "UTC"} if dialect == "trino" else {}
        try:
            # one connection per engine (the agent opens an engine per job and run): no pool to keep
            self._engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args=connect_args)
        except sqlalchemy.exc.NoSuchModuleError:
            extra = _DRIVER_EXTRAS.get(dialect)
            hint = f": pip install 'mlmon[{extra}]'" if extra else ""
            raise WarehouseError(f"no SQLAlchemy driver for {scheme} URLs{hint}") from None
        except ImportError as exc:
            raise WarehouseError(f"the SQLAlchemy driver for {scheme} needs a package: {exc.name}") from None
        except sqlalchemy.exc.ArgumentError:
            raise WarehouseError(f"the {scheme} URL is not a valid SQLAlchemy URL") from None
        try:
            self._con = self._engine.connect()
            if dialect in _UTC_SESSION:
                self._con.exec_driver_sql(_UTC_SESSION[dialect])
                self._con.commit()  # a SET inside a rolled-back transaction would be undone (PostgreSQL)
        except Exception as exc:
            self._engine.dispose()
            raise WarehouseError(f"cannot connect to {self._label}: {self._scrub(exc)}") from None

    def _scrub(self, exc: Exception) -> str:
        """The driver's own message (not SQLAlchemy's, which repeats the SQL and its parameters),
        without the password."""
        text = str(getattr(exc, "orig", None) or exc)
        for password in self._passwords:
            text = text.replace(password, "***")
        return scrub_url(text).strip()

    def _execute(self, query: exp.Expression, params: Mapping[str, Any]) -> tuple[list[tuple[Any, ...]], list[Any]]:
        import sqlalchemy

        try:
            result = self._con.execute(sqlalchemy.text(render(query, self.dialect, "colon")), self._params(params))
            description = list(result.cursor.description or ()) if result.cursor is not None else []
            return [tuple(row) for row in result.fetchall()], description
        except sqlalchemy.exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise WarehouseError(f"{self._label} connection lost: {self._scrub(exc)}") from None
            raise QueryError(f"{self._label}: {self._scrub(exc)}") from None
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise QueryError(f"{self._label}: {self._scrub(exc)}") from None
        finally:
            # the agent only reads: end the transaction a DB-API driver opened, so that a failed statement
            # does not poison the next one (PostgreSQL's "current transaction is aborted")
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                self._con.rollback()

    def _params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.dialect != "bigquery":
            return _naive_utc(params)
        # BigQuery's client binds a naive datetime as DATETIME, which does not compare with TIMESTAMP
        # columns (no implicit coercion); an aware one binds as TIMESTAMP
        return {k: v.replace(tzinfo=dt.timezone.utc) if isinstance(v, dt.datetime) and v.tzinfo is None else v
                for k, v in params.items()}

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return self._execute(query, params)[0]

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        _, description = self._execute(query, params)
        return [(str(d[0]), self._type_name(d[1])) for d in description]

    def _type_name(self, code: Any) -> str:
        """A DB-API type code as a type name: most drivers give a name, psycopg an OID, Snowflake an id."""
        if isinstance(code, str):
            return code
        dbapi_con = self._con.connection.dbapi_connection
        adapters = getattr(dbapi_con, "adapters", None)  # psycopg 3
        info = adapters.types.get(code) if adapters is not None else None
        if info is not None:
            return str(info.name)
        if self.dialect == "snowflake":
            try:
                from snowflake.connector.constants import FIELD_ID_TO_NAME

                return str(FIELD_ID_TO_NAME[code])
            except (ImportError, KeyError, IndexError):
                pass
        return str(getattr(code, "__name__", code))

    def close(self) -> None:
        self._con.close()
        self._engine.dispose()


def open_engine(warehouse: DuckDBWarehouse | PostgresWarehouse | SparkWarehouse | SQLAlchemyWarehouse) -> Engine:
    """Connect to the configured warehouse. Raises :class:`WarehouseError`."""
    if isinstance(warehouse, DuckDBWarehouse):
        settings: dict[str, Any] = {"memory_limit": warehouse.memory_limit}
        if warehouse.threads is not None:
            settings["threads"] = warehouse.threads
        if warehouse.temp_directory is not None:
            settings["temp_directory"] = str(warehouse.temp_directory)
        path = str(warehouse.path) if warehouse.path is not None else None
        return DuckDBEngine(path, warehouse.parquet, settings)
    if isinstance(warehouse, SparkWarehouse):
        return SparkEngine(warehouse)
    if isinstance(warehouse, SQLAlchemyWarehouse):
        return SQLAlchemyEngine(warehouse.url.get_secret_value(), warehouse.sql_dialect(), warehouse.scheme())
    return PostgresEngine(warehouse.url.get_secret_value(), warehouse.connect_timeout)
