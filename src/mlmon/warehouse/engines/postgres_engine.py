"""PostgreSQL (``engine: postgres``) through psycopg 3."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from mlmon.config import PostgresWarehouse
from mlmon.scrub import scrub, url_password_forms
from mlmon.warehouse.engines.base import QueryError, WarehouseError, naive_utc
from mlmon.warehouse.sql import render


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
        return scrub(str(exc), self._passwords).strip()

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with self._con.cursor() as cur:
                cur.execute(render(query, self.dialect), naive_utc(params))
                return list(cur.fetchall())
        except psycopg.OperationalError as exc:
            raise WarehouseError(f"postgres connection lost: {self._scrub(exc)}") from None
        except psycopg.Error as exc:
            raise QueryError(f"postgres: {self._scrub(exc)}") from None

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        import psycopg

        try:
            with self._con.cursor() as cur:
                cur.execute(render(query, self.dialect), naive_utc(params))
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


def open_postgres(warehouse: PostgresWarehouse) -> PostgresEngine:
    """The engine for an ``engine: postgres`` warehouse."""
    return PostgresEngine(warehouse.url.get_secret_value(), warehouse.connect_timeout)
