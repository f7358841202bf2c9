"""Times as mlmon reads and writes them: Unix seconds inside, UTC ISO 8601 at the edges.

Messages, reports and state keys print times with :func:`iso` (``2026-11-20T08:10:00Z``) or, in file
names, :func:`compact` (``20261120T081000Z``); command-line options read them with :func:`parse_time`.
"""

from __future__ import annotations

import datetime as dt
import math


def iso(ts: float) -> str:
    """A Unix time as ``2026-11-22T10:00:00Z``."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact(ts: float) -> str:
    """A Unix time as ``20261122T100000Z``, for file names."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def parse_iso(text: str) -> float:
    """``2026-11-13``, ``2026-11-13T14:10``, ``2026-11-13T14:10:00Z`` or ``...+01:00`` as Unix seconds; a date
    is its midnight and a time without a zone is UTC. Raises :class:`ValueError` saying what was expected."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 date or time such as 2026-11-13 or 2026-11-13T14:10:00Z, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def parse_time(text: str) -> float:
    """Unix seconds (``1795183380``) or an ISO 8601 time as :func:`parse_iso` reads it; finite."""
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_iso(text)
        except ValueError:
            raise ValueError(f"expected Unix seconds or an ISO-8601 time, got {text!r}") from None
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite time, got {text!r}")
    return seconds
