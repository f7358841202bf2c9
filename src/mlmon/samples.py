"""Plain records that flow from the metric functions to the sinks."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import NamedTuple


class MetricType(str, enum.Enum):
    """Datadog metric types mlmon submits."""

    GAUGE = "gauge"
    COUNT = "count"


class CheckStatus(enum.IntEnum):
    """Datadog service-check statuses."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class Sample(NamedTuple):
    """One metric point: ``name`` at ``timestamp`` (Unix seconds) with sorted ``tags``."""

    name: str
    value: float
    tags: tuple[str, ...]
    timestamp: float
    type: MetricType = MetricType.GAUGE


class ServiceCheck(NamedTuple):
    """One service-check status with a human-readable message."""

    name: str
    status: CheckStatus
    tags: tuple[str, ...]
    timestamp: float
    message: str = ""


Point = Sample | ServiceCheck


def make_tags(*groups: object) -> tuple[str, ...]:
    """Flatten tag groups (strings or iterables of strings) into a sorted, de-duplicated tuple."""
    out: set[str] = set()
    for group in groups:
        if group is None:
            continue
        if isinstance(group, str):
            out.add(group)
        else:
            out.update(str(t) for t in group)  # type: ignore[attr-defined]
    return tuple(sorted(out))


def latest_checks(checks: Iterable[ServiceCheck]) -> list[ServiceCheck]:
    """One check per (name, tags): the last one given, which is the current status."""
    latest: dict[tuple[str, tuple[str, ...]], ServiceCheck] = {}
    for c in checks:
        latest[(c.name, c.tags)] = c
    return list(latest.values())
