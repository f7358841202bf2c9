"""The agent: for each instance and job, plan due windows, query, compute, stamp, submit, advance.

Failures stay where they happen: a warehouse or query error ends that job's run with a CRITICAL
service check and an error count; a sink failure leaves the window pending for the next run. The
watermark of a (instance, job) advances only after the sink accepted every point of a window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mlmon.config import Config, Instance
from mlmon.jobs import predictions as predictions_job
from mlmon.jobs.predictions import WindowOutput
from mlmon.jobs.windows import due_windows
from mlmon.samples import CheckStatus, MetricType, Point, Sample, ServiceCheck, make_tags
from mlmon.sinks.base import Sink, SinkError
from mlmon.state import JobState, StateStore
from mlmon.warehouse.engines import Engine, QueryError, WarehouseError, open_engine

log = logging.getLogger("mlmon.runner")

CAN_CONNECT_CHECK = "mlmon.warehouse.can_connect"
#: jobs this release computes; the others' settings are accepted and documented as upcoming
IMPLEMENTED_JOBS = ("predictions",)
#: samples per sink submission during catch-up (whole windows only)
MAX_POINTS_PER_SUBMIT = 5000


@dataclass
class JobReport:
    """What one run of one (instance, job) did."""

    instance: str
    job: str
    windows_processed: int = 0
    points_sent: int = 0
    points_skipped: int = 0
    rows_fetched: int = 0
    errors: int = 0
    watermark: float | None = None
    outputs: list[WindowOutput] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


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


def latest_checks(checks: Iterable[ServiceCheck]) -> list[ServiceCheck]:
    """One check per (name, tags): the last one, which is the current status."""
    latest: dict[tuple[str, tuple[str, ...]], ServiceCheck] = {}
    for c in checks:
        latest[(c.name, c.tags)] = c
    return list(latest.values())


def _record_error(report: JobReport, message: str) -> None:
    report.errors += 1
    report.messages.append(message)
    log.error("%s", message)


def _groups(outputs: Sequence[WindowOutput], max_points: int) -> list[list[WindowOutput]]:
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


class Agent:
    """Runs the configured jobs against their warehouses and hands the results to one sink."""

    def __init__(
        self,
        config: Config,
        sink: Sink,
        *,
        clock: Callable[[], float] = time.time,
        engine_factory: Callable[..., Engine] = open_engine,
        store: StateStore | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.clock = clock
        self.engine_factory = engine_factory
        self.store = store or StateStore(config.init_config.state_dir)
        self.stop = threading.Event()
        self._warned_skips: set[tuple[str, str]] = set()

    def enabled_jobs(self, instance: Instance) -> list[str]:
        """Jobs this release runs for ``instance`` (enabled and with a configured table)."""
        jobs = []
        if instance.jobs.predictions.enabled and instance.tables.predictions:
            jobs.append("predictions")
        return jobs

    def run_once(self) -> list[JobReport]:
        """Run every enabled job of every instance once; never raises for a data or sink problem."""
        reports: list[JobReport] = []
        for instance in self.config.instances:
            for job in self.enabled_jobs(instance):
                if self.stop.is_set():
                    return reports
                reports.append(self.run_job(instance, job))
        return reports

    def run_job(self, instance: Instance, job: str) -> JobReport:
        """Run one job of one instance, catching its failures."""
        started = self.clock()
        report = JobReport(instance.name, job)
        base_tags = self.config.base_tags(instance)
        checks: list[ServiceCheck] = []
        try:
            self._run_predictions(instance, report, checks, base_tags)
        except Exception as exc:  # a bug must not stop the other jobs or the scheduler
            report.errors += 1
            report.messages.append(f"{type(exc).__name__}: {exc}")
            log.exception("instance %s job %s failed", instance.name, job)
        self._send_self_metrics(instance, report, checks, base_tags, started)
        return report

    def _run_predictions(
        self, instance: Instance, report: JobReport, checks: list[ServiceCheck], base_tags: Sequence[str]
    ) -> None:
        cfg = instance.jobs.predictions
        state = self.store.load(instance.name, "predictions")
        report.watermark = state.watermark
        now = self.clock()
        windows = due_windows(now, state.watermark, cfg.window, cfg.lateness, cfg.initial_lookback)
        if not windows:
            return
        connect_tags = make_tags(base_tags, f"instance:{instance.name}")

        def unreachable(exc: WarehouseError) -> None:
            message = f"instance {instance.name}: {exc}"
            _record_error(report, message)
            checks.append(ServiceCheck(CAN_CONNECT_CHECK, CheckStatus.CRITICAL, connect_tags, self.clock(), message))

        try:
            engine = self.engine_factory(instance.warehouse)
        except WarehouseError as exc:
            unreachable(exc)
            return
        try:
            for i in range(0, len(windows), cfg.max_windows_per_query):
                if self.stop.is_set():
                    break
                batch = windows[i : i + cfg.max_windows_per_query]
                try:
                    outputs, fetched = predictions_job.compute(
                        engine, instance, cfg, batch, state, base_tags, self.clock()
                    )
                except WarehouseError as exc:
                    unreachable(exc)
                    return
                except QueryError as exc:
                    message = f"instance {instance.name}, table {instance.tables.predictions}: {exc}"
                    _record_error(report, message)
                    checks.append(ServiceCheck(CAN_CONNECT_CHECK, CheckStatus.OK, connect_tags, self.clock()))
                    for model in sorted(set(instance.models) | set(state.models)):
                        checks.append(ServiceCheck(predictions_job.AVAILABLE_CHECK, CheckStatus.CRITICAL,
                                                   make_tags(base_tags, f"model:{model}"), self.clock(), message))
                    return
                report.rows_fetched += fetched
                checks.append(ServiceCheck(CAN_CONNECT_CHECK, CheckStatus.OK, connect_tags, self.clock()))
                if not self._deliver(instance, "predictions", cfg.timestamp_policy, outputs, state, report):
                    return
        finally:
            engine.close()

    def _deliver(
        self, instance: Instance, job: str, policy: str, outputs: Sequence[WindowOutput],
        state: JobState, report: JobReport,
    ) -> bool:
        for group in _groups(outputs, MAX_POINTS_PER_SUBMIT):
            if self.stop.is_set():
                return False
            now = self.clock()
            samples = [s for out in group for s in out.samples]
            kept, skipped = stamp(samples, now, self.sink.horizon, policy)
            points: list[Point] = [*kept, *latest_checks(c for out in group for c in out.checks)]
            try:
                self.sink.submit(points)
            except SinkError as exc:
                _record_error(report, f"instance {instance.name} job {job}: {exc}; {len(group)} window(s) stay pending")
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
            state.watermark = report.watermark = group[-1].window.end
            self.store.save(instance.name, job, state)
            report.windows_processed += len(group)
            report.points_sent += len(kept)
            report.outputs.extend(group)
        return True

    def _send_self_metrics(
        self, instance: Instance, report: JobReport, checks: list[ServiceCheck],
        base_tags: Sequence[str], started: float,
    ) -> None:
        now = self.clock()
        tags = make_tags(base_tags, f"instance:{instance.name}", f"job:{report.job}")
        points: list[Point] = [
            Sample("mlmon.agent.run.duration_seconds", now - started, tags, now),
            Sample("mlmon.agent.run.errors", report.errors, tags, now, MetricType.COUNT),
            Sample("mlmon.agent.windows_processed", report.windows_processed, tags, now, MetricType.COUNT),
            Sample("mlmon.agent.points_sent", report.points_sent, tags, now, MetricType.COUNT),
            Sample("mlmon.agent.points_skipped", report.points_skipped, tags, now, MetricType.COUNT),
            Sample("mlmon.agent.rows_fetched", report.rows_fetched, tags, now, MetricType.COUNT),
        ]
        if report.watermark is not None:
            points.append(Sample("mlmon.agent.lag_seconds", max(now - report.watermark, 0.0), tags, now))
        points.extend(latest_checks(checks))
        try:
            self.sink.submit(points)
        except SinkError as exc:
            log.warning("instance %s: agent self-metrics not delivered: %s", instance.name, exc)
