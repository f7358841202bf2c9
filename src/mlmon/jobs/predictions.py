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
from mlmon.jobs.segments import choose, choose_new, segment_samples, series_counts
from mlmon.jobs.spec import JobSpec
from mlmon.jobs.windows import Batch, Lane, RunMemo, Window, WindowOutput, model_tags
from mlmon.metrics.descriptive import (
    PredictionAggregate,
    PredictionStats,
    SegmentPredictionStats,
    describe,
    describe_segment,
)
from mlmon.metrics.drift import DRIFT_METRICS, ks_statistic, psi
from mlmon.metrics.histogram import ScoreHistogram
from mlmon.samples import CheckStatus, Sample, ServiceCheck, make_tags
from mlmon.state import MODEL_MEMORY, JobState
from mlmon.times import iso
from mlmon.warehouse.cardinality import VersionSeen, fetch_pairs
from mlmon.warehouse.engines import Engine
from mlmon.warehouse.predictions import GroupKey, fetch_prediction_aggregates

log = logging.getLogger("mlmon.jobs.predictions")

AVAILABLE_CHECK = "mlmon.predictions.available"
#: every metric the job emits, per (model, model_version) and window; ``count`` also for expected but silent models
METRICS = tuple(f"mlmon.prediction.{name}" for name in (*PredictionStats.names(), *DRIFT_METRICS))
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

    The statement reads the windows and their drift references, less the references this run computed
    already as windows of an earlier statement (a catch-up longer than ``drift_reference``): those come
    from ``memo``, which keeps each computed window's histograms for as long as a later window may
    refer to it.
    """
    job = instance.jobs.predictions
    width = job.window
    ref_offset = job.drift_reference
    start, end = windows[0].start, windows[-1].end
    base = make_tags(base_tags)
    day_windows = round(MODEL_MEMORY / width)
    ref_windows = round(ref_offset / width)
    known: dict[int, dict[GroupKey, ScoreHistogram]] = memo.setdefault(f"histograms:{lane.key}", {})
    references = range(windows[0].index - ref_windows, windows[-1].index + 1 - ref_windows)
    unread = [i for i in references if i not in known]
    # an empty reference range is the windows' own: nothing more is read
    ref_start, ref_end = ((unread[0] * width, (unread[-1] + 1) * width) if unread else (start, end))
    segments = choose(engine, instance, "predictions", job, windows, state, memo)
    result = fetch_prediction_aggregates(engine, instance, start, end, ref_start, ref_end, width, lane.include,
                                         segments.plan)
    choose_new(engine, instance, "predictions", job, windows, state, result.groups, segments)

    by_window: dict[int, dict[GroupKey, PredictionAggregate]] = defaultdict(dict)
    hists: dict[int, dict[GroupKey, ScoreHistogram]] = defaultdict(dict)
    seen: dict[str, set[int]] = defaultdict(set)
    for key, agg in result.groups.items():
        by_window[key.window_index][key] = agg
        hists[key.window_index][key] = agg.histogram
        seen[key.model].add(key.window_index)
    keys = set(result.groups)
    for index in references:  # what the statement would have read, had it read these references again
        if index in known and index not in hists:
            hists[index] = known[index]
            keys |= set(known[index])
            for key in known[index]:
                seen[key.model].add(index)

    def reference(model: str, index: int) -> ScoreHistogram | None:
        found = [hist for key, hist in hists.get(index - ref_windows, {}).items() if key.model == model]
        return ScoreHistogram.merge(found) if found else None

    for window in windows:
        known[window.index] = dict(hists.get(window.index, {}))
    for index in [i for i in known if i <= windows[-1].index - ref_windows]:
        del known[index]  # no later window of this run refers to it

    outputs = []
    table = instance.tables.predictions
    for window in windows:
        out = WindowOutput(window)
        groups = by_window.get(window.index, {})
        present = {key.model for key in groups}
        for key, agg in sorted(groups.items(), key=lambda kv: (kv[0].model, kv[0].model_version)):
            tags = model_tags(base, key.model, key.model_version)
            values: dict[str, float | None] = dict(describe(agg).values())
            ref = reference(key.model, window.index)
            if ref is not None and min(ref.total, agg.histogram.total) >= job.drift_min_rows:
                values["psi"] = psi(ref, agg.histogram)
                values["ks_statistic"] = ks_statistic(ref, agg.histogram)
            for name, value in values.items():
                if value is not None:
                    out.samples.append(Sample(f"mlmon.prediction.{name}", float(value), tags, window.end))
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
    return Batch(outputs, result.rows_fetched + segments.rows_fetched, segments.problems)


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
    other statistics; ``psi`` and ``ks_statistic`` when the model also has valid rows in the drift reference
    range. Plus one ``count`` series for each expected model (configured, or with rows in the day before the
    period's end) silent in some window of the period, tagged with the version of its latest row."""
    job = instance.jobs.predictions
    (lane,) = lanes(instance)
    windows = first_run.period(now, job, lane)
    start, end = windows[0].start, windows[-1].end
    seen = fetch_pairs(engine, instance, start, end, job.window, day_start=start - DAY,
                       ref_start=start - job.drift_reference, ref_end=end - job.drift_reference, include=lane.include)
    active, valid = model_pairs(seen, valid=False), model_pairs(seen, valid=True)
    referenced = {s.model for s in seen if s.model_referenced}
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
        elif name in ("mlmon.prediction.psi", "mlmon.prediction.ks_statistic"):
            counter.add(name, sum(1 for model, _ in valid if model in referenced))
        else:
            counter.add(name, len(valid))
    available = len(expected | {m for m, _ in active})
    versions: dict[str, int] = defaultdict(int)
    for model, _ in active:
        versions[model] += 1
    segment_rows, problems = series_counts(engine, instance, job, windows, versions, SEGMENT_METRICS, base)
    return Counted(
        counter.rows(lambda _: tag_keys(base, *MODEL_KEYS)) + segment_rows,
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


SPEC = JobSpec(
    name="predictions", tables=("predictions",), metrics=(*METRICS, *SEGMENT_METRICS), series=series,
    window=compute, lanes=lanes, delay_setting="lateness", failure_checks=failure_checks, rows_covered=rows_covered,
    columns=_columns,
)
