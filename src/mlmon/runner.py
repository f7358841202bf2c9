"""The agent: for each instance and job, plan due windows, query, compute, stamp, submit, advance.

Failures stay where they happen: a warehouse error ends that job's run with ``can_connect`` CRITICAL,
a query error with ``mlmon.job.can_run`` CRITICAL (and ``predictions.available`` for the predictions
job's models), both naming what failed, plus an error count; a sink failure leaves the window pending
for the next run. The watermark of a (instance, job) advances only after the sink accepted every
point of a window; a job's first run sets it to the start of its first window. A statement that
runs out of the engine's memory is run again over half its windows (and so is the rest of the run),
down to one window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mlmon.config import Config, Instance
from mlmon.jobs import predictions as predictions_job
from mlmon.jobs import quality as quality_job
from mlmon.jobs import reproducibility as reproducibility_job
from mlmon.jobs import training as training_job
from mlmon.jobs.windows import Lane, Window, WindowOutput, due_windows, first_run_horizon
from mlmon.samples import CheckStatus, MetricType, Point, Sample, ServiceCheck, make_tags
from mlmon.sinks.base import Sink, SinkError
from mlmon.state import JobState, StateStore
from mlmon.times import iso
from mlmon.warehouse.engines import Engine, OutOfMemory, QueryError, WarehouseError, open_engine
from mlmon.warehouse.sql import exists_query

log = logging.getLogger("mlmon.runner")

CAN_CONNECT_CHECK = "mlmon.warehouse.can_connect"
#: per (instance, job): OK when the job's queries ran, CRITICAL naming the table(s) when one failed
JOB_CHECK = "mlmon.job.can_run"
#: the agent's own metrics, per (instance, job); ``lag_seconds`` once the job has a watermark
AGENT_METRICS = (
    "mlmon.agent.run.duration_seconds", "mlmon.agent.run.errors", "mlmon.agent.windows_processed",
    "mlmon.agent.points_sent", "mlmon.agent.points_skipped", "mlmon.agent.rows_fetched", "mlmon.agent.lag_seconds",
)
#: every job, in the order a run goes through them
JOBS = ("predictions", "quality", "reproducibility", "training")
#: tables each job reads (all must be configured for the job to run)
JOB_TABLES: dict[str, tuple[str, ...]] = {
    "predictions": ("predictions",),
    "quality": ("predictions", "labels"),
    "reproducibility": ("predictions", "replays"),
    "training": ("training_runs",),
}
WINDOW_JOBS = {"predictions": predictions_job, "quality": quality_job, "reproducibility": reproducibility_job}
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
    snapshot: list[Sample] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The one line ``mlmon run`` logs per job run (the daemon and ``--once`` alike)."""
        return (f"instance {self.instance} job {self.job}: {self.windows_processed} window(s), "
                f"{self.points_sent} point(s) sent, {self.points_skipped} skipped, {self.errors} error(s)")

    def as_json(self) -> dict[str, object]:
        """The report as ``mlmon run --once --format json`` prints it (no samples: counts and messages)."""
        return {
            "instance": self.instance, "job": self.job, "windows_processed": self.windows_processed,
            "points_sent": self.points_sent, "points_skipped": self.points_skipped,
            "rows_fetched": self.rows_fetched, "errors": self.errors,
            "watermark": None if self.watermark is None else iso(self.watermark), "messages": list(self.messages),
        }


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
    """Runs the configured jobs against their warehouses and hands the results to one sink.

    :meth:`state_key`, :meth:`windows` and :meth:`delivered` are where ``mlmon backfill``
    (:class:`mlmon.backfill.Backfill`) differs from a live run; everything between them is shared.
    """

    #: send service checks and the agent's self-metrics; a backfill does not, because they describe the
    #: live agent (a week-old CRITICAL, or a lag of a week, would page through the shipped monitors)
    sends_status = True

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
        self._warned_memory: set[tuple[str, str]] = set()
        self._skipped_logged: set[tuple[str, str]] = set()
        self._tables_seen: set[tuple[str, str]] = set()

    def enabled_jobs(self, instance: Instance) -> list[str]:
        """Jobs to run for ``instance``: enabled, with every table they read configured."""
        jobs = []
        for job in JOBS:
            settings = getattr(instance.jobs, job)
            missing = [t for t in JOB_TABLES[job] if getattr(instance.tables, t) is None]
            if settings.enabled and not missing:
                jobs.append(job)
            elif settings.enabled and (instance.name, job) not in self._skipped_logged:
                self._skipped_logged.add((instance.name, job))
                log.info("instance %s: job %s skipped, table %s not configured", instance.name, job, missing[0])
        return jobs

    def state_key(self, instance: Instance, job: str) -> str:
        """The name under which the state of ``job`` of ``instance`` is kept in the store."""
        return job

    def windows(self, instance: Instance, job: str, lane: Lane, state: JobState, now: float) -> list[Window]:
        """The windows of ``lane`` to process now, oldest first: every due window after its watermark."""
        cfg = getattr(instance.jobs, job)
        watermark = state.lane_watermark(lane.key)
        horizon = first_run_horizon(cfg.timestamp_policy, self.sink.horizon)
        windows = due_windows(now, watermark, cfg.window, lane.delay, cfg.initial_lookback, horizon)
        if watermark is None and horizon is not None and windows:
            asked = due_windows(now, None, cfg.window, lane.delay, cfg.initial_lookback)
            if len(asked) > len(windows):
                log.info("instance %s job %s: first run from %s: %d older window(s) of initial_lookback left out, "
                         "because Datadog drops points older than an hour unless Historical Metrics Ingestion is "
                         "on (historical_ingestion: true sends them)", instance.name, job, iso(windows[0].start),
                         len(asked) - len(windows))
        return windows

    def delivered(self, report: JobReport, outputs: Sequence[WindowOutput]) -> None:
        """Called once the sink accepted ``outputs`` and their watermark was saved."""

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
            if job == "training":
                self._run_training(instance, report, checks, base_tags)
            else:
                self._run_windowed(instance, job, report, checks, base_tags)
        except Exception as exc:  # a bug must not stop the other jobs or the scheduler
            report.errors += 1
            report.messages.append(f"{type(exc).__name__}: {exc}")
            log.exception("instance %s job %s failed", instance.name, job)
        if self.sends_status:
            self._send_self_metrics(instance, report, checks, base_tags, started)
        return report

    def _default_tables_exist(self, engine: Engine, instance: Instance, job: str) -> bool:
        """False (and one log line) when a table the config left at its default name does not exist."""
        for table in JOB_TABLES[job]:
            name = getattr(instance.tables, table)
            if instance.tables.explicit(table) or (instance.name, name) in self._tables_seen:
                continue
            try:
                engine.fetch(exists_query(name), {})
            except QueryError:
                if (instance.name, job) not in self._skipped_logged:
                    self._skipped_logged.add((instance.name, job))
                    log.info("instance %s: job %s skipped, table %s (default name) does not exist; "
                             "set tables.%s to its name, or to null to silence this", instance.name, job, name, table)
                return False
            self._tables_seen.add((instance.name, name))
        return True

    def _open(
        self, instance: Instance, report: JobReport, checks: list[ServiceCheck], base_tags: Sequence[str]
    ) -> Engine | None:
        try:
            return self.engine_factory(instance.warehouse)
        except WarehouseError as exc:
            self._unreachable(instance, exc, report, checks, base_tags)
            return None

    def _unreachable(
        self, instance: Instance, exc: WarehouseError, report: JobReport, checks: list[ServiceCheck],
        base_tags: Sequence[str],
    ) -> None:
        message = f"instance {instance.name}: {exc}"
        _record_error(report, message)
        tags = make_tags(base_tags, f"instance:{instance.name}")
        checks.append(ServiceCheck(CAN_CONNECT_CHECK, CheckStatus.CRITICAL, tags, self.clock(), message))

    def _connected(self, instance: Instance, checks: list[ServiceCheck], base_tags: Sequence[str]) -> None:
        tags = make_tags(base_tags, f"instance:{instance.name}")
        checks.append(ServiceCheck(CAN_CONNECT_CHECK, CheckStatus.OK, tags, self.clock()))

    def _job_status(
        self, instance: Instance, job: str, checks: list[ServiceCheck], base_tags: Sequence[str], message: str = ""
    ) -> None:
        """``mlmon.job.can_run``: CRITICAL with ``message`` when a query of the job failed, else OK."""
        tags = make_tags(base_tags, f"instance:{instance.name}", f"job:{job}")
        status = CheckStatus.CRITICAL if message else CheckStatus.OK
        checks.append(ServiceCheck(JOB_CHECK, status, tags, self.clock(), message))

    def _run_windowed(
        self, instance: Instance, job: str, report: JobReport, checks: list[ServiceCheck], base_tags: Sequence[str]
    ) -> None:
        module = WINDOW_JOBS[job]
        cfg = getattr(instance.jobs, job)
        state = self.store.load(instance.name, self.state_key(instance, job))
        report.watermark = state.oldest_watermark()
        now = self.clock()
        plan = [(lane, self.windows(instance, job, lane, state, now)) for lane in module.lanes(instance)]
        if not any(windows for _, windows in plan):
            return
        engine = self._open(instance, report, checks, base_tags)
        if engine is not None and not self._default_tables_exist(engine, instance, job):
            engine.close()
            return
        # a lane's first run fixes where it starts, so that windows a failed first run could not
        # deliver are still due on the next run (not re-based on the next run's initial lookback)
        new_lanes = [(lane, windows) for lane, windows in plan if windows and state.lane_watermark(lane.key) is None]
        for lane, windows in new_lanes:
            state.advance(lane.key, windows[0].start)
        if new_lanes:
            self.store.save(instance.name, self.state_key(instance, job), state)
            report.watermark = state.oldest_watermark()
        if engine is None:
            return
        names = [str(getattr(instance.tables, t)) for t in JOB_TABLES[job]]
        tables = f"table {names[0]}" if len(names) == 1 else f"tables {', '.join(names)}"
        failure = ""
        queried = False
        try:
            for lane, windows in plan:
                size, done = cfg.max_windows_per_query, 0
                while done < len(windows):
                    if self.stop.is_set():
                        return
                    windows_here = windows[done : done + size]
                    try:
                        batch = module.compute(engine, instance, windows_here, lane, state, base_tags, self.clock())
                    except WarehouseError as exc:
                        self._unreachable(instance, exc, report, checks, base_tags)
                        return
                    except QueryError as exc:
                        if isinstance(exc, OutOfMemory) and len(windows_here) > 1:
                            # the same windows again, and the rest of the run, in statements half as big
                            size = len(windows_here) // 2
                            self._memory_warning(instance, job, len(windows_here))
                            continue
                        message = f"instance {instance.name}, job {job}, {tables}: {exc}"
                        _record_error(report, message)
                        self._connected(instance, checks, base_tags)
                        checks.extend(module.failure_checks(instance, state, base_tags, message, self.clock()))
                        failure = failure or message
                        break  # this lane stays pending; the next lane may read other models
                    queried = True
                    report.rows_fetched += batch.rows_fetched
                    for problem in batch.problems:  # a part failed (e.g. the offline metrics' table)
                        _record_error(report, problem)
                        failure = failure or problem
                    self._connected(instance, checks, base_tags)
                    done += len(windows_here)
                    if not self._deliver(instance, job, cfg.timestamp_policy, batch.outputs, lane, state, report):
                        break
        finally:
            report.watermark = state.oldest_watermark()
            engine.close()
            if failure or queried:
                self._job_status(instance, job, checks, base_tags, failure)

    def _memory_warning(self, instance: Instance, job: str, windows: int) -> None:
        if (instance.name, job) not in self._warned_memory:
            self._warned_memory.add((instance.name, job))
            log.warning(
                "instance %s job %s: a statement over %d windows ran out of the engine's memory; running it "
                "again over fewer windows at a time (a bigger warehouse memory_limit or a smaller "
                "max_windows_per_query avoids the retry)", instance.name, job, windows,
            )

    def _run_training(
        self, instance: Instance, report: JobReport, checks: list[ServiceCheck], base_tags: Sequence[str]
    ) -> None:
        engine = self._open(instance, report, checks, base_tags)
        if engine is None:
            return
        if not self._default_tables_exist(engine, instance, "training"):
            engine.close()
            return
        try:
            snapshot = training_job.compute(engine, instance, instance.jobs.training, base_tags, self.clock())
        except WarehouseError as exc:
            self._unreachable(instance, exc, report, checks, base_tags)
            return
        except QueryError as exc:
            read = [instance.tables.training_runs]
            if instance.jobs.training.features:
                read.append(instance.tables.training_features)
            tables = ", ".join(str(t) for t in read if t)
            message = f"instance {instance.name}, job training, table {tables}: {exc}"
            _record_error(report, message)
            self._connected(instance, checks, base_tags)
            self._job_status(instance, "training", checks, base_tags, message)
            return
        finally:
            engine.close()
        self._connected(instance, checks, base_tags)
        # a failed part (the feature breakdown) fails the check; what could be read is still sent
        self._job_status(instance, "training", checks, base_tags, snapshot.problems[0] if snapshot.problems else "")
        report.rows_fetched += snapshot.rows_fetched
        for problem in snapshot.problems:
            _record_error(report, problem)
        # snapshots are stamped at send time: nothing to skip, nothing pending if refused
        samples = list(snapshot.samples)
        try:
            for i in range(0, len(samples), MAX_POINTS_PER_SUBMIT):
                self.sink.submit(samples[i : i + MAX_POINTS_PER_SUBMIT])
        except SinkError as exc:
            _record_error(report, f"instance {instance.name} job training: {exc}; the next run sends a new snapshot")
            return
        report.points_sent += len(samples)
        report.snapshot = samples

    def _deliver(
        self, instance: Instance, job: str, policy: str, outputs: Sequence[WindowOutput], lane: Lane,
        state: JobState, report: JobReport,
    ) -> bool:
        for group in _groups(outputs, MAX_POINTS_PER_SUBMIT):
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
            state.advance(lane.key, group[-1].window.end)
            self.store.save(instance.name, self.state_key(instance, job), state)
            report.windows_processed += len(group)
            report.points_sent += len(kept)
            report.outputs.extend(group)
            self.delivered(report, group)
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
        points.extend(checks)
        try:
            self.sink.submit(points)
        except SinkError as exc:
            log.warning("instance %s: agent self-metrics not delivered: %s", instance.name, exc)
