"""Any SQLAlchemy URL (``engine: sqlalchemy``): BigQuery, Snowflake, Trino, Databricks SQL, Redshift...

``warehouse.query_timeout`` is enforced by each warehouse's own setting, made once per connection; every
number in it is an integer computed from the validated duration (never text from the config):

- ``postgres``, ``redshift``: ``SET statement_timeout = <ms>`` (the server cancels the statement:
  ``canceling statement due to statement timeout``);
- ``snowflake``: ``ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = <s>`` (whole seconds, rounded up, at
  most Snowflake's 604800);
- ``databricks``, ``spark``: ``SET STATEMENT_TIMEOUT = <s>`` (Databricks SQL's parameter, whole seconds, at
  most its 172800). A plain Spark Thrift server behind ``dialect: spark`` takes the SET but does not
  enforce it: that setup is not bounded;
- ``trino``: the session property ``query_max_run_time = <ms>ms``, merged into the connection's
  ``session_properties`` (the URL's own are kept; this one wins);
- ``bigquery``: ``job_timeout_ms`` on the client's default ``QueryJobConfig`` (every query job the
  connection starts); it needs google-cloud-bigquery 3.14 or later, and with an older client the timeout is
  not enforced (a warning says so at connect). BigQuery documents it as best effort ("might attempt to
  stop the job");
- ``duckdb`` (``duckdb_engine``): no setting; a :class:`~.base.Watchdog` calls the DB-API connection's
  ``interrupt()``.

A statement cut by one of these is a :class:`~.base.QueryTimeout`: the driver's words name the timeout, or
the statement failed as cancelled after running at least the timeout (a server whose messages are
translated). The connection stays usable: the transaction is rolled back as after any failed statement.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
import math
import re
import time
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from mlmon.config import SQLAlchemyWarehouse
from mlmon.scrub import scrub, url_password_forms
from mlmon.warehouse.engines.base import QueryError, WarehouseError, Watchdog, naive_utc, timeout_error
from mlmon.warehouse.sql import render

log = logging.getLogger("mlmon.warehouse")

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

#: PostgreSQL's and Redshift's largest statement_timeout (an int of milliseconds)
_MAX_MS = 2_147_483_647
#: the largest timeout, in seconds, Snowflake's STATEMENT_TIMEOUT_IN_SECONDS and Databricks' STATEMENT_TIMEOUT take
_MAX_SECONDS = {"snowflake": 604_800, "databricks": 172_800, "spark": 172_800}


def _milliseconds(seconds: float) -> int:
    return max(1, min(_MAX_MS, int(seconds * 1000)))


def _whole_seconds(seconds: float, dialect: str) -> int:
    return max(1, min(_MAX_SECONDS[dialect], math.ceil(seconds)))


def timeout_statements(dialect: str, seconds: float) -> list[str]:
    """The statements that bound every later statement of a ``dialect`` session to ``seconds`` (none for
    trino, bigquery and duckdb, which are bound otherwise)."""
    if dialect in ("postgres", "redshift"):
        return [f"SET statement_timeout = {_milliseconds(seconds)}"]
    if dialect == "snowflake":
        return [f"ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = {_whole_seconds(seconds, dialect)}"]
    if dialect in ("databricks", "spark"):
        return [f"SET STATEMENT_TIMEOUT = {_whole_seconds(seconds, dialect)}"]
    return []


def timeout_session_properties(dialect: str, seconds: float) -> dict[str, str]:
    """Trino's session properties for the bound (other dialects: none)."""
    return {"query_max_run_time": f"{_milliseconds(seconds)}ms"} if dialect == "trino" else {}


#: drivers' words for a statement cut by its timeout (PostgreSQL/Redshift, Snowflake, Trino, BigQuery)
_TIMEOUT_WORDS = re.compile(r"statement timeout|reached its statement or warehouse timeout|EXCEEDED_TIME_LIMIT"
                            r"|exceeded maximum time limit|job timed out", re.IGNORECASE)
#: a statement that fails with these words after running at least the timeout was cut by it
_CANCEL_WORDS = re.compile(r"cancel|timed out|timeout|time limit", re.IGNORECASE)


def cut_by_timeout(message: str, elapsed: float, seconds: float) -> bool:
    """Whether a statement that failed with ``message`` after ``elapsed`` seconds was cut by a ``seconds`` bound."""
    return bool(_TIMEOUT_WORDS.search(message)) or (elapsed >= seconds and bool(_CANCEL_WORDS.search(message)))


#: the extra that installs each dialect's SQLAlchemy driver
_DRIVER_EXTRAS = {"bigquery": "bigquery", "snowflake": "snowflake", "trino": "trino", "databricks": "databricks",
                  "spark": "databricks", "redshift": "redshift"}


class SQLAlchemyEngine:
    """Any database with a SQLAlchemy driver: queries rendered in its dialect, values bound by ``text()``.

    ``query_timeout`` (seconds; ``warehouse.query_timeout`` when opened from the config, None: unbounded)
    bounds each statement the dialect's way (the module's docstring).
    """

    def __init__(self, url: str, dialect: str, scheme: str, *, query_timeout: float | None = None) -> None:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        self.dialect = dialect
        self._label = f"{scheme} (sqlalchemy)"
        self._passwords = url_password_forms(url)
        self._query_timeout = query_timeout
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
        properties = timeout_session_properties(dialect, query_timeout) if query_timeout is not None else {}
        if properties:
            sqlalchemy.event.listen(self._engine, "do_connect", _with_session_properties(properties))
        try:
            self._con = self._engine.connect()
            setup = [_UTC_SESSION[dialect]] if dialect in _UTC_SESSION else []
            if query_timeout is not None:
                setup += timeout_statements(dialect, query_timeout)
            for statement in setup:
                self._con.exec_driver_sql(statement)
            if setup:
                self._con.commit()  # a SET inside a rolled-back transaction would be undone (PostgreSQL)
            if query_timeout is not None and dialect == "bigquery":
                self._bound_bigquery_jobs(query_timeout)
        except Exception as exc:
            self._engine.dispose()
            raise WarehouseError(f"cannot connect to {self._label}: {self._scrub(exc)}") from None

    def _bound_bigquery_jobs(self, seconds: float) -> None:
        """``job_timeout_ms`` on the default job config of the connection's BigQuery client."""
        from google.cloud.bigquery import QueryJobConfig

        client = getattr(self._con.connection.dbapi_connection, "_client", None)
        if not hasattr(QueryJobConfig, "job_timeout_ms") or client is None:
            log.warning("%s: this google-cloud-bigquery cannot bound a query job (job_timeout_ms needs 3.14 or "
                        "later): warehouse -> query_timeout is not enforced", self._label)
            return
        config = copy.deepcopy(client.default_query_job_config) or QueryJobConfig()
        config.job_timeout_ms = _milliseconds(seconds)
        client.default_query_job_config = config

    def _interrupt(self) -> None:
        """DuckDB (``duckdb_engine``): interrupt the connection's statement (other drivers: the server's bound)."""
        dbapi_con = self._con.connection.dbapi_connection
        interrupt = getattr(dbapi_con, "interrupt", None)
        if interrupt is not None:
            interrupt()

    def _scrub(self, exc: Exception) -> str:
        """The driver's own message (not SQLAlchemy's, which repeats the SQL and its parameters),
        without the password."""
        return scrub(str(getattr(exc, "orig", None) or exc), self._passwords).strip()

    def _execute(self, query: exp.Expression, params: Mapping[str, Any]) -> tuple[list[tuple[Any, ...]], list[Any]]:
        import sqlalchemy

        # the servers bound their own statements; DuckDB's runs in this process and is interrupted
        watchdog = Watchdog(self._query_timeout if self.dialect == "duckdb" else None, self._interrupt)
        started = time.monotonic()
        try:
            with watchdog:
                result = self._con.execute(sqlalchemy.text(render(query, self.dialect, "colon")),
                                           self._params(params))
                description = list(result.cursor.description or ()) if result.cursor is not None else []
                return [tuple(row) for row in result.fetchall()], description
        except sqlalchemy.exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise WarehouseError(f"{self._label} connection lost: {self._scrub(exc)}") from None
            text, limit = self._scrub(exc), self._query_timeout
            if limit is not None and (watchdog.fired or cut_by_timeout(text, time.monotonic() - started, limit)):
                raise timeout_error(self._label, limit, text) from None
            raise QueryError(f"{self._label}: {text}") from None
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise QueryError(f"{self._label}: {self._scrub(exc)}") from None
        finally:
            # the agent only reads: end the transaction a DB-API driver opened, so that a failed statement
            # does not poison the next one (PostgreSQL's "current transaction is aborted")
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                self._con.rollback()

    def _params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.dialect != "bigquery":
            return naive_utc(params)
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


def _with_session_properties(properties: Mapping[str, str]) -> Any:
    """A ``do_connect`` listener adding ``properties`` to the DB-API connection's ``session_properties``
    (Trino's; those the URL gives are kept)."""

    def listener(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        cparams["session_properties"] = {**(cparams.get("session_properties") or {}), **properties}

    return listener


def open_sqlalchemy(warehouse: SQLAlchemyWarehouse) -> SQLAlchemyEngine:
    """The engine for an ``engine: sqlalchemy`` warehouse, in the dialect its URL names, bounded by its
    ``query_timeout``."""
    return SQLAlchemyEngine(warehouse.url.get_secret_value(), warehouse.sql_dialect(), warehouse.scheme(),
                            query_timeout=warehouse.query_timeout)
