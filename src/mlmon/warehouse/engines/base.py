"""What every engine shares: its errors, the :class:`Engine` protocol, parameters as naive UTC, and the
watchdog and message of ``warehouse.query_timeout``."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol

from sqlglot import exp


class WarehouseError(Exception):
    """The warehouse cannot be reached or opened."""


class QueryError(Exception):
    """A query failed (missing table or column, type error, engine error)."""


class OutOfMemory(QueryError):
    """A query needed more memory than the engine may use (the same windows in smaller statements may fit)."""


class QueryTimeout(QueryError):
    """A statement ran past ``warehouse.query_timeout`` and was cut; the connection stays usable (the job fails,
    its windows stay pending and the next run tries them again)."""


def duration_text(seconds: float) -> str:
    """``1s``, ``90s``, ``10m``, ``1h``, ``0.5s``: a duration as the config writes it."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def timeout_error(label: str, seconds: float, detail: str) -> QueryTimeout:
    """``postgres: statement cut at warehouse -> query_timeout (1s): <the engine's words>``."""
    return QueryTimeout(f"{label}: statement cut at warehouse -> query_timeout ({duration_text(seconds)}): {detail}")


class Watchdog:
    """Cancels the statement it guards (``with Watchdog(...)``) once it runs past ``seconds``.

    ``cancel`` is called from a thread of the watchdog's own at the deadline and then every ``repeat``
    seconds until the statement returns: a cancel that lands before the engine started its work, or between
    two of its jobs (Spark), cancels nothing, and the next one does. ``fired`` tells whether the deadline
    passed. A cancel never runs after the ``with`` block has exited, so it cannot reach the next statement on
    the same connection. ``seconds=None`` guards nothing.
    """

    def __init__(self, seconds: float | None, cancel: Callable[[], object], repeat: float = 1.0) -> None:
        self.seconds = seconds
        self.fired = False
        self._cancel = cancel
        self._repeat = repeat
        self._lock = threading.Lock()
        self._done = threading.Event()

    def __enter__(self) -> Watchdog:
        if self.seconds is not None:
            threading.Thread(target=self._watch, name="mlmon-query-timeout", daemon=True).start()
        return self

    def _watch(self) -> None:
        assert self.seconds is not None
        if self._done.wait(self.seconds):
            return
        while True:
            with self._lock:
                if self._done.is_set():
                    return
                self.fired = True
                with contextlib.suppress(Exception):  # the engine's own error, if any, reaches the statement
                    self._cancel()
            if self._done.wait(self._repeat):
                return

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        with self._lock:  # waits for a cancel in flight
            self._done.set()


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


def naive_utc(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with every aware datetime as a naive UTC one (the engines' sessions run in UTC)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        out[key] = value
    return out
