"""PostgreSQL (``engine: postgres``) through psycopg 3.

``warehouse.query_timeout`` is the server's own ``statement_timeout``, set for the session at connect
through libpq's ``options`` (``-c statement_timeout=<ms>``, an integer computed from the validated
duration; no SQL text): the server cancels the statement, psycopg raises ``QueryCanceled`` (an
``OperationalError``) and the connection stays usable, so the cut is a :class:`~.base.QueryTimeout`, not
a lost connection.

A server that stops answering altogether (its host frozen, a network that drops every packet) is bounded too:
TCP keepalives (unless the URL sets its own) end an idle wait after about a minute, and a watchdog closes the
socket once a statement has had no answer for :func:`unanswered_after` (``query_timeout`` plus as much again, at
most 30 s more), which the server's own ``statement_timeout`` would have ended: a :class:`~.base.WarehouseError`
saying that the server stopped answering, not a hang. :meth:`PostgresEngine.interrupt` (what the watchdog and the
agent on SIGTERM call) sends a cancel request and, if the statement has not ended shortly after, shuts the socket
down: a statement in flight never holds a stopping agent, and the server's backend does not go on with it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from mlmon.config import PostgresWarehouse
from mlmon.scrub import scrub, url_password_forms
from mlmon.warehouse.engines.base import QueryError, WarehouseError, Watchdog, naive_utc, timeout_error
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


#: libpq's TCP keepalives for mlmon's sessions (unless the URL sets its own): a silent peer is given up after
#: about idle + interval * count seconds of a wait
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def keepalive_params(url: str) -> dict[str, Any]:
    """:data:`KEEPALIVES` less the ones the URL sets itself."""
    import psycopg

    try:
        given = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        given = {}
    return {k: v for k, v in KEEPALIVES.items() if k not in given}


#: how long an interrupt waits for the cancelled statement to end before it shuts the socket down
CANCEL_WAIT = 2.0


def unanswered_after(query_timeout: float | None) -> float | None:
    """How long a statement may go without an answer before the server counts as not answering: the server ends
    it at ``query_timeout`` (``statement_timeout``); as much again, at most 30 s, for its answer to arrive."""
    return None if query_timeout is None else query_timeout + min(query_timeout, 30.0)


class PostgresEngine:
    """A PostgreSQL server; the session runs in UTC so naive timestamps mean UTC, and with ``query_timeout``
    (seconds; ``warehouse.query_timeout`` when opened from the config, None: the server's default) as its
    ``statement_timeout``."""

    dialect = "postgres"

    def __init__(self, url: str, connect_timeout: float, query_timeout: float | None = None) -> None:
        import psycopg

        self._passwords = url_password_forms(url)
        self._query_timeout = query_timeout
        self._running = threading.Event()  # a statement in flight
        self._idle = threading.Event()  # none: what an interrupt waits for before it closes the socket
        self._interrupted = False
        try:
            self._con = psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, int(connect_timeout)),
                options=f"{session_options(query_timeout)} {url_options(url)}".strip(), **keepalive_params(url),
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
        limit = unanswered_after(self._query_timeout)
        watchdog = Watchdog(limit, self.interrupt, repeat=3600.0)
        self._interrupted = False
        self._idle.clear()
        self._running.set()
        try:
            with watchdog, self._con.cursor() as cur:
                cur.execute(render(query, self.dialect), naive_utc(params))
                return list(cur.fetchall()), list(cur.description or ())
        except psycopg.errors.QueryCanceled as exc:
            if self._interrupted and not watchdog.fired:
                raise QueryError("postgres: statement interrupted (the agent is stopping); its windows stay "
                                 "pending") from None
            # an OperationalError, but the server cancelled the statement only: the connection is fine. Cut by
            # statement_timeout (the server's words, or as long as it: lc_messages may translate them), or
            # cancelled by someone else (pg_cancel_backend)
            text = self._scrub(exc)
            timeout = self._query_timeout
            if timeout is not None and ("statement timeout" in text or time.monotonic() - started >= timeout):
                raise timeout_error("postgres", timeout, text) from None
            raise QueryError(f"postgres: {text}") from None
        except psycopg.OperationalError as exc:
            if self._interrupted and not watchdog.fired:
                raise WarehouseError("postgres: statement interrupted (the agent is stopping) and the server did "
                                     f"not take the cancel within {CANCEL_WAIT:g} s; connection closed") from None
            if watchdog.fired:
                raise WarehouseError(f"postgres: the server stopped answering: no answer to a statement within "
                                     f"{limit:g} s (query_timeout {self._query_timeout:g} s, then as long again "
                                     "for the server's own cancel to arrive); connection closed") from None
            raise WarehouseError(f"postgres connection lost: {self._scrub(exc)}") from None
        except psycopg.Error as exc:
            raise QueryError(f"postgres: {self._scrub(exc)}") from None
        finally:
            self._running.clear()
            self._idle.set()

    def interrupt(self) -> None:
        """End the statement in flight; callable from another thread or a signal handler, returns at once.

        A cancel request first (the server stops the statement, which fails as cancelled); if the statement has
        not ended :data:`CANCEL_WAIT` seconds later (the server does not answer) the socket is shut down, so it
        fails as a lost connection."""
        if self._running.is_set():
            self._interrupted = True
            threading.Thread(target=self._cancel_then_close, name="mlmon-postgres-interrupt", daemon=True).start()

    def _cancel_then_close(self) -> None:
        with contextlib.suppress(Exception):
            self._con.cancel_safe(timeout=CANCEL_WAIT)
        if self._idle.wait(CANCEL_WAIT):
            return
        with contextlib.suppress(Exception):  # closed already: nothing in flight
            sock = socket.socket(fileno=os.dup(self._con.pgconn.socket))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()

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
