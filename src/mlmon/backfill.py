"""``mlmon backfill``: a historical range through the live agent's code, resumable, with progress.

Shared with ``mlmon run``: the jobs' ``compute``, the runner's delivery (a window is acknowledged,
its watermark advanced and saved, only once the sink accepted every point of it) and the sinks.
:class:`Backfill` changes only the runner's hooks:

* **Range.** Per job, the windows that lie fully inside ``[start, end)``, aligned to UTC multiples of
  the job's width: the first starts at or after ``start``, the last ends at or before ``end``. A
  window not due yet (its end plus ``lateness``, ``label_delay`` or ``replay_delay`` is after now)
  is left out, with a message saying where the range was cut.
* **State.** A watermark per (instance, job, lane) and range, kept by the state store under
  :func:`state_key` (``<job>.backfill-<start>-<end>``, the job's aligned range) beside the live
  job's file, which a backfill never reads or writes. The same command again continues after the
  last acknowledged window; once the range is complete it sends nothing and says so. Another range
  is another key: it starts from its own beginning, and windows it shares with an earlier backfill
  are sent again, with the same values (a gauge keeps one value per timestamp).
* **Timestamps.** Every point keeps its window end. A sink with an ingestion horizon (the API or
  DogStatsD without ``historical_ingestion``) is refused (:func:`refusal`): Datadog would drop the
  old points, and re-stamping them at send time would pile every window onto one timestamp.
* **What is sent.** Window metrics only. Service checks and the agent's self-metrics describe the
  live agent: a week-old CRITICAL, or a lag of a week, would page through the shipped monitors.
* **Rows** (progress and summary) are the prediction rows the delivered windows cover, from the
  counts the jobs compute anyway (:func:`window_rows`); no query is added for them.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from mlmon.config import Config, DatadogConfig, Instance
from mlmon.jobs import WINDOW_JOBS, JobSpec
from mlmon.jobs.windows import Lane, Window, WindowOutput
from mlmon.runner import Agent, JobReport
from mlmon.sinks.base import Sink
from mlmon.state import JobState, StateStore
from mlmon.times import compact, iso
from mlmon.warehouse.engines import Engine, open_engine

#: the setting that lets a backfill send through Datadog, as config errors name paths
HISTORICAL_SETTING = "init_config -> datadog -> historical_ingestion"
#: the delay after which each job's window is due, by the name the config gives it


class BackfillRefused(Exception):
    """The sink would drop, or collapse onto one timestamp, windows older than its horizon."""


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def state_key(job: str, start: float, end: float) -> str:
    """The state store key of a backfill of ``job`` over its aligned range ``[start, end)``."""
    return f"{job}.backfill-{compact(start)}-{compact(end)}"


def refusal(datadog: DatadogConfig) -> str | None:
    """Why the configured transport cannot take a backfill, or ``None`` if it can."""
    if datadog.transport == "jsonl" or datadog.historical_ingestion:
        return None
    return (
        "backfill keeps every point at its window end, and Datadog drops points older than about an hour "
        "unless Historical Metrics Ingestion is enabled (re-stamping them at send time would pile every "
        "window onto one timestamp). Enable Historical Metrics Ingestion for the mlmon.* metrics in "
        f"Datadog, then set {HISTORICAL_SETTING}: true (or use transport: jsonl for a dry run)"
    )


@dataclass(frozen=True)
class LaneRange:
    """The windows of one lane of a job's range still to deliver."""

    lane: Lane
    windows: tuple[Window, ...]
    #: windows of the range an earlier run of the same backfill delivered
    delivered_before: int
    #: end of the last window of the range that is due now (the range's end unless capped)
    due_end: float


@dataclass(frozen=True)
class RangePlan:
    """One (instance, job) of a backfill: its aligned range and what is left of it."""

    instance: Instance
    job: str
    start: float
    end: float
    lanes: tuple[LaneRange, ...]

    @property
    def key(self) -> str:
        """Where its watermarks are kept (see :func:`state_key`)."""
        return state_key(self.job, self.start, self.end)

    @property
    def pending(self) -> int:
        """Windows to deliver now."""
        return sum(len(lane.windows) for lane in self.lanes)

    @property
    def complete(self) -> bool:
        """Whether an earlier run delivered every window of the range."""
        width = getattr(self.instance.jobs, self.job).window
        return all(lane.delivered_before == round((self.end - self.start) / width) for lane in self.lanes)

    @property
    def capped(self) -> float | None:
        """The earliest lane end before the range's end (windows after it were not due), if any."""
        ends = [lane.due_end for lane in self.lanes if lane.due_end < self.end]
        return min(ends) if ends else None


def _delay(job: str, lane: Lane) -> str:
    """How the config names ``lane``'s delay, with its value."""
    if not lane.key:
        return f"{_duration(lane.delay)} ({WINDOW_JOBS[job].delay_setting})"
    return f"{_duration(lane.delay)} (label_delay_by_model: {', '.join(lane.include)})"


def plan_ranges(
    config: Config, store: StateStore, start: float, end: float, now: float,
    jobs: Sequence[str] = tuple(WINDOW_JOBS), instances: Sequence[str] = (),
) -> tuple[list[RangePlan], list[str]]:
    """Per (instance, job) to backfill: its aligned range and the windows still to deliver; plus notes
    for the person running it (jobs skipped, ranges cut at what is due).

    Raises ``ValueError`` for an unreadable state file.
    """
    plans: list[RangePlan] = []
    notes: list[str] = []
    for instance in config.instances:
        if instances and instance.name not in instances:
            continue
        for job, spec in ((j, s) for j, s in WINDOW_JOBS.items() if j in jobs):
            settings = spec.settings(instance)
            runs, why = spec.runnable(instance)
            if not runs:
                why = "disabled in the config" if why == "enabled: false" else why
                notes.append(f"instance {instance.name}: job {job} skipped ({why})")
                continue
            width = settings.window
            first, last = math.ceil(start / width) * width, math.floor(end / width) * width
            if last <= first:
                notes.append(f"instance {instance.name}: job {job}: no complete {_duration(width)} window "
                             f"between {iso(start)} and {iso(end)}")
                continue
            state = store.load(instance.name, state_key(job, first, last))
            lanes = []
            for lane in spec.lanes(instance) if spec.lanes else ():
                due = max(min(last, math.floor((now - lane.delay) / width) * width), first)
                mark = state.lane_watermark(lane.key)
                begin = first if mark is None else min(max(mark, first), last)
                count = max(round((due - begin) / width), 0)
                windows = tuple(Window(begin + i * width, begin + (i + 1) * width) for i in range(count))
                if due < last:
                    cut = (f"--end capped to {iso(due)}" if due > first
                           else "none of the range is due yet")
                    notes.append(f"instance {instance.name}: job {job}: windows are due {_delay(job, lane)} after "
                                 f"their end: {cut}; run the same command later for the rest")
                lanes.append(LaneRange(lane, windows, round((begin - first) / width), due))
            plans.append(RangePlan(instance, job, first, last, tuple(lanes)))
    return plans, notes


def window_rows(output: WindowOutput, spec: JobSpec) -> int:
    """Prediction rows one delivered window covers, from the counts its job computed (per series, the
    job's :attr:`~mlmon.jobs.spec.JobSpec.rows_covered`)."""
    series: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    for sample in output.samples:
        series[sample.tags][sample.name] = sample.value
    covered = spec.rows_covered
    return round(sum(covered(values) for values in series.values())) if covered else 0


class Progress(Protocol):
    """Told about every batch of windows the sink accepted."""

    def advance(self, windows: int, rows: int) -> None:
        """``windows`` more delivered, covering ``rows`` prediction rows."""
        ...


class LineProgress:
    """Plain lines for logs (stderr not a terminal): one at each tenth of the windows, and one at least
    every ``every`` seconds, so a week of windows prints about ten lines, not a thousand."""

    def __init__(
        self, stream: IO[str], total: int, every: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream, self.total, self.every, self.clock = stream, total, every, clock
        self.windows = self.rows = 0
        self.started = self.last = clock()
        self._tenth = 0

    def advance(self, windows: int, rows: int) -> None:
        self.windows += windows
        self.rows += rows
        tenth = self.windows * 10 // max(self.total, 1)
        if tenth > self._tenth or self.clock() - self.last >= self.every:
            self._tenth = tenth
            self._line()

    def _line(self) -> None:
        self.last = self.clock()
        elapsed = self.last - self.started
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        share = self.windows / self.total if self.total else 1.0
        print(f"backfill: {self.windows:,}/{self.total:,} windows ({share:.0%}), {self.rows:,} rows, "
              f"{rate:,.0f} rows/s, {elapsed:.0f}s elapsed", file=self.stream, flush=True)


class BarProgress:
    """A tqdm bar on a terminal: windows done / total, their rate and ETA, rows and rows/s."""

    def __init__(self, stream: IO[str], total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, file=stream, unit="window", desc="backfill", dynamic_ncols=True)
        self.rows = 0
        self.started = time.monotonic()

    def advance(self, windows: int, rows: int) -> None:
        self.rows += rows
        elapsed = time.monotonic() - self.started
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        self.bar.set_postfix_str(f"{self.rows:,} rows, {rate:,.0f} rows/s", refresh=False)
        self.bar.update(windows)


@contextlib.contextmanager
def progress_on(stream: IO[str], total: int) -> Iterator[Progress]:
    """A bar when ``stream`` is a terminal (log lines go above it), plain lines otherwise."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        yield LineProgress(stream, total)
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    bar = BarProgress(stream, total)
    try:
        with logging_redirect_tqdm():
            yield bar
    finally:
        bar.bar.close()


@dataclass
class JobResult:
    """What a backfill did for one (instance, job)."""

    plan: RangePlan
    report: JobReport | None = None  # None: not run (nothing pending, or stopped before it)
    rows: int = 0
    elapsed: float = 0.0

    @property
    def pending(self) -> int:
        """Windows of the range that are due and still not delivered."""
        return self.plan.pending - (self.report.windows_processed if self.report else 0)


class BackfillRange:
    """The planned ranges: backfill watermarks, the planned windows, window metrics only (no service checks
    or self-metrics: they describe the live agent, and a week-old CRITICAL would page)."""

    sends_status = False

    def __init__(self, plans: Iterable[RangePlan], progress: Progress | None) -> None:
        self._by_job = {(p.instance.name, p.job): p for p in plans}
        self.progress = progress
        self.rows: dict[tuple[str, str], int] = defaultdict(int)

    def state_key(self, instance: Instance, job: str) -> str:
        return self._by_job[(instance.name, job)].key

    def windows(self, instance: Instance, spec: JobSpec, lane: Lane, state: JobState, now: float) -> list[Window]:
        # the plan's windows: the progress bar's total, and the cut at what was due when it was made
        plan = self._by_job[(instance.name, spec.name)]
        return next((list(p.windows) for p in plan.lanes if p.lane.key == lane.key), [])

    def delivered(self, report: JobReport, outputs: Sequence[WindowOutput]) -> None:
        rows = sum(window_rows(out, WINDOW_JOBS[report.job]) for out in outputs)
        self.rows[(report.instance, report.job)] += rows
        del report.outputs[:]  # counted; a long range would otherwise hold every window in memory
        if self.progress is not None:
            self.progress.advance(len(outputs), rows)


class Backfill:
    """The agent over planned ranges (:class:`BackfillRange`)."""

    def __init__(
        self, config: Config, sink: Sink, plans: Iterable[RangePlan], *, progress: Progress | None = None,
        clock: Callable[[], float] = time.time, engine_factory: Callable[..., Engine] = open_engine,
        store: StateStore | None = None,
    ) -> None:
        if sink.horizon is not None:
            raise BackfillRefused(refusal(config.init_config.datadog) or "the sink has an ingestion horizon")
        self.plans = list(plans)
        self.range = BackfillRange(self.plans, progress)
        self.agent = Agent(config, sink, clock=clock, engine_factory=engine_factory, store=store, over=self.range)
        #: set to stop at the next safe point (SIGTERM/SIGINT)
        self.stop = self.agent.stop

    def run(self) -> list[JobResult]:
        """Every planned (instance, job) in turn, until done or stopped; never raises for a data or sink
        problem (those are in the reports)."""
        results = []
        for plan in self.plans:
            result = JobResult(plan)
            results.append(result)
            if not plan.pending or self.stop.is_set():
                continue
            started = time.monotonic()
            result.report = self.agent.run_job(plan.instance, plan.job)
            result.elapsed = time.monotonic() - started
            result.rows = self.range.rows[(plan.instance.name, plan.job)]
        return results


def format_summary(results: Sequence[JobResult], stopped: bool) -> str:
    """Per (instance, job): windows delivered, points, rows, errors, elapsed and what is left."""
    header = (f"{'instance':<12} {'job':<16} {'windows':>8} {'points':>10} {'rows':>12} {'errors':>6} "
              f"{'elapsed':>8}  state")
    lines = [header, "-" * len(header)]
    errors: list[str] = []
    for r in results:
        report = r.report or JobReport(r.plan.instance.name, r.plan.job)
        if r.plan.complete:
            state = "already complete"
        elif r.pending:
            state = f"{r.pending:,} window(s) pending"
        elif r.plan.capped is not None:
            state = f"done up to {iso(r.plan.capped)} (later windows not due yet)"
        else:
            state = "complete"
        lines.append(f"{report.instance:<12} {report.job:<16} {report.windows_processed:>8,} "
                     f"{report.points_sent:>10,} {r.rows:>12,} {report.errors:>6} {r.elapsed:>7.1f}s  {state}")
        errors.extend(f"  error: {message}" for message in report.messages)
    lines.extend(errors)
    windows = sum(r.report.windows_processed for r in results if r.report)
    points = sum(r.report.points_sent for r in results if r.report)
    outcome = f"{windows:,} window(s), {points:,} points, {sum(r.rows for r in results):,} rows delivered"
    pending = sum(r.pending for r in results)
    if pending:
        why = "stopped" if stopped else f"{sum(r.report.errors for r in results if r.report)} error(s)"
        outcome += f"; {why}: {pending:,} window(s) pending, run the same command again to continue"
    lines.append(outcome)
    return "\n".join(lines)
