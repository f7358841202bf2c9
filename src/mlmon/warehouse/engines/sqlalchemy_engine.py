"""Any SQLAlchemy URL (``engine: sqlalchemy``): BigQuery, Snowflake, Trino, Databricks SQL, Redshift..."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from mlmon.config import SQLAlchemyWarehouse
from mlmon.scrub import scrub, url_password_forms
from mlmon.warehouse.engines.base import QueryError, WarehouseError, naive_utc
from mlmon.warehouse.sql import render

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
        return scrub(str(getattr(exc, "orig", None) or exc), self._passwords).strip()

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


def open_sqlalchemy(warehouse: SQLAlchemyWarehouse) -> SQLAlchemyEngine:
    """The engine for an ``engine: sqlalchemy`` warehouse, in the dialect its URL names."""
    return SQLAlchemyEngine(warehouse.url.get_secret_value(), warehouse.sql_dialect(), warehouse.scheme())
