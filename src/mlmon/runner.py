"""The agent: for each instance and job of the registry, plan due windows, query, compute, stamp, submit, advance.

Failures stay where they happen: a warehouse error ends that job's run with ``can_connect`` CRITICAL,
a query error with ``mlmon.job.can_run`` CRITICAL (and ``predictions.available`` for the predictions
job's models), both naming what failed, plus an error count; a sink failure leaves the window pending
for the next run. The watermark of a (instance, job) advances only after the sink accepted every
point of a window (:mod:`mlmon.delivery`); a job's first run sets it to the start of its first window.
Statements run in :mod:`mlmon.execution`. Which windows a run takes, where their watermarks live and
what happens once they are delivered is the run's :class:`Range`: :class:`LiveRange` for ``mlmon run``,
:class:`mlmon.backfill.BackfillRange` for ``mlmon backfill``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from mlmon.config import Config, Instance
from mlmon.delivery import Delivery, stamp, stamp_checks, warn_capped
from mlmon.execution import JobRun, WindowedRun, run_snapshot
from mlmon.jobs import JOBS, JobSpec
from mlmon.jobs.spec import absent_default_table
from mlmon.jobs.windows import Lane, Window, WindowOutput, due_windows, first_run_horizon
from mlmon.reports import CAN_CONNECT_CHECK, JOB_CHECK, JobReport, JobStatus, record_error
from mlmon.samples import MetricType, Point, Sample, make_tags
from mlmon.sinks.base import Sink, SinkError
from mlmon.sinks.base import flush as flush_sink
from mlmon.state import JobState, StateError, StateStore
from mlmon.times import iso
from mlmon.warehouse.engines import Engine, WarehouseError, open_engine

__all__ = ["AGENT_METRICS", "CAN_CONNECT_CHECK", "JOB_CHECK", "Agent", "JobReport", "LiveRange", "Range", "stamp",
           "stamp_checks"]

log = logging.getLogger("mlmon.runner")

#: the agent's own metrics, per (instance, job); ``lag_seconds`` once the job has a watermark
AGENT_METRICS = (
    "mlmon.agent.run.duration_seconds", "mlmon.agent.run.errors", "mlmon.agent.windows_processed",
    "mlmon.agent.points_sent", "mlmon.agent.points_skipped", "mlmon.agent.rows_fetched", "mlmon.agent.series_capped",
    "mlmon.agent.lag_seconds",
)


class Range(Protocol):
    """What a run covers: which windows, under which state, and what follows a delivery."""

    #: send service checks and the agent's self-metrics (they describe the live agent)
    sends_status: bool

    def state_key(self, instance: Instance, job: str) -> str:
        """The name under which the state of ``job`` of ``instance`` is kept in the store."""

    def windows(self, instance: Instance, spec: JobSpec, lane: Lane, state: JobState, now: float) -> list[Window]:
        """The windows of ``lane`` to process now, oldest first."""

    def delivered(self, report: JobReport, outputs: Sequence[WindowOutput]) -> None:
        """Called once the sink accepted ``outputs`` and their watermark was saved."""


class LiveRange:
    """``mlmon run``: every due window after the job's watermark; a first run bounded by the sink's horizon
    (``horizon()``: seconds, or None when the sink keeps any age)."""

    sends_status = True

    def __init__(self, horizon: Callable[[], float | None]) -> None:
        self.horizon = horizon

    def state_key(self, instance: Instance, job: str) -> str:
        return job

    def windows(self, instance: Instance, spec: JobSpec, lane: Lane, state: JobState, now: float) -> list[Window]:
        cfg = spec.settings(instance)
        watermark = state.lane_watermark(lane.key)
        horizon = first_run_horizon(cfg.timestamp_policy, self.horizon())
        windows = due_windows(now, watermark, cfg.window, lane.delay, cfg.initial_lookback, horizon)
        if watermark is None and horizon is not None and windows:
            asked = due_windows(now, None, cfg.window, lane.delay, cfg.initial_lookback)
            if len(asked) > len(windows):
                log.info("instance %s job %s: first run from %s: %d older window(s) of initial_lookback left out, "
                         "because Datadog drops points older than an hour unless Historical Metrics Ingestion is "
                         "on (historical_ingestion: true sends them)", instance.name, spec.name,
                         iso(windows[0].start), len(asked) - len(windows))
        return windows

    def delivered(self, report: JobReport, outputs: Sequence[WindowOutput]) -> None:
        pass


class Agent:
    """Runs the registry's jobs against their warehouses over a :class:`Range`, into one sink."""

    def __init__(
        self,
        config: Config,
        sink: Sink,
        *,
        clock: Callable[[], float] = time.time,
        engine_factory: Callable[..., Engine] = open_engine,
        store: StateStore | None = None,
        over: Range | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.engine_factory = engine_factory
        self.store = store or StateStore(config.init_config.state_dir)
        self.over: Range = over or LiveRange(lambda: self.sink.horizon)
        self.stop = threading.Event()
        self.delivery = Delivery(sink, self.store, clock, self.stop, sends_status=self.over.sends_status,
                                 series_cap=config.init_config.series_cap,
                                 send_budget=config.init_config.datadog.send_budget)
        self.windowed = WindowedRun(self.delivery)
        self._skipped_logged: set[tuple[str, str]] = set()
        self._tables_seen: dict[str, set[str]] = {}
        #: the engines of the jobs running now, for :meth:`interrupt`
        self._engines: list[Engine] = []
        self._engines_lock = threading.Lock()

    def interrupt(self) -> None:
        """End the statements in flight (after :attr:`stop` is set, on SIGTERM): each running job's engine is
        interrupted if it can be (a statement that hangs on a server that stopped answering would otherwise hold
        the stopping agent); the interrupted windows stay pending."""
        with self._engines_lock:
            engines = list(self._engines)
        for engine in engines:
            interrupt = getattr(engine, "interrupt", None)
            if interrupt is not None:
                interrupt()

    @property
    def sink(self) -> Sink:
        """Where every point goes (the delivery's sink: replacing it replaces both)."""
        return self.delivery.sink

    @sink.setter
    def sink(self, sink: Sink) -> None:
        self.delivery.sink = sink

    def enabled_jobs(self, instance: Instance) -> list[str]:
        """Jobs to run for ``instance``: enabled, with every table they read configured."""
        jobs = []
        for name, spec in JOBS.items():
            runs, why = spec.runnable(instance)
            if runs:
                jobs.append(name)
            elif why != "enabled: false" and (instance.name, name) not in self._skipped_logged:
                self._skipped_logged.add((instance.name, name))
                log.info("instance %s: job %s skipped, %s", instance.name, name, why)
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
        spec = JOBS[job]
        base_tags = self.config.base_tags(instance)
        status = JobStatus(instance.name, job, base_tags, self.clock)
        run = JobRun(instance, spec, JobReport(instance.name, job), status, base_tags, self.clock, self.stop)
        try:
            if spec.windowed:
                self._run_windowed(run)
            else:
                engine = self._open(run)
                if engine is not None and self._tables_exist(engine, run):
                    run_snapshot(run, engine, self.sink, self.config.init_config.series_cap)
        except StateError as exc:  # the state directory is not writable: a clean error, can_run CRITICAL
            run.report.errors += 1
            message = f"instance {instance.name}, job {job}: {exc}"
            run.report.messages.append(message)
            run.status.checks[:] = [c for c in run.status.checks if c.name != JOB_CHECK]  # not OK, then CRITICAL
            run.status.ran(message)
            log.error("%s", message)
        except Exception as exc:  # a bug or a bad state file must not stop the other jobs or the scheduler
            run.report.errors += 1
            message = f"instance {instance.name}, job {job}: {type(exc).__name__}: {exc}"
            run.report.messages.append(message)
            run.status.ran(message)
            log.exception("instance %s job %s failed", instance.name, job)
        finally:
            with self._engines_lock:
                self._engines = [e for e in self._engines if not any(e is mine for mine in run.engines)]
        warn_capped(instance.name, run.report, self.config.init_config.series_cap)
        if self.over.sends_status:
            try:
                self._send_self_metrics(run, started)
            except Exception:
                log.exception("instance %s job %s: agent self-metrics not computed", instance.name, job)
        try:
            flush_sink(self.sink)  # the service checks a sink held back: the latest status of each series, once
        except SinkError as exc:
            record_error(run.report, f"instance {instance.name} job {job}: service checks not delivered: {exc}")
        return run.report

    def _open(self, run: JobRun) -> Engine | None:
        try:
            engine = self.engine_factory(run.instance.warehouse)
        except WarehouseError as exc:
            run.status.unreachable(run.report, exc)
            return None
        with self._engines_lock:
            self._engines.append(engine)
        run.engines.append(engine)
        return engine

    def _tables_exist(self, engine: Engine, run: JobRun) -> bool:
        """False (the engine closed, one log line) when a table the config left at its default name is absent."""
        instance, job = run.instance, run.spec.name
        absent = absent_default_table(engine, instance, run.spec, self._tables_seen.setdefault(instance.name, set()))
        if absent is None:
            return True
        engine.close()
        table = absent[0]
        if (instance.name, job) not in self._skipped_logged:
            self._skipped_logged.add((instance.name, job))
            log.info("instance %s: job %s skipped, table %s (default name) does not exist; "
                     "set tables.%s to its name, or to null to silence this", instance.name, job,
                     getattr(instance.tables, table), table)
        return False

    def _run_windowed(self, run: JobRun) -> None:
        instance, spec = run.instance, run.spec
        assert spec.lanes is not None
        key = self.over.state_key(instance, spec.name)
        state = self.store.load(instance.name, key)
        now = self.clock()
        self._rewind_future_watermarks(run, state, key, now)
        run.report.watermark = state.oldest_watermark()
        plan = [(lane, self.over.windows(instance, spec, lane, state, now)) for lane in spec.lanes(instance)]
        if not any(windows for _, windows in plan):
            if run.status.warning:  # nothing due yet: the warning still goes out
                run.status.ran()
            return
        engine = self._open(run)
        if engine is not None and not self._tables_exist(engine, run):
            return
        # a lane's first run fixes where it starts, so that windows a failed first run could not
        # deliver are still due on the next run (not re-based on the next run's initial lookback)
        new_lanes = [(lane, windows) for lane, windows in plan if windows and state.lane_watermark(lane.key) is None]
        for lane, windows in new_lanes:
            state.advance(lane.key, windows[0].start)
        if new_lanes:
            self.store.save(instance.name, key, state)
            run.report.watermark = state.oldest_watermark()
        if engine is not None:
            self.windowed.run(run, engine, plan, state, key, self.over.delivered)

    def _rewind_future_watermarks(self, run: JobRun, state: JobState, key: str, now: float) -> None:
        """A lane's watermark past its latest due window means the clock was ahead when it was set (a bad NTP
        step): the windows after that due end were "delivered" before their data existed. Move the watermark
        back to the due end, so they are processed again once they are due, and say so (a warning, and
        ``can_run`` WARNING for this run) rather than go silent until the clock catches up."""
        instance, spec = run.instance, run.spec
        assert spec.lanes is not None
        width = spec.settings(instance).window
        rewound = []
        for lane in spec.lanes(instance):
            mark = state.lane_watermark(lane.key)
            due_end = math.floor((now - lane.delay) / width) * width
            if mark is not None and mark > due_end:
                state.advance(lane.key, due_end)
                rewound.append(f"{iso(mark)} back to {iso(due_end)}" + (f" (lane {lane.key})" if lane.key else ""))
        if rewound:
            message = (f"instance {instance.name}, job {spec.name}: watermark ahead of the clock (now {iso(now)}): "
                       f"the clock was ahead when the windows after it were processed; moved {', '.join(rewound)}, "
                       "those windows are processed again")
            log.warning("%s", message)
            run.status.warning = message
            self.store.save(instance.name, key, state)

    def _send_self_metrics(self, run: JobRun, started: float) -> None:
        now, report = self.clock(), run.report
        tags = make_tags(run.base_tags, f"instance:{run.instance.name}", f"job:{report.job}")
        points: list[Point] = [
            Sample("mlmon.agent.run.duration_seconds", now - started, tags, now),
            Sample("mlmon.agent.run.errors", report.errors, tags, now, MetricType.COUNT),
            Sample("mlmon.agent.windows_processed", report.windows_processed, tags, now, MetricType.COUNT),
            Sample("mlmon.agent.points_sent", report.points_sent, tags, now, MetricType.COUNT),
            Sample("mlmon.agent.points_skipped", report.points_skipped, tags, now, MetricType.COUNT),
            Sample("mlmon.agent.rows_fetched", report.rows_fetched, tags, now, MetricType.COUNT),
            Sample("mlmon.agent.series_capped", report.series_capped, tags, now, MetricType.COUNT),
        ]
        if report.watermark is not None:
            points.append(Sample("mlmon.agent.lag_seconds", max(now - report.watermark, 0.0), tags, now))
        points.extend(run.status.checks)
        try:
            self.sink.submit(points)
        except SinkError as exc:
            log.warning("instance %s: agent self-metrics not delivered: %s", run.instance.name, exc)
