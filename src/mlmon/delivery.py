"""Delivery: stamp a range's window outputs, hand them to the sink in whole windows, advance the watermark.

The watermark of a lane advances only after the sink accepted every point of a window, and is saved
before the next submission; a refused submission leaves its windows, and every later one, pending.
"""

from __future__ import annotations

import logging
import threading
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
                 *, sends_status: bool = True) -> None:
        self.sink = sink
        self.store = store
        self.clock = clock
        self.stop = stop
        self.sends_status = sends_status
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
            now = self.clock()
            samples = [s for out in group for s in out.samples]
            kept, skipped = stamp(samples, now, self.sink.horizon, policy)
            checks = stamp_checks((c for out in group for c in out.checks if self.sends_status), now,
                                  self.sink.horizon)
            points: list[Point] = [*kept, *checks]
            try:
                self.sink.submit(points)
            except SinkError as exc:
                record_error(report, f"instance {instance.name} job {job}: {exc}; {len(group)} window(s) stay pending")
                return False
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
