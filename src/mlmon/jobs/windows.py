"""Tumbling windows aligned to UTC multiples of their width."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in Unix seconds."""

    start: float
    end: float

    @property
    def index(self) -> int:
        """Window number since the epoch (``start / width``)."""
        return round(self.start / (self.end - self.start))


def due_windows(
    now: float, watermark: float | None, width: float, delay: float, initial_lookback: float
) -> list[Window]:
    """Complete windows not yet delivered, oldest first.

    A window is due once ``end + delay <= now``. Without a watermark the job starts at the first
    window boundary at or after ``now - delay - initial_lookback``.
    """
    last_end = math.floor((now - delay) / width) * width
    if watermark is None:
        first = math.ceil((now - delay - initial_lookback) / width) * width
    else:
        first = math.floor(watermark / width) * width
    count = round((last_end - first) / width)
    return [Window(first + i * width, first + (i + 1) * width) for i in range(max(count, 0))]
