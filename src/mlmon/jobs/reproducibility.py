"""The ``reproducibility`` job: how many online predictions the offline replays reproduce."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from mlmon.cardinality import MODEL_KEYS, Counted, FirstRun, Period, SeriesCounter, model_pairs, tag_keys
from mlmon.config import Instance
from mlmon.jobs.spec import JobSpec
from mlmon.jobs.windows import Batch, Lane, RunMemo, Window, group_outputs, no_failure_checks
from mlmon.metrics.reproducibility import Reproducibility, reproducibility
from mlmon.samples import make_tags
from mlmon.state import JobState
from mlmon.warehouse.cardinality import fetch_pairs
from mlmon.warehouse.engines import Engine, QueryError, type_kind
from mlmon.warehouse.reproducibility import fetch_reproducibility, replay_ts_type, replays_have_ts

#: every metric the job emits, per (model, model_version) and window
METRICS = tuple(f"mlmon.reproducibility.{name}" for name in Reproducibility.names())


def lanes(instance: Instance) -> list[Lane]:
    """One lane: every (configured) model, due ``replay_delay`` after the window end."""
    return [Lane("", instance.jobs.reproducibility.replay_delay, instance.models)]


failure_checks = no_failure_checks


def compute(
    engine: Engine,
    instance: Instance,
    windows: Sequence[Window],
    lane: Lane,
    state: JobState,
    base_tags: Iterable[str],
    now: float,
    memo: RunMemo,
) -> Batch:
    """Query one range of windows (predictions joined with replays) and return per-window outputs."""
    job = instance.jobs.reproducibility
    start, end = windows[0].start, windows[-1].end
    if "timed" not in memo:  # probed once a run
        memo["timed"] = replays_have_ts(engine, instance)
    result = fetch_reproducibility(engine, instance, start, end, job.window, job.atol, job.rtol, lane.include,
                                   timed=memo["timed"])
    outputs = group_outputs(windows, result.groups, make_tags(base_tags), "mlmon.reproducibility.",
                            lambda key, agg, window: reproducibility(agg).values())
    return Batch(outputs, result.rows_fetched)


def series(engine: Engine, instance: Instance, now: float, first_run: FirstRun, base: Sequence[str]) -> Counted:
    """Per (model, model_version) with valid rows in the period: the five metrics."""
    job = instance.jobs.reproducibility
    (lane,) = lanes(instance)
    windows = first_run.period(now, job, lane)
    start, end = windows[0].start, windows[-1].end
    seen = fetch_pairs(engine, instance, start, end, job.window, day_start=start, ref_start=start, ref_end=start,
                       include=lane.include)
    valid = model_pairs(seen, valid=True)  # the statement reads valid predictions only
    counter = SeriesCounter(METRICS)
    for name in METRICS:
        counter.add(name, len(valid))
    return Counted(counter.rows(lambda _: tag_keys(base, *MODEL_KEYS)), periods=[Period(start, end, len(windows))])


def check_replay_times(engine: Engine, instance: Instance, now: float, say: Callable[[str], object]) -> list[str]:
    """``mlmon check``: without ``replays.ts`` every run reads the whole replays table (a warning); a
    ``ts`` that is named but missing, or not a timestamp, is a problem."""
    table, column = instance.tables.replays, instance.column("replays", "ts")
    named = "ts" in instance.columns.get("replays", {})
    try:
        type_name = replay_ts_type(engine, instance)
    except QueryError as exc:
        if named:
            return [f"instance {instance.name}, table {table} (job reproducibility): columns -> replays -> ts names "
                    f"{column}: {exc}"]
        say(f"WARNING instance {instance.name}: table {table} has no column ts (when the replayed request was "
            "served), so every reproducibility run reads the whole table, whatever its windows; add one, or name "
            "yours with columns: {replays: {ts: <column>}}")
        return []
    if type_kind(type_name) not in ("timestamp", "unknown"):
        return [f"instance {instance.name}, table {table} (job reproducibility): {table}.{column} is "
                f"{type_name.upper()}; expected TIMESTAMP"]
    say(f"instance {instance.name}: table {table} has column {column}: each run reads only the replays of its "
        "windows")
    return []


def rows_covered(values: Mapping[str, float]) -> float:
    """The valid predictions: ``checked_count + missing_count``."""
    if "mlmon.reproducibility.checked_count" not in values:
        return 0.0
    return values["mlmon.reproducibility.checked_count"] + values.get("mlmon.reproducibility.missing_count", 0.0)


SPEC = JobSpec(
    name="reproducibility", tables=("predictions", "replays"), metrics=METRICS, series=series, window=compute,
    lanes=lanes, delay_setting="replay_delay", rows_covered=rows_covered, check=check_replay_times,
)
