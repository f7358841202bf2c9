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
