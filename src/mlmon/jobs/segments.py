"""Segments (``segment_by``) for the windowed jobs that have them (``predictions``, ``quality``).

Which values of a segment column a model keeps is chosen once per UTC day, from the previous UTC day's rows:
the ``segment_top_k`` values with the most predictions (ties by value). The choice is a function of the data,
not of when the agent ran, so every run, a catch-up and a backfill agree on it, and the two jobs agree with each
other. It is kept in the job's state (``segments``, the latest days) so that the day is read once. A model with
no rows in the previous day (a new model) has no choice: after the first batch that sees it, its values are chosen
from its rows of the day up to that batch's end (:func:`choose_new`), kept for the rest of the day, and it is
sliced from the next run on. A column with more than ``segment_max_values`` distinct values for a model in that
day is refused for that model: the run says so (a problem naming the column, which fails ``mlmon.job.can_run``)
and sends no segment series for it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlmon.cardinality import MODEL_KEYS, SeriesCount, tag_keys
from mlmon.config import Instance
from mlmon.jobs.training import tag
from mlmon.jobs.windows import RunMemo, Window, model_tags
from mlmon.samples import Sample, make_tags
from mlmon.state import JobState
from mlmon.times import iso
from mlmon.warehouse.engines import Engine, QueryError
from mlmon.warehouse.predictions import GroupKey, SegmentKey
from mlmon.warehouse.segments import DAY, NULL, OTHER, ColumnChoice, DayChoice, SegmentPlan, fetch_choice

log = logging.getLogger("mlmon.jobs.segments")

#: how many days' choices a job's state keeps (a run's batches usually span one or two days; one more for a clock
#: set back)
KEPT_DAYS = 3
SEGMENT_TAG_KEYS = ("segment", "segment_value")


def day_of(t: float) -> float:
    """The start of the UTC day holding instant ``t``."""
    return math.floor(t / DAY) * DAY


@dataclass
class SegmentRun:
    """What a batch's statement needs (``plan``; None: no segments) and what choosing them cost and said."""

    plan: SegmentPlan | None
    rows_fetched: int = 0
    problems: list[str] = field(default_factory=list)


def _load(stored: Any, columns: Sequence[str]) -> dict[str, dict[str, ColumnChoice]] | None:
    """A day's stored choice, or None when it is for other columns or not of the shape saved."""
    try:
        if list(stored["columns"]) != list(columns):
            return None
        return {m: {c: ColumnChoice.from_json(v) for c, v in cols.items()} for m, cols in stored["models"].items()}
    except (KeyError, TypeError, ValueError):
        return None


def choose(
    engine: Engine, instance: Instance, job: str, settings: Any, windows: Sequence[Window], state: JobState,
    memo: RunMemo,
) -> SegmentRun:
    """The segment plan for a batch of ``windows``: each UTC day's choice, from ``state`` or read now (and kept
    there). A failed choice statement is a problem (the batch runs without segments); refused columns are told
    once a run."""
    columns = tuple(settings.segment_by)
    if not columns:
        return SegmentRun(None)
    width = windows[0].end - windows[0].start
    out = SegmentRun(None)
    days = []
    for day in sorted({day_of(w.start) for w in windows}):
        key = str(int(day))
        choice = _load(state.segments.get(key), columns)
        if choice is None:
            try:
                choice, fetched = fetch_choice(engine, instance, columns, day - DAY, day, settings.segment_top_k,
                                               instance.models)
            except QueryError as exc:
                out.problems.append(f"instance {instance.name}, job {job}, table {instance.tables.predictions}: "
                                    f"segment_by {', '.join(columns)}: {exc}; segment metrics not computed")
                return out
            out.rows_fetched += fetched
            stored = {m: {c: v.to_json() for c, v in cols.items()} for m, cols in choice.items()}
            state.segments[key] = {"columns": list(columns), "models": stored}
        kept: dict[str, dict[str, tuple[str, ...]]] = {}
        for model, by_column in sorted(choice.items()):
            for column, chosen in by_column.items():
                if chosen.distinct > settings.segment_max_values:
                    _refuse(instance, job, settings, model, column, chosen, day, memo, out)
                    continue
                kept.setdefault(column, {})[model] = chosen.values
        # the batch's windows of that day only (not the drift reference a day earlier, which is not sent)
        lo = max(round(day / width), windows[0].index)
        hi = min(round((day + DAY) / width), windows[-1].index + 1)
        days.append(DayChoice(lo, hi, kept))
    for stale in sorted(state.segments, key=float)[:-KEPT_DAYS]:
        del state.segments[stale]
    out.plan = SegmentPlan(columns, tuple(days))
    return out


def choose_new(
    engine: Engine, instance: Instance, job: str, settings: Any, windows: Sequence[Window], state: JobState,
    groups: Iterable[GroupKey], run: SegmentRun,
) -> None:
    """After a batch's statement: for the models of ``groups`` (the statement's, in the batch's windows) that had
    no rows in the UTC day before their window's day (new models), choose their values from their rows of that
    day up to the batch's end, once, and keep them in ``state`` for the rest of the day: they are sliced from the
    next run on. The rows fetched and the problems go to ``run``."""
    columns = tuple(settings.segment_by)
    if not columns:
        return
    end = windows[-1].end
    batch = range(windows[0].index, windows[-1].index + 1)
    new: dict[float, set[str]] = {}
    for model, index in {(k.model, k.window_index) for k in groups if k.window_index in batch}:
        day = day_of(index * (windows[0].end - windows[0].start))
        stored = _load(state.segments.get(str(int(day))), columns)
        if stored is not None and model not in stored:
            new.setdefault(day, set()).add(model)
    for day, models in sorted(new.items()):
        try:
            choice, n = fetch_choice(engine, instance, columns, day, min(day + DAY, end), settings.segment_top_k,
                                     sorted(models))
        except QueryError as exc:
            run.problems.append(f"instance {instance.name}, job {job}, table {instance.tables.predictions}: "
                                f"segment_by {', '.join(columns)}: {exc}; new models' segment values not chosen")
            return
        run.rows_fetched += n
        stored_models = state.segments[str(int(day))]["models"]
        for model in sorted(models):
            log.info("instance %s job %s: model %s had no rows in the UTC day before %s; its segment values are "
                     "chosen from its rows of that day up to %s and kept for the day (segment_by): sliced from the "
                     "next run on", instance.name, job, model, iso(day), iso(min(day + DAY, end)))
            stored_models[model] = {c: v.to_json() for c, v in choice.get(model, {}).items()}


def _refuse(instance: Instance, job: str, settings: Any, model: str, column: str, chosen: ColumnChoice, day: float,
            memo: RunMemo, out: SegmentRun) -> None:
    told: set[tuple[str, str]] = memo.setdefault("segments:refused", set())
    if (model, column) in told:
        return
    told.add((model, column))
    out.problems.append(
        f"instance {instance.name}, job {job}: segment column {column} has {chosen.distinct} distinct values for "
        f"model {model} in the day before {iso(day)}, more than segment_max_values ({settings.segment_max_values}); "
        f"no segment metrics for it (segment by a bounded column such as placement or device, or raise "
        f"jobs -> {job} -> segment_max_values)"
    )


def segment_tags(base: tuple[str, ...], key: SegmentKey) -> tuple[str, ...]:
    """``model``, ``model_version``, ``segment:<column>`` and ``segment_value:<value>``."""
    return make_tags(model_tags(base, key.model, key.model_version), f"segment:{key.column}",
                     tag("segment_value", key.value))


def segment_samples(prefix: str, key: SegmentKey, values: dict[str, float], base: tuple[str, ...],
                    at: float) -> list[Sample]:
    """One sample per value, named ``prefix + name``, tagged by :func:`segment_tags`."""
    tags = segment_tags(base, key)
    return [Sample(prefix + name, value, tags, at) for name, value in values.items()]


def series_counts(
    engine: Engine, instance: Instance, settings: Any, windows: Iterable[Window], versions: dict[str, int],
    metrics: Sequence[str], base: Sequence[str],
) -> tuple[list[SeriesCount], list[str]]:
    """``mlmon plan``'s segment series over ``windows``: per metric, for each model the active versions
    (``versions``: model -> count) times the distinct values it would send per column over the windows' days
    (each day's kept values from its previous day, ``__other__`` when it has more, ``__null__`` when it has
    NULL rows)."""
    columns = tuple(settings.segment_by)
    if not columns:
        return [], []
    problems = []
    sent: set[tuple[str, str, str]] = set()
    for day in sorted({day_of(w.start) for w in windows}):
        choice, _ = fetch_choice(engine, instance, columns, day - DAY, day, settings.segment_top_k, instance.models)
        for model, by_column in choice.items():
            for column, chosen in by_column.items():
                if chosen.distinct > settings.segment_max_values:
                    problems.append(f"instance {instance.name}: segment column {column} has {chosen.distinct} "
                                    f"distinct values for model {model} in the day before {iso(day)}, more than "
                                    f"segment_max_values ({settings.segment_max_values}): refused at run time")
                    continue
                values = [*chosen.values, *([OTHER] if chosen.distinct > len(chosen.values) else []),
                          *([NULL] if chosen.nulls else [])]
                sent.update((model, column, value) for value in values)
    series = sum(versions.get(model, 0) for model, _, _ in sent)
    keys = tag_keys(base, *MODEL_KEYS, *SEGMENT_TAG_KEYS)
    return [SeriesCount(name, keys, series) for name in metrics], problems
