"""One job run against an open engine: a windowed job's ranges (with the out-of-memory halving), or a
snapshot job's statements; what comes out goes to :class:`~mlmon.delivery.Delivery` or the sink.

A statement that runs out of the engine's memory is run again over half its windows (and so is the
rest of the run), down to one window. A failed statement leaves its lane pending and fails
``mlmon.job.can_run`` with the message; the next lane may still read other models.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mlmon.config import Instance
from mlmon.delivery import MAX_POINTS_PER_SUBMIT, Delivery, cap_series
from mlmon.jobs.spec import JobSpec
from mlmon.jobs.windows import Lane, RunMemo, Window, WindowOutput
from mlmon.reports import JobReport, JobStatus, record_error
from mlmon.sinks.base import Sink, SinkError
from mlmon.state import JobState
from mlmon.warehouse.engines import Engine, OutOfMemory, QueryError, QueryTimeout, WarehouseError

log = logging.getLogger("mlmon.runner")


@dataclass
class JobRun:
    """One run of one job of one instance: what it reads from and where its results go."""

    instance: Instance
    spec: JobSpec
    report: JobReport
    status: JobStatus
    base_tags: Sequence[str]
    clock: Callable[[], float]
    stop: threading.Event
    #: the engines opened for it (what :meth:`mlmon.runner.Agent.interrupt` reaches)
    engines: list[Engine] = field(default_factory=list)


class WindowedRun:
    """Runs a windowed job's planned lanes in statements of ``max_windows_per_query`` windows."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self._warned_memory: set[tuple[str, str]] = set()

    def run(self, run: JobRun, engine: Engine, plan: Sequence[tuple[Lane, list[Window]]], state: JobState,
            state_key: str, delivered: Callable[[JobReport, Sequence[WindowOutput]], None]) -> None:
        """Every lane of ``plan`` in order; the engine is closed on the way out."""
        spec, instance, report = run.spec, run.instance, run.report
        assert spec.window is not None
        cfg = spec.settings(instance)
        failure = ""
        queried = False
        memo: RunMemo = {}
        try:
            for lane, windows in plan:
                size, done = cfg.max_windows_per_query, 0
                while done < len(windows):
                    if run.stop.is_set():
                        return
                    windows_here = windows[done : done + size]
                    try:
                        batch = spec.window(engine, instance, windows_here, lane, state, run.base_tags, run.clock(),
                                            memo)
                    except WarehouseError as exc:
                        run.status.unreachable(report, exc)
                        return
                    except QueryError as exc:
                        if isinstance(exc, OutOfMemory) and len(windows_here) > 1:
                            # the same windows again, and the rest of the run, in statements half as big
                            size = len(windows_here) // 2
                            self._memory_warning(instance, spec.name, len(windows_here))
                            continue
                        message = spec.failure(instance, exc)
                        if isinstance(exc, QueryTimeout) and len(windows_here) > 1:
                            message += (f" (a statement over {len(windows_here)} windows: a smaller jobs -> "
                                        f"{spec.name} -> max_windows_per_query, or a longer query_timeout, lets a "
                                        "catch-up through)")
                        record_error(report, message)
                        run.status.connected()
                        run.status.checks.extend(spec.failure_checks(instance, state, run.base_tags, message,
                                                                     run.clock()))
                        failure = failure or message
                        break  # this lane stays pending; the next lane may read other models
                    queried = True
                    report.rows_fetched += batch.rows_fetched
                    for problem in batch.problems:  # a part failed (e.g. the offline metrics' table)
                        record_error(report, problem)
                        failure = failure or problem
                    run.status.connected()
                    done += len(windows_here)
                    if not self.delivery.deliver(instance, state_key, cfg.timestamp_policy, batch.outputs, lane,
                                                 state, report, delivered):
                        break
        finally:
            report.watermark = state.oldest_watermark()
            engine.close()
            if failure or queried:
                run.status.ran(failure)

    def _memory_warning(self, instance: Instance, job: str, windows: int) -> None:
        if (instance.name, job) not in self._warned_memory:
            self._warned_memory.add((instance.name, job))
            log.warning(
                "instance %s job %s: a statement over %d windows ran out of the engine's memory; running it "
                "again over fewer windows at a time (a bigger warehouse memory_limit or a smaller "
                "max_windows_per_query avoids the retry)", instance.name, job, windows,
            )


def run_snapshot(run: JobRun, engine: Engine, sink: Sink, series_cap: int) -> None:
    """A snapshot job's statements, its samples sent stamped at send time; the engine is closed."""
    spec, instance, report = run.spec, run.instance, run.report
    assert spec.snapshot is not None
    try:
        snapshot = spec.snapshot(engine, instance, run.base_tags, run.clock())
    except WarehouseError as exc:
        run.status.unreachable(report, exc)
        return
    except QueryError as exc:
        message = spec.failure(instance, exc)
        record_error(report, message)
        run.status.connected()
        run.status.ran(message)
        return
    finally:
        engine.close()
    run.status.connected()
    # a failed part (the feature breakdown) fails the check; what could be read is still sent
    run.status.ran(snapshot.problems[0] if snapshot.problems else "")
    report.rows_fetched += snapshot.rows_fetched
    for problem in snapshot.problems:
        record_error(report, problem)
    # snapshots are stamped at send time: nothing to skip, nothing pending if refused
    samples = cap_series(snapshot.samples, report, series_cap)
    try:
        for i in range(0, len(samples), MAX_POINTS_PER_SUBMIT):
            sink.submit(samples[i : i + MAX_POINTS_PER_SUBMIT])
    except SinkError as exc:
        record_error(report, f"instance {instance.name} job {spec.name}: {exc}; the next run sends a new snapshot")
        return
    report.points_sent += len(samples)
    report.snapshot = samples
