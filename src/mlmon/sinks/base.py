"""The sink protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mlmon.samples import Point


class SinkError(Exception):
    """The sink did not accept the points; the caller keeps the window pending."""


class Sink(Protocol):
    """Accepts points or raises :class:`SinkError`.

    ``horizon`` is how old (seconds) a point's timestamp may be for the destination to keep it;
    ``None`` means any age (files, or Datadog with Historical Metrics Ingestion enabled).
    """

    horizon: float | None

    def submit(self, points: Sequence[Point]) -> None:
        """Deliver every point, or raise :class:`SinkError` (then none may be assumed delivered)."""
        ...


def flush(sink: Sink) -> None:
    """Send what ``sink`` holds back (a sink may hold service checks until a job's run ends, to send the latest
    status of each once: ``flush()``); nothing for a sink that holds nothing. Raises :class:`SinkError`."""
    method = getattr(sink, "flush", None)
    if method is not None:
        method()
