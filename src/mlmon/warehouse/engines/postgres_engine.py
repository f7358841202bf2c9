"""PostgreSQL (``engine: postgres``) through psycopg 3.

``warehouse.query_timeout`` is the server's own ``statement_timeout``, set for the session at connect
through libpq's ``options`` (``-c statement_timeout=<ms>``, an integer computed from the validated
duration; no SQL text): the server cancels the statement, psycopg raises ``QueryCanceled`` (an
``OperationalError``) and the connection stays usable, so the cut is a :class:`~.base.QueryTimeout`, not
a lost connection.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from mlmon.config import PostgresWarehouse
from mlmon.scrub import scrub, url_password_forms
from mlmon.warehouse.engines.base import QueryError, WarehouseError, naive_utc, timeout_error
from mlmon.warehouse.sql import render

#: PostgreSQL's largest statement_timeout (an int of milliseconds, about 24.8 days)
_MAX_STATEMENT_TIMEOUT_MS = 2_147_483_647


def session_options(query_timeout: float | None) -> str:
    """libpq ``options`` for mlmon's sessions: UTC, and ``statement_timeout`` in whole milliseconds (at least 1)."""
    options = "-c TimeZone=UTC"
    if query_timeout is not None:
        ms = max(1, min(_MAX_STATEMENT_TIMEOUT_MS, int(query_timeout * 1000)))
        options += f" -c statement_timeout={ms}"
    return options


def url_options(url: str) -> str:
    """The libpq ``options`` the URL itself gives (``?options=-c%20search_path%3Dads``), kept after mlmon's
    own so that a setting of the user's (a ``statement_timeout`` of their own) wins; "" when none, or when
    the URL does not parse (connecting then says why)."""
    import psycopg

    try:
        return str(psycopg.conninfo.conninfo_to_dict(url).get("options") or "")
    except psycopg.Error:
        return ""


class PostgresEngine:
    """A PostgreSQL server; the session runs in UTC so naive timestamps mean UTC, and with ``query_timeout``
    (seconds; ``warehouse.query_timeout`` when opened from the config, None: the server's default) as its
    ``statement_timeout``."""

    dialect = "postgres"

    def __init__(self, url: str, connect_timeout: float, query_timeout: float | None = None) -> None:
        import psycopg

        self._passwords = url_password_forms(url)
        self._query_timeout = query_timeout
        try:
            self._con = psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, int(connect_timeout)),
                options=f"{session_options(query_timeout)} {url_options(url)}".strip(),
            )
        except psycopg.Error as exc:
            raise WarehouseError(f"cannot connect to postgres: {self._scrub(exc)}") from None

    def _scrub(self, exc: Exception) -> str:
        """The error's text without the password: libpq quotes a malformed URL's password token."""
        return scrub(str(exc), self._passwords).strip()

    def _run(self, query: exp.Expression, params: Mapping[str, Any]) -> tuple[list[tuple[Any, ...]], list[Any]]:
        """The statement's rows and description."""
        import psycopg

        started = time.monotonic()
        try:
            with self._con.cursor() as cur:
                cur.execute(render(query, self.dialect), naive_utc(params))
                return list(cur.fetchall()), list(cur.description or ())
        except psycopg.errors.QueryCanceled as exc:
            # an OperationalError, but the server cancelled the statement only: the connection is fine. Cut by
            # statement_timeout (the server's words, or as long as it: lc_messages may translate them), or
            # cancelled by someone else (pg_cancel_backend)
            text = self._scrub(exc)
            limit = self._query_timeout
            if limit is not None and ("statement timeout" in text or time.monotonic() - started >= limit):
                raise timeout_error("postgres", limit, text) from None
            raise QueryError(f"postgres: {text}") from None
        except psycopg.OperationalError as exc:
            raise WarehouseError(f"postgres connection lost: {self._scrub(exc)}") from None
        except psycopg.Error as exc:
            raise QueryError(f"postgres: {self._scrub(exc)}") from None

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return self._run(query, params)[0]

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        description = self._run(query, params)[1]
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
    return PostgresEngine(warehouse.url.get_secret_value(), warehouse.connect_timeout, warehouse.query_timeout)
