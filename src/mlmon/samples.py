"""Plain records that flow from the metric functions to the sinks."""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable
from typing import NamedTuple

log = logging.getLogger("mlmon.samples")


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


#: what Datadog keeps in a tag: letters (any script), digits, ``_ - : . /``; anything else becomes ``_``
_TAG_ILLEGAL = re.compile(r"[^\w\-:./]")
MAX_TAG_LENGTH = 200
#: normalized tag -> the first tag seen that became it (to tell when two values become one tag)
_NORMALIZED: dict[str, str] = {}
_COLLISIONS_TOLD: set[str] = set()
_MAX_REMEMBERED = 200_000


def normalize_tag(tag: str) -> str:
    """``tag`` as Datadog stores it: lower case, characters it does not keep replaced by ``_``, at most 200
    characters. Sending it already normalized keeps what mlmon tests and counts equal to what Datadog holds;
    two values that become the same tag (``CTR`` and ``ctr``, ``a,b`` and ``a_b``) are told once, as their
    series merge in Datadog."""
    out = _TAG_ILLEGAL.sub("_", tag.lower())[:MAX_TAG_LENGTH]
    if len(_NORMALIZED) >= _MAX_REMEMBERED:  # a daemon sees new versions every day: remember a bounded number
        _NORMALIZED.clear()
    first = _NORMALIZED.setdefault(out, tag)
    if first != tag and out not in _COLLISIONS_TOLD:
        _COLLISIONS_TOLD.add(out)
        log.warning("tags %r and %r are both %r once normalized as Datadog does (lower case, other characters "
                    "as _, 200 characters): their series are one in Datadog", first, tag, out)
    return out


def make_tags(*groups: object) -> tuple[str, ...]:
    """Flatten tag groups (strings or iterables of strings) into a sorted, de-duplicated tuple of normalized tags
    (:func:`normalize_tag`)."""
    out: set[str] = set()
    for group in groups:
        if group is None:
            continue
        if isinstance(group, str):
            out.add(normalize_tag(group))
        else:
            out.update(normalize_tag(str(t)) for t in group)  # type: ignore[attr-defined]
    return tuple(sorted(out))


def latest_checks(checks: Iterable[ServiceCheck]) -> list[ServiceCheck]:
    """One check per (name, tags): the last one given, which is the current status."""
    latest: dict[tuple[str, tuple[str, ...]], ServiceCheck] = {}
    for c in checks:
        latest[(c.name, c.tags)] = c
    return list(latest.values())
