"""Recorded metrics for ``mlmon assets evaluate``: the JSON Lines sink's output, as sorted per-series arrays.

Each line is one ``/api/v1/series`` object (``{"metric", "type", "points": [[ts, value], ...], "tags"}``)
or one service check (``{"check", "status", "tags", "timestamp", "message"}``); timestamps are Unix
seconds, in any order. A series is keyed by its metric and its sorted, de-duplicated tags; a check
by its name and tags. Points of one series at the same second keep the last one written (Datadog keeps
the last value submitted for a timestamp); points whose value is not finite are dropped (Datadog's
intake refuses them). Blank lines are skipped; any other malformed line raises :class:`RecordingError`
naming the file and the line.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
SeriesKey = tuple[str, tuple[str, ...]]
_NUMBERS = frozenset({int, float})  # not bool
_PAIRS = frozenset({list, tuple})


class RecordingError(ValueError):
    """A metrics file cannot be read, or a line is not a series or a service check (file and line named)."""


@dataclass(frozen=True, eq=False)
class Series:
    """One metric time series: ``times`` ascending and unique, ``values`` aligned with them."""

    metric: str
    tags: tuple[str, ...]
    type: str
    times: FloatArray
    values: FloatArray


@dataclass(frozen=True, eq=False)
class CheckRuns:
    """The runs of one service check (name and tags): ``times`` ascending, ``statuses`` 0-3 aligned with them."""

    check: str
    tags: tuple[str, ...]
    times: FloatArray
    statuses: npt.NDArray[np.int8]


@dataclass(frozen=True, eq=False)
class Recording:
    """Series keyed by ``(metric, tags)`` and check runs keyed by ``(check, tags)``; ``start``/``end`` are
    the first and last timestamp of any point or check (None when there are none)."""

    series: Mapping[SeriesKey, Series]
    checks: Mapping[SeriesKey, CheckRuns]
    start: float | None
    end: float | None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recording:
        """Read a JSON Lines file; raises :class:`RecordingError` naming the file (and line) on any problem."""
        builder = _Builder(str(path))
        try:
            with open(path, encoding="utf-8") as fh:
                for number, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise RecordingError(f"{path}: line {number}: invalid JSON: {exc.msg} "
                                             f"(column {exc.colno})") from None
                    builder.add(record, number)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise RecordingError(f"{path}: cannot read: {reason}") from None
        return builder.build()

    @classmethod
    def from_lines(cls, records: Iterable[Mapping[str, Any]], source: str = "<records>") -> Recording:
        """Build from already-decoded line objects (tests, or a sink's output in memory)."""
        builder = _Builder(source)
        for number, record in enumerate(records, start=1):
            builder.add(record, number)
        return builder.build()

    def series_of(self, metric: str) -> list[Series]:
        """Every series of ``metric``."""
        return [s for (name, _), s in self.series.items() if name == metric]

    def checks_of(self, check: str) -> list[CheckRuns]:
        """Every tag set of service check ``check``."""
        return [c for (name, _), c in self.checks.items() if name == check]


class _Builder:
    def __init__(self, source: str) -> None:
        self.source, self.line = source, 0
        self.points: dict[SeriesKey, tuple[str, list[float], list[float]]] = {}
        self.runs: dict[SeriesKey, tuple[list[float], list[int]]] = {}
        self.tag_sets: dict[tuple[Any, ...], tuple[str, ...]] = {}  # as written -> sorted, de-duplicated

    def add(self, record: object, line: int) -> None:
        self.line = line
        if not isinstance(record, Mapping):
            raise self.error("expected an object (a series or a service check)")
        tags = self.tags(record.get("tags", []))
        if "metric" in record:
            self.add_series(record, tags)
        elif "check" in record:
            self.add_check(record, tags)
        else:
            raise self.error("expected a 'metric' (series) or a 'check' (service check) key")

    def tags(self, value: object) -> tuple[str, ...]:
        if isinstance(value, list):
            written = tuple(value)
            try:
                known = self.tag_sets.get(written)
            except TypeError:  # an unhashable tag: reported below
                known = None
            if known is not None:
                return known
            if all(isinstance(tag, str) for tag in written):
                self.tag_sets[written] = tags = tuple(sorted(set(written)))
                return tags
        raise self.error("'tags' must be a list of strings")

    def add_series(self, record: Mapping[str, Any], tags: tuple[str, ...]) -> None:
        name, kind, points = record["metric"], record.get("type", "gauge"), record.get("points")
        if not isinstance(name, str) or not name:
            raise self.error("'metric' must be a non-empty string")
        if not isinstance(kind, str):
            raise self.error("'type' must be a string such as gauge or count")
        if not isinstance(points, list):
            raise self.error("'points' must be a list of [timestamp, value] pairs")
        _, times, values = self.points.setdefault((name, tags), (kind, [], []))
        for point in points:
            if not (type(point) in _PAIRS and len(point) == 2 and type(point[0]) in _NUMBERS
                    and type(point[1]) in _NUMBERS and math.isfinite(point[0])):
                raise self.error(f"each point must be [timestamp, value] numbers, got {point!r}")
            if math.isfinite(point[1]):
                times.append(point[0])
                values.append(point[1])

    def add_check(self, record: Mapping[str, Any], tags: tuple[str, ...]) -> None:
        name, status, timestamp = record["check"], record.get("status"), record.get("timestamp", "")
        if not isinstance(name, str) or not name:
            raise self.error("'check' must be a non-empty string")
        if type(status) is not int or status not in (0, 1, 2, 3):
            raise self.error("'status' must be 0 (OK), 1 (WARNING), 2 (CRITICAL) or 3 (UNKNOWN)")
        if type(timestamp) not in _NUMBERS or not math.isfinite(timestamp):  # type() leaves bool out
            raise self.error("'timestamp' must be Unix seconds")
        times, statuses = self.runs.setdefault((name, tags), ([], []))
        times.append(timestamp)
        statuses.append(status)

    def error(self, problem: str) -> RecordingError:
        return RecordingError(f"{self.source}: line {self.line}: {problem}")

    def build(self) -> Recording:
        series = {}
        for (name, tags), (kind, times, values) in self.points.items():
            t, v = np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64)
            order = np.argsort(t, kind="stable")
            t, v = t[order], v[order]
            last_of_second = np.append(t[1:] != t[:-1], True) if t.size else np.zeros(0, dtype=bool)
            series[(name, tags)] = Series(name, tags, kind, t[last_of_second], v[last_of_second])
        checks = {}
        for (name, tags), (times, statuses) in self.runs.items():
            t, s = np.asarray(times, dtype=np.float64), np.asarray(statuses, dtype=np.int8)
            order = np.argsort(t, kind="stable")
            checks[(name, tags)] = CheckRuns(name, tags, t[order], s[order])
        bounds = [a for s in series.values() if s.times.size for a in (s.times[0], s.times[-1])]
        bounds += [a for c in checks.values() for a in (c.times[0], c.times[-1])]
        start = float(min(bounds)) if bounds else None
        end = float(max(bounds)) if bounds else None
        return Recording(series, checks, start, end)

