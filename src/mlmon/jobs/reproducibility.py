"""The ``reproducibility`` job: how many online predictions the offline replays reproduce."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mlmon.config import Instance
from mlmon.jobs.windows import Batch, Lane, Window, group_outputs, no_failure_checks
from mlmon.metrics.reproducibility import reproducibility
from mlmon.samples import make_tags
from mlmon.state import JobState
from mlmon.warehouse.engines import Engine
from mlmon.warehouse.online import fetch_reproducibility

#: every metric the job emits, per (model, model_version) and window
METRICS = tuple(f"mlmon.reproducibility.{name}" for name in (
    "rate", "checked_count", "missing_count", "mean_abs_diff", "max_abs_diff",
))


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
) -> Batch:
    """Query one range of windows (predictions joined with replays) and return per-window outputs."""
    job = instance.jobs.reproducibility
    start, end = windows[0].start, windows[-1].end
    result = fetch_reproducibility(engine, instance, start, end, job.window, job.atol, job.rtol, lane.include)
    outputs = group_outputs(windows, result.groups, make_tags(base_tags), "mlmon.reproducibility.",
                            lambda key, agg, window: reproducibility(agg).values())
    return Batch(outputs, result.rows_fetched)
