"""Engines: open a connection, run a rendered query with bound parameters, return result tuples."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Protocol

from sqlglot import exp

from mlmon.config import DuckDBWarehouse, PostgresWarehouse
from mlmon.warehouse.sql import render


class WarehouseError(Exception):
    """The warehouse cannot be reached or opened."""


class QueryError(Exception):
    """A query failed (missing table or column, type error, engine error)."""


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def scrub_url(text: str) -> str:
    """Hide the password part of any ``scheme://user:password@host`` in ``text``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


#: the password of a URL as written (``user:password@`` or ``?password=``), spaces and stray ``%`` included:
#: libpq quotes such a token in its error
_URL_PASSWORD_VALUE = re.compile(r"://[^:/@\s]*:([^@]+)@|[?&]password=([^&#\s]+)")


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


#: numeric type names as engines report them (DuckDB: upper-case names; PostgreSQL: ``pg_type`` names)
_NUMERIC_TYPES = frozenset({
    "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger", "ubigint",
    "uhugeint", "float", "double", "real", "decimal", "numeric",
    "int2", "int4", "int8", "float4", "float8",
})


def is_numeric_type(name: str) -> bool:
    """Whether a type name from :meth:`Engine.column_types` is a number type (bool is not)."""
    return name.lower().split("(", 1)[0].strip() in _NUMERIC_TYPES


def _naive_utc(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        out[key] = value
    return out


class DuckDBEngine:
    """A DuckDB database file, opened read-only (the agent never writes to the warehouse)."""

    dialect = "duckdb"

    def __init__(self, path: str) -> None:
        import duckdb

        self._label = f"duckdb file {path}"
        try:
            self._con = duckdb.connect(path, read_only=True)
            self._con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open {self._label}: {exc}") from None

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        import duckdb

        try:
            return self._con.execute(render(query, self.dialect), _naive_utc(params)).fetchall()
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


def open_engine(warehouse: DuckDBWarehouse | PostgresWarehouse) -> Engine:
    """Connect to the configured warehouse. Raises :class:`WarehouseError`."""
    if isinstance(warehouse, DuckDBWarehouse):
        return DuckDBEngine(str(warehouse.path))
    return PostgresEngine(warehouse.url.get_secret_value(), warehouse.connect_timeout)

