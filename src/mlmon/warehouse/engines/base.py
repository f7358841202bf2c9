"""What every engine shares: its errors, the :class:`Engine` protocol, and parameters as naive UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

from sqlglot import exp


class WarehouseError(Exception):
    """The warehouse cannot be reached or opened."""


class QueryError(Exception):
    """A query failed (missing table or column, type error, engine error)."""


class OutOfMemory(QueryError):
    """A query needed more memory than the engine may use (the same windows in smaller statements may fit)."""


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
