"""Counting custom-metric series: the records and helpers each job's series rule is written with.

Datadog bills one custom metric per distinct (metric name, tag set) that reports in an hour. A job
declares its rule (:attr:`mlmon.jobs.spec.JobSpec.series`) with these; ``mlmon plan``
(:mod:`mlmon.plan`) runs every rule and prints the counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the job modules import this one: it imports none of them
    from mlmon.jobs.windows import Lane, Window
    from mlmon.warehouse.cardinality import VersionSeen

DAY = 86400.0
MODEL_KEYS = ("model", "model_version")


@dataclass(frozen=True)
class SeriesCount:
    """``series`` distinct tag sets of ``name`` (a metric or a service check), tagged by ``tag_keys``."""

    name: str
    tag_keys: tuple[str, ...]
    series: int


@dataclass(frozen=True)
class Period:
    """The windows ``[start, end)`` a window job (or one of its lanes) is planned over."""

    start: float
    end: float
    windows: int


@dataclass
class Counted:
    """What one job's series rule found: metric series, service-check series, periods, problems."""

    metrics: list[SeriesCount]
    checks: list[SeriesCount] = field(default_factory=list)
    periods: list[Period] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FirstRun:
    """What bounds a planned first run: the destination's ``horizon`` (seconds; None when it keeps any age),
    unless ``lookback`` (``mlmon plan --lookback``) asks for a whole period instead of ``initial_lookback``."""

    lookback: float | None = None
    horizon: float | None = None

    def period(self, now: float, job: Any, lane: Lane) -> list[Window]:
        """The windows a first run of ``job`` (its settings) would process at ``now`` in ``lane``, as
        :meth:`mlmon.runner.Agent.windows` computes them; a ``lookback`` asks for that whole period."""
        from mlmon.jobs.windows import due_windows, first_run_horizon

        if self.lookback is not None:
            return due_windows(now, None, job.window, lane.delay, self.lookback)
        return due_windows(now, None, job.window, lane.delay, job.initial_lookback,
                           first_run_horizon(job.timestamp_policy, self.horizon))


class SeriesCounter:
    """Series per metric name, kept in declaration order; a name the job does not declare is a bug."""

    def __init__(self, names: Sequence[str]) -> None:
        self.counts = dict.fromkeys(names, 0)

    def add(self, name: str, n: int = 1) -> None:
        if name not in self.counts:
            raise KeyError(f"{name} is not declared by its job")  # the job modules list what they emit
        self.counts[name] += n

    def rows(self, keys: Callable[[str], tuple[str, ...]]) -> list[SeriesCount]:
        return [SeriesCount(name, keys(name), n) for name, n in self.counts.items()]


def tag_keys(tags: Iterable[str], *keys: str) -> tuple[str, ...]:
    """The keys of ``tags`` (``team:ads`` -> ``team``) followed by ``keys``, each once."""
    return tuple(dict.fromkeys([*(t.split(":", 1)[0] for t in tags), *keys]))


def model_pairs(seen: Iterable[VersionSeen], *, valid: bool) -> set[tuple[str, str]]:
    """The (model, model_version) pairs active in the period (with a valid prediction, when ``valid``)."""
    return {(s.model, s.model_version) for s in seen if s.active and (s.valid or not valid)}
