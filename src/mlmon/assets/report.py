"""What ``mlmon assets evaluate`` (and ``mlmon demo``) print: aligned text lines and JSON objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlmon.assets.evaluate import Episode, GroupResult, Status
from mlmon.times import iso

_STATUS_RANK = {Status.ALERT: 0, Status.NO_DATA: 1, Status.WARN: 2, Status.OK: 3}
UNSUPPORTED = "UNSUPPORTED"


def report_order(results: Iterable[GroupResult]) -> list[GroupResult]:
    """Firing results first, then by status (ALERT, NO DATA, WARN, OK), monitor and group."""
    return sorted(results, key=lambda r: (not r.fires, _STATUS_RANK[r.status], r.monitor, r.group))


def format_results(results: Iterable[GroupResult], unsupported: Mapping[str, str] | None = None) -> list[str]:
    """Aligned lines ``monitor  group  status  value  threshold`` in :func:`report_order`, then one
    ``monitor  -  UNSUPPORTED  -  reason`` line per monitor evaluate cannot handle."""
    rows = [(r.monitor, r.group_name, r.status.value, _number(r.value), _condition(r)) for r in report_order(results)]
    rows += [(name, "-", UNSUPPORTED, "-", reason) for name, reason in sorted((unsupported or {}).items())]
    return _columns(rows)


def format_episodes(episodes: Iterable[Episode], unsupported: Mapping[str, str] | None = None) -> list[str]:
    """Aligned lines ``monitor  group  status  first  last  worst-value`` (times ISO-8601 UTC), then the
    unsupported monitors."""
    rows = [(e.monitor, e.group_name, e.status.value, iso(e.first), iso(e.last), _number(e.worst_value))
            for e in episodes]
    rows += [(name, "-", UNSUPPORTED, "-", "-", reason) for name, reason in sorted((unsupported or {}).items())]
    return _columns(rows)


def result_json(result: GroupResult) -> dict[str, Any]:
    """One result as a JSON object; the group is a tag -> value object."""
    return {"monitor": result.monitor, "group": dict(result.group), "status": result.status.value,
            "value": result.value, "threshold": result.threshold, "comparator": result.comparator,
            "fires": result.fires}


def episode_json(episode: Episode) -> dict[str, Any]:
    """One episode as a JSON object; ``first``/``last`` ISO-8601 UTC, the group a tag -> value object."""
    return {"monitor": episode.monitor, "group": dict(episode.group), "status": episode.status.value,
            "first": iso(episode.first), "last": iso(episode.last), "worst_value": episode.worst_value}


def unsupported_json(unsupported: Mapping[str, str]) -> list[dict[str, Any]]:
    """``{"monitor", "status": "UNSUPPORTED", "error"}`` per monitor evaluate cannot handle."""
    return [{"monitor": name, "status": UNSUPPORTED, "error": reason} for name, reason in sorted(unsupported.items())]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _condition(result: GroupResult) -> str:
    return "-" if result.threshold is None else f"{result.comparator} {result.threshold:g}"


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
            for row in rows]
