"""Delivery: stamp a range's window outputs, hand them to the sink in whole windows, advance the watermark.

The watermark of a lane advances only after the sink accepted every point of a window, and is saved
before the next submission; a refused submission leaves its windows, and every later one, pending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from mlmon.config import Instance
from mlmon.jobs.windows import Lane, WindowOutput
from mlmon.reports import JobReport, record_error
from mlmon.samples import Point, Sample, ServiceCheck
from mlmon.sinks.base import Sink, SinkError
from mlmon.state import MODEL_MEMORY, JobState, StateStore

log = logging.getLogger("mlmon.runner")

#: samples per sink submission during catch-up (whole windows only)
MAX_POINTS_PER_SUBMIT = 5000


def stamp(
    samples: Iterable[Sample], now: float, horizon: float | None, policy: str
) -> tuple[list[Sample], int]:
    """Apply the timestamp policy: keep window-end stamps the destination accepts.

    A point older than ``horizon`` is re-stamped at ``now`` under ``send_time`` and dropped (and
    counted) under ``window_end``, because Datadog would silently discard it.
    """
    if horizon is None:
        return list(samples), 0
    kept, skipped = [], 0
    for s in samples:
        if now - s.timestamp <= horizon:
            kept.append(s)
        elif policy == "send_time":
            kept.append(s._replace(timestamp=now))
        else:
            skipped += 1
    return kept, skipped


def cap_series(samples: Sequence[Sample], report: JobReport, cap: int) -> list[Sample]:
    """``samples`` less those of series beyond the run's first ``cap`` distinct ones (counted in
    ``report.series_capped``; the series sent are kept in ``report.series``)."""
    kept = []
    for s in samples:
        key = (s.name, s.tags)
        if key not in report.series:
            if len(report.series) >= cap:
                report.series_capped += 1
                continue
            report.series.add(key)
        kept.append(s)
    return kept


def warn_capped(instance: str, report: JobReport, cap: int) -> None:
    """One WARNING for a run that reached the cap."""
    if report.series_capped:
        log.warning("instance %s job %s: %d point(s) of series beyond init_config.series_cap (%d distinct series "
                    "in one run) not sent; look for a tag with too many values (model_version, a segment_by "
                    "column) with mlmon plan, or raise the cap", instance, report.job, report.series_capped, cap)


def stamp_checks(checks: Iterable[ServiceCheck], now: float, horizon: float | None) -> list[ServiceCheck]:
    """Service checks are statuses: one older than ``horizon`` is re-stamped at ``now``, never dropped."""
    return [c if horizon is None or now - c.timestamp <= horizon else c._replace(timestamp=now) for c in checks]


def submissions(outputs: Sequence[WindowOutput], max_points: int) -> list[list[WindowOutput]]:
    """``outputs`` cut into runs of whole windows of at most ``max_points`` samples (one window alone may
    hold more)."""
    groups: list[list[WindowOutput]] = []
    current: list[WindowOutput] = []
    size = 0
    for out in outputs:
        if current and size + len(out.samples) > max_points:
            groups.append(current)
            current, size = [], 0
        current.append(out)
        size += len(out.samples)
    if current:
        groups.append(current)
    return groups


class Delivery:
    """Hands window outputs to ``sink`` and keeps the watermarks in ``store``; logs each job's first skip."""

    def __init__(self, sink: Sink, store: StateStore, clock: Callable[[], float], stop: threading.Event,
                 *, series_cap: int, send_budget: float, sends_status: bool = True) -> None:
        self.sink = sink
        self.store = store
        self.clock = clock
        self.stop = stop
        self.sends_status = sends_status
        #: init_config.series_cap: the most distinct series one job run sends
        self.series_cap = series_cap
        #: init_config.datadog.send_budget: the most time one job run spends in the sink
        self.send_budget = send_budget
        self._warned_skips: set[tuple[str, str]] = set()

    def deliver(
        self, instance: Instance, state_key: str, policy: str, outputs: Sequence[WindowOutput], lane: Lane,
        state: JobState, report: JobReport, delivered: Callable[[JobReport, Sequence[WindowOutput]], None],
    ) -> bool:
        """Submit ``outputs`` in order; False when stopped or refused (the rest stays pending)."""
        job = report.job
        for group in submissions(outputs, MAX_POINTS_PER_SUBMIT):
            if self.stop.is_set():
                return False
            if report.send_seconds >= self.send_budget:
                record_error(report, f"instance {instance.name} job {job}: {report.send_seconds:.0f} s spent sending "
                             f"this run, init_config.datadog.send_budget ({self.send_budget:g} s): the windows not "
                             "sent yet stay pending for the next run")
                return False
            now = self.clock()
            samples = cap_series([s for out in group for s in out.samples], report, self.series_cap)
            kept, skipped = stamp(samples, now, self.sink.horizon, policy)
            checks = stamp_checks((c for out in group for c in out.checks if self.sends_status), now,
                                  self.sink.horizon)
            points: list[Point] = [*kept, *checks]
            started = time.monotonic()
            try:
                self.sink.submit(points)
            except SinkError as exc:
                report.send_seconds += time.monotonic() - started
                record_error(report, f"instance {instance.name} job {job}: {exc}; {len(group)} window(s) stay pending")
                return False
            report.send_seconds += time.monotonic() - started
            if skipped:
                report.points_skipped += skipped
                if (instance.name, job) not in self._warned_skips:
                    self._warned_skips.add((instance.name, job))
                    log.warning(
                        "instance %s job %s: skipped %d point(s) older than the ingestion horizon that "
                        "Datadog would drop; enable Historical Metrics Ingestion and set "
                        "historical_ingestion: true, or use timestamp_policy: send_time",
                        instance.name, job, skipped,
                    )
            for out in group:
                for model, version in out.models.items():
                    state.models[model] = {"last_seen": out.window.end, "version": version}
            # a model silent for longer than it is expected (a day) is forgotten: no availability check, no
            # count 0, no failure check for it any more (the known models once only grew)
            for model in state.forget_models(group[-1].window.end - MODEL_MEMORY):
                log.info("instance %s: model %s not seen for a day; no longer expected", instance.name, model)
            state.advance(lane.key, group[-1].window.end)
            self.store.save(instance.name, state_key, state)
            report.windows_processed += len(group)
            report.points_sent += len(kept)
            report.outputs.extend(group)
            delivered(report, group)
        return True
