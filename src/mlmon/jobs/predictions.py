"""The ``predictions`` job: descriptive statistics, same-value ratio and drift per window."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from mlmon.cardinality import (
    DAY,
    MODEL_KEYS,
    Counted,
    FirstRun,
    Period,
    SeriesCount,
    SeriesCounter,
    model_pairs,
    tag_keys,
)
from mlmon.config import Instance
from mlmon.config.jobs import TRAINING_REFERENCE
from mlmon.jobs.drift import History, resolve
from mlmon.jobs.segments import choose, choose_new, segment_samples, series_counts
from mlmon.jobs.spec import JobSpec, table_exists
from mlmon.jobs.windows import Batch, Lane, RunMemo, Window, WindowOutput, model_tags
from mlmon.metrics.descriptive import (
    PredictionAggregate,
    PredictionStats,
    SegmentPredictionStats,
    describe,
    describe_segment,
)
from mlmon.metrics.drift import DRIFT_METRICS, DriftSample, drift_values
from mlmon.samples import CheckStatus, Sample, ServiceCheck, make_tags
from mlmon.state import MODEL_MEMORY, JobState
from mlmon.times import iso
from mlmon.warehouse.cardinality import VersionSeen, fetch_pairs
from mlmon.warehouse.engines import Engine, OutOfMemory, QueryError
from mlmon.warehouse.predictions import GroupKey, fetch_prediction_aggregates
from mlmon.warehouse.validation import fetch_validation

log = logging.getLogger("mlmon.jobs.predictions")

AVAILABLE_CHECK = "mlmon.predictions.available"
#: how long a drift comparison's sides are (``drift_max_pool``: a window short of ``drift_min_rows`` pools the
#: windows before it)
DRIFT_SPAN = "mlmon.prediction.drift_span"
#: every metric the job emits, per (model, model_version) and window; ``count`` also for expected but silent models
METRICS = (*(f"mlmon.prediction.{name}" for name in (*PredictionStats.names(), *DRIFT_METRICS)), DRIFT_SPAN)
#: tagged ``drift_reference`` too: the entry of the config's list each point was compared with
DRIFT_SERIES = (*(f"mlmon.prediction.{name}" for name in DRIFT_METRICS), DRIFT_SPAN)
DRIFT_TAGS = ("drift_reference",)
SEGMENT_PREFIX = "mlmon.segment.prediction."
#: per (model, model_version, window, segment column, value), with ``segment_by``
SEGMENT_METRICS = tuple(SEGMENT_PREFIX + name for name in SegmentPredictionStats.names())


def _expected_models(
    window: Window, seen: dict[str, set[int]], state: JobState, configured: Sequence[str], day_windows: int
) -> set[str]:
    """Models that should have rows in ``window``: configured, or seen within the day before it."""
    expected = set(configured)
    for model, indexes in seen.items():
        if any(window.index - day_windows <= i < window.index for i in indexes):
            expected.add(model)
    for model, info in state.models.items():
        if info.get("last_seen") is not None and info["last_seen"] >= window.start - day_windows * (
            window.end - window.start
        ):
            expected.add(model)
    return expected


def lanes(instance: Instance) -> list[Lane]:
    """One lane: every (configured) model, due ``lateness`` after the window end."""
    return [Lane("", instance.jobs.predictions.lateness, instance.models)]


def failure_checks(
    instance: Instance, state: JobState, base_tags: Iterable[str], message: str, now: float
) -> list[ServiceCheck]:
    """A failed query makes every known model's availability CRITICAL, with the reason."""
    models = sorted(set(instance.models) | set(state.models))
    return [ServiceCheck(AVAILABLE_CHECK, CheckStatus.CRITICAL, make_tags(base_tags, f"model:{m}"), now, message)
            for m in models]


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
    """Query one contiguous range of windows and return per-window outputs and rows fetched.

    The statement reads the windows and their first drift reference, less the references this run read
    already (a catch-up longer than the reference): those come from ``memo``'s :class:`~mlmon.jobs.drift.History`,
    which keeps every group read for as long as a later window may pool it or refer to it. What the comparisons
    need beyond that (pooled windows before the range, later references, validation predictions) is read by
    :func:`~mlmon.jobs.drift.resolve`, for the models that need it.
    """
    job = instance.jobs.predictions
    width = job.window
    start, end = windows[0].start, windows[-1].end
    base = make_tags(base_tags)
    day_windows = round(MODEL_MEMORY / width)
    history: History = memo.setdefault(f"history:{lane.key}", History())
    offsets = [round(r / width) for r in job.drift_offsets]
    # the statement reads the windows one reference earlier too: the first, or with a state that knows no model
    # yet (a first run) the nearest, whose models are those expected in the windows (seen the day before)
    first = (offsets[0] if state.models else min(offsets)) if offsets else 0
    references = range(windows[0].index - first, windows[-1].index + 1 - first) if offsets else range(0)
    unread = [i for i in references if i not in history.complete]
    # an empty reference range is the windows' own: nothing more is read
    ref_start, ref_end = ((unread[0] * width, (unread[-1] + 1) * width) if unread else (start, end))
    segments = choose(engine, instance, "predictions", job, windows, state, memo)
    result = fetch_prediction_aggregates(engine, instance, start, end, ref_start, ref_end, width, lane.include,
                                         segments.plan)
    choose_new(engine, instance, "predictions", job, windows, state, result.groups, segments)
    history.record(_by_tuple(result.groups), [*range(windows[0].index, windows[-1].index + 1),
                                              *range(round(ref_start / width), round(ref_end / width))])

    by_window: dict[int, dict[GroupKey, PredictionAggregate]] = defaultdict(dict)
    seen: dict[str, set[int]] = defaultdict(set)
    for key, agg in result.groups.items():
        by_window[key.window_index][key] = agg
        seen[key.model].add(key.window_index)
    keys = set(result.groups)
    for index in references:  # what the statement would have read, had it read these references again
        for model, version in history.groups.get(index, {}):
            keys.add(GroupKey(model, version, index))
            seen[model].add(index)

    fetched = result.rows_fetched + segments.rows_fetched
    problems = list(segments.problems)

    def fetch(first: tuple[int, int], second: tuple[int, int], models: Sequence[str]) -> dict[tuple[str, str, int],
                                                                                              PredictionAggregate]:
        """The windows of two index ranges; over the engine's memory, each range alone, then by halves."""
        nonlocal fetched
        try:
            more = fetch_prediction_aggregates(engine, instance, first[0] * width, first[1] * width,
                                               second[0] * width, second[1] * width, width, models)
        except OutOfMemory:
            if first != second:
                return {**fetch(first, first, models), **fetch(second, second, models)}
            a, b = first
            if b - a == 1:
                raise
            return {**fetch((a, (a + b) // 2), (a, (a + b) // 2), models),
                    **fetch(((a + b) // 2, b), ((a + b) // 2, b), models)}
        fetched += more.rows_fetched
        return _by_tuple(more.groups)

    def read(runs: Sequence[tuple[int, int]], models: Sequence[str]) -> dict[tuple[str, str, int], PredictionAggregate]:
        out: dict[tuple[str, str, int], PredictionAggregate] = {}
        for pair in (runs[i:i + 2] for i in range(0, len(runs), 2)):  # the statement reads two ranges
            out.update(fetch(pair[0], pair[-1], models))
        return out

    def read_validation(pairs: Sequence[tuple[str, str]]) -> Mapping[tuple[str, str], DriftSample]:
        nonlocal fetched
        table = instance.tables.validation_predictions
        if table is None or memo.get("validation_absent"):
            return {}
        try:
            samples, n = fetch_validation(engine, instance, pairs)
        except QueryError as exc:
            if instance.tables.explicit("validation_predictions") or table_exists(engine, table):
                problems.append(f"instance {instance.name}, table {table}: {exc}; the training drift reference "
                                "not used")
            else:  # optional: left at its default name and absent, the entry is skipped
                log.debug("instance %s: table %s (default name) not found; the training drift reference is "
                          "skipped", instance.name, table)
            memo["validation_absent"] = True
            return {}
        fetched += n
        return samples

    wanted = [(k.model, k.model_version, k.window_index) for k, agg in result.groups.items()
              if windows[0].index <= k.window_index <= windows[-1].index and agg.valid_count > 0]
    comparisons = resolve(job, width, history, sorted(wanted), read, read_validation)
    pool = max(1, round(job.drift_max_pool / width))
    history.forget_before(windows[-1].index + 2 - pool - max(offsets, default=0))

    outputs = []
    table = instance.tables.predictions
    for window in windows:
        out = WindowOutput(window)
        groups = by_window.get(window.index, {})
        present = {key.model for key in groups}
        for key, agg in sorted(groups.items(), key=lambda kv: (kv[0].model, kv[0].model_version)):
            tags = model_tags(base, key.model, key.model_version)
            for name, stat in describe(agg).values().items():
                out.samples.append(Sample(f"mlmon.prediction.{name}", stat, tags, window.end))
            comparison = comparisons.get((key.model, key.model_version, window.index))
            if comparison is not None:
                drift_tags = make_tags(tags, f"drift_reference:{comparison.label}")
                for name, value in drift_values(comparison.baseline, comparison.current).items():
                    if value is not None:
                        out.samples.append(Sample(f"mlmon.prediction.{name}", value, drift_tags, window.end))
                out.samples.append(Sample(DRIFT_SPAN, comparison.windows * width, drift_tags, window.end))
            out.models[key.model] = key.model_version
        for skey, sagg in sorted(s for s in result.segments.items() if s[0].window_index == window.index):
            out.samples.extend(segment_samples(SEGMENT_PREFIX, skey, describe_segment(sagg).values(), base,
                                               window.end))
        expected = _expected_models(window, seen, state, instance.models, day_windows)
        for model in sorted(expected | present):
            check_tags = make_tags(base, f"model:{model}")
            if model in present:
                out.checks.append(ServiceCheck(AVAILABLE_CHECK, CheckStatus.OK, check_tags, window.end))
                continue
            version = (
                _last_version(keys, model, windows[0].index, window.index)
                or state.models.get(model, {}).get("version")
                or _last_version(keys, model)
            )
            tags = make_tags(check_tags, f"model_version:{version}" if version else ())
            out.samples.append(Sample("mlmon.prediction.count", 0.0, tags, window.end))
            message = (
                f"instance {instance.name}: no rows in table {table} for model {model} "
                f"in window ending {iso(window.end)}"
            )
            out.checks.append(ServiceCheck(AVAILABLE_CHECK, CheckStatus.CRITICAL, check_tags, window.end, message))
        outputs.append(out)
    return Batch(outputs, fetched, problems)


def _by_tuple(groups: Mapping[GroupKey, PredictionAggregate]) -> dict[tuple[str, str, int], PredictionAggregate]:
    return {(k.model, k.model_version, k.window_index): agg for k, agg in groups.items()}


def _last_version(
    groups: Iterable[GroupKey], model: str, first: float = -math.inf, before: float = math.inf
) -> str:
    """The version ``model`` served in its latest window of ``groups`` in ``[first, before)`` ("" if none).

    For a silent window: its batch's windows before it come first, because the state's version is as of
    the batch's start, and a catch-up, a resumed backfill and a clean run cut batches differently.
    """
    keys = [k for k in groups if k.model == model and first <= k.window_index < before]
    return max(keys, key=lambda k: (k.window_index, k.model_version)).model_version if keys else ""


def series(engine: Engine, instance: Instance, now: float, first_run: FirstRun, base: Sequence[str]) -> Counted:
    """Per (model, model_version) with rows in the period: ``count``, ``invalid_count``; with valid rows the
    other statistics; the drift metrics when the model also has valid rows in the range of the nearest drift
    reference (or the references are ``training`` only). Plus one ``count`` series for each expected model
    (configured, or with rows in the day before the period's end) silent in some window of the period, tagged
    with the version of its latest row."""
    job = instance.jobs.predictions
    (lane,) = lanes(instance)
    windows = first_run.period(now, job, lane)
    start, end = windows[0].start, windows[-1].end
    # a model is counted as compared when it has rows one nearest offset back (a week-old one has a day-old one)
    offset = min(job.drift_offsets, default=0.0)
    seen = fetch_pairs(engine, instance, start, end, job.window, day_start=start - DAY,
                       ref_start=start - offset, ref_end=end - offset, include=lane.include)
    active, valid = model_pairs(seen, valid=False), model_pairs(seen, valid=True)
    referenced = {s.model for s in seen if s.model_referenced or not job.drift_offsets}
    by_model: dict[str, list[VersionSeen]] = defaultdict(list)
    for s in seen:
        by_model[s.model].append(s)
    expected = set(instance.models) | {s.model for s in seen if s.last_seen is not None}
    counted = set(active)
    for model in expected:
        mine = by_model.get(model, [])
        if mine and mine[0].model_windows >= len(windows):
            continue  # rows in every window: never reported silent
        dated = [s for s in mine if s.last_seen is not None]
        latest = max(dated, key=lambda s: (s.last_seen or 0.0, s.model_version)).model_version if dated else ""
        counted.add((model, latest))
    counter = SeriesCounter(METRICS)
    for name in METRICS:
        if name == "mlmon.prediction.count":
            counter.add(name, len(counted))
        elif name == "mlmon.prediction.invalid_count":
            counter.add(name, len(active))
        elif name in DRIFT_SERIES:
            counter.add(name, sum(1 for model, _ in valid if model in referenced))
        else:
            counter.add(name, len(valid))
    available = len(expected | {m for m, _ in active})
    versions: dict[str, int] = defaultdict(int)
    for model, _ in active:
        versions[model] += 1
    segment_rows, problems = series_counts(engine, instance, job, windows, versions, SEGMENT_METRICS, base)
    return Counted(
        counter.rows(lambda name: tag_keys(base, *MODEL_KEYS, *(DRIFT_TAGS if name in DRIFT_SERIES else ())))
        + segment_rows,
        [SeriesCount(AVAILABLE_CHECK, tag_keys(base, "model"), available)],
        [Period(start, end, len(windows))],
        problems,
    )


def rows_covered(values: Mapping[str, float]) -> float:
    """Every row of the window: ``mlmon.prediction.count``."""
    return values.get("mlmon.prediction.count", 0.0)


def _columns(instance: Instance) -> dict[str, tuple[str, ...]]:
    """The segment columns, of the prediction log."""
    return {"predictions": instance.jobs.predictions.segment_by} if instance.jobs.predictions.segment_by else {}


def _validation_table(instance: Instance) -> tuple[str, ...]:
    """``validation_predictions`` when ``training`` is a drift reference (optional: absent, the entry is skipped)."""
    wanted = TRAINING_REFERENCE in instance.jobs.predictions.drift_reference
    return ("validation_predictions",) if wanted and instance.tables.validation_predictions else ()


SPEC = JobSpec(
    name="predictions", tables=("predictions",), metrics=(*METRICS, *SEGMENT_METRICS), series=series,
    window=compute, lanes=lanes, delay_setting="lateness", failure_checks=failure_checks, rows_covered=rows_covered,
    columns=_columns, extra_tables=_validation_table,
)
