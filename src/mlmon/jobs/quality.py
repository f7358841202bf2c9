"""The ``quality`` job: online logloss, AUC, calibration... once a window's labels have matured."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from mlmon.cardinality import MODEL_KEYS, Counted, FirstRun, Period, SeriesCounter, model_pairs, tag_keys
from mlmon.config import Instance
from mlmon.jobs.segments import choose, choose_new, segment_samples, series_counts
from mlmon.jobs.spec import JobSpec, table_exists
from mlmon.jobs.windows import Batch, Lane, RunMemo, Window, group_outputs, no_failure_checks
from mlmon.metrics.quality import LabelBalance, OfflineMetrics, OnlineQuality, QualityAggregate, online_quality
from mlmon.samples import make_tags
from mlmon.state import JobState
from mlmon.times import iso
from mlmon.warehouse.cardinality import fetch_pairs
from mlmon.warehouse.engines import Engine, QueryError, WarehouseError
from mlmon.warehouse.predictions import GroupKey
from mlmon.warehouse.quality import fetch_label_balance, fetch_offline_metrics, fetch_quality

log = logging.getLogger("mlmon.jobs.quality")

#: every metric the job emits, per (model, model_version) and matured window
METRICS = tuple(f"mlmon.online.{name}" for name in OnlineQuality.names())
SEGMENT_PREFIX = "mlmon.segment.online."
#: what a segment reports of :class:`OnlineQuality` (the other metrics are the model's, not a slice's)
SEGMENT_QUALITY = ("labeled_count", "positive_rate", "mean_prediction", "logloss", "auc", "calibration")
#: a segment against its model's value in the same window and version (``segment_min_labeled`` labeled rows)
SEGMENT_COMPARISONS = ("auc_vs_model", "logloss_vs_model", "calibration_vs_model")
SEGMENT_METRICS = tuple(SEGMENT_PREFIX + name for name in (*SEGMENT_QUALITY, *SEGMENT_COMPARISONS))


def lanes(instance: Instance) -> list[Lane]:
    """The main lane at ``label_delay``, and one lane per distinct ``label_delay_by_model`` value.

    With ``models`` configured, only those models are watched; otherwise every model found,
    minus those with a delay of their own.
    """
    job = instance.jobs.quality
    overrides = {m: d for m, d in job.label_delay_by_model.items() if not instance.models or m in instance.models}
    by_delay: dict[float, list[str]] = defaultdict(list)
    for model, delay in sorted(overrides.items()):
        by_delay[delay].append(model)
    out = []
    if instance.models:
        rest = tuple(m for m in instance.models if m not in overrides)
        if rest:
            out.append(Lane("", job.label_delay, rest))
    else:
        out.append(Lane("", job.label_delay, (), tuple(sorted(overrides))))
    out.extend(Lane(f"label_delay:{int(d)}", d, tuple(ms)) for d, ms in sorted(by_delay.items()))
    return out


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
    """Query one range of windows (predictions joined with labels) and return per-window outputs."""
    job = instance.jobs.quality
    start, end = windows[0].start, windows[-1].end
    segments = choose(engine, instance, "quality", job, windows, state, memo)
    result = fetch_quality(engine, instance, start, end, job.window, lane.delay, lane.include, lane.exclude,
                           segments.plan)
    choose_new(engine, instance, "quality", job, windows, state, result.groups, segments)
    fetched = result.rows_fetched + segments.rows_fetched
    problems: list[str] = list(segments.problems)
    offline: dict[tuple[str, str], OfflineMetrics] = {}
    if instance.tables.training_runs and result.groups:
        pairs = sorted({(k.model, k.model_version) for k in result.groups})
        try:
            offline, n = fetch_offline_metrics(engine, instance, pairs)
            fetched += n
        except QueryError as exc:
            if instance.tables.explicit("training_runs") or table_exists(engine, instance.tables.training_runs):
                problems.append(f"instance {instance.name}, table {instance.tables.training_runs}: {exc}; "
                                "logloss_vs_offline and auc_vs_offline not computed")
            else:  # left at its default name and absent: like a job whose table is missing, not an error
                log.debug("instance %s: table %s (default name) not found; logloss_vs_offline and auc_vs_offline "
                          "not computed", instance.name, instance.tables.training_runs)
    def values(key: GroupKey, agg: QualityAggregate, window: Window) -> dict[str, float]:
        quality = online_quality(agg, offline.get((key.model, key.model_version)))
        if quality.one_class:
            log.debug("model %s version %s window ending %s: one class only (%d positive of %d labeled); "
                      "auc, calibration and normalized_entropy are undefined and not sent",
                      key.model, key.model_version, iso(window.end), agg.positives, agg.labeled_count)
        return quality.values()

    base = make_tags(base_tags)
    outputs = group_outputs(windows, result.groups, base, "mlmon.online.", values)
    by_window = {out.window.index: out for out in outputs}
    overall = {key: online_quality(agg) for key, agg in result.groups.items()}
    for skey, sagg in sorted(result.segments.items()):
        out = by_window.get(skey.window_index)
        if out is not None:
            seg_values = segment_values(online_quality(sagg), overall.get(skey.group), job.segment_min_labeled)
            out.samples.extend(segment_samples(SEGMENT_PREFIX, skey, seg_values, base, out.window.end))
    return Batch(outputs, fetched, problems)


def segment_values(segment: OnlineQuality, model: OnlineQuality | None, min_labeled: int) -> dict[str, float]:
    """A segment's :data:`SEGMENT_QUALITY` values and, with ``min_labeled`` labeled rows (and the model's value
    defined), ``auc_vs_model`` (segment AUC less the model's), ``logloss_vs_model`` (segment logloss over the
    model's) and ``calibration_vs_model`` (segment calibration over the model's: a slice priced off its model's
    level; a model-wide miscalibration leaves it at 1)."""
    defined = segment.values()
    out = {name: defined[name] for name in SEGMENT_QUALITY if name in defined}
    if model is None or segment.labeled_count < min_labeled:
        return out
    if segment.auc is not None and model.auc is not None:
        out["auc_vs_model"] = segment.auc - model.auc
    if segment.logloss is not None and model.logloss:
        out["logloss_vs_model"] = segment.logloss / model.logloss
    if segment.calibration is not None and model.calibration:
        out["calibration_vs_model"] = segment.calibration / model.calibration
    return out


def series(engine: Engine, instance: Instance, now: float, first_run: FirstRun, base: Sequence[str]) -> Counted:
    """Per (model, model_version) with rows in the period: the three counts; with valid rows the other
    metrics (``logloss_vs_offline`` and ``auc_vs_offline`` only with ``training_runs`` configured)."""
    job = instance.jobs.quality
    active: set[tuple[str, str]] = set()
    valid: set[tuple[str, str]] = set()
    periods = []
    every: list[Window] = []
    for lane in lanes(instance):
        windows = first_run.period(now, job, lane)
        every.extend(windows)
        start, end = windows[0].start, windows[-1].end
        seen = fetch_pairs(engine, instance, start, end, job.window, day_start=start, ref_start=start,
                           ref_end=start, include=lane.include, exclude=lane.exclude)
        active |= model_pairs(seen, valid=False)
        valid |= model_pairs(seen, valid=True)
        periods.append(Period(start, end, len(windows)))
    always = {"mlmon.online.labeled_count", "mlmon.online.invalid_prediction_count", "mlmon.online.invalid_label_count"}
    offline = {"mlmon.online.logloss_vs_offline", "mlmon.online.auc_vs_offline"}
    counter = SeriesCounter(METRICS)
    for name in METRICS:
        if name in always:
            counter.add(name, len(active))
        elif name not in offline or instance.tables.training_runs is not None:
            counter.add(name, len(valid))
    versions: dict[str, int] = defaultdict(int)
    for model, _ in active:
        versions[model] += 1
    segment_rows, problems = series_counts(engine, instance, job, every, versions, SEGMENT_METRICS, base)
    return Counted(counter.rows(lambda _: tag_keys(base, *MODEL_KEYS)) + segment_rows, periods=periods,
                   problems=problems)


def rows_covered(values: Mapping[str, float]) -> float:
    """The valid predictions (``labeled_count / label_coverage``; none known when nothing was labeled) plus
    ``invalid_prediction_count``."""
    if "mlmon.online.labeled_count" not in values:
        return 0.0
    coverage = values.get("mlmon.online.label_coverage")
    rows = values["mlmon.online.labeled_count"] / coverage if coverage else 0.0
    return rows + values.get("mlmon.online.invalid_prediction_count", 0.0)


#: matured windows (the latest, per lane) whose label balance ``mlmon check`` looks at
BALANCE_WINDOWS = 3


def check_label_balance(
    engine: Engine, instance: Instance, now: float, say: Callable[[str], object]
) -> list[str]:
    """Warn (``say``) about models whose latest matured windows are implausibly all of one class.

    One statement per label delay (lane) over its :data:`BALANCE_WINDOWS` latest matured windows,
    returning one row per (model, version, window). Returns problems: the statement failing.
    """
    job = instance.jobs.quality
    problems = []
    for lane in lanes(instance):
        end = math.floor((now - lane.delay) / job.window) * job.window
        try:
            result = fetch_label_balance(engine, instance, end - BALANCE_WINDOWS * job.window, end, job.window,
                                         lane.delay, lane.include, lane.exclude)
        except (QueryError, WarehouseError) as exc:
            problems.append(f"instance {instance.name}, tables {instance.tables.predictions}, "
                            f"{instance.tables.labels} (job quality): {exc}")
            continue
        latest: dict[str, tuple[float, str, LabelBalance]] = {}
        for key, balance in sorted(result.groups.items(), key=lambda kv: kv[0].window_index):
            if balance.implausible_one_class:
                latest[key.model] = (key.window_index * job.window, key.model_version, balance)
        for model, (start, version, balance) in sorted(latest.items()):
            say(f"WARNING instance {instance.name}: model {model} version {version}, window {iso(start)} to "
                f"{iso(start + job.window)}: {_one_class_advice(instance, balance)}")
    return problems


def _one_class_advice(instance: Instance, b: LabelBalance) -> str:
    negative = instance.jobs.quality.missing_label == "negative"
    mean = f"mean_prediction {b.sum_prediction / b.labeled_count:.3g}"
    if b.positives:
        what = f"every labeled prediction is positive ({b.positives} of {b.labeled_count}: positive_rate 1.0, {mean})"
        if negative:
            return f"{what}: check the label column and request_id collisions in {instance.tables.labels}"
        return (f"{what}: a labels table that holds only the positives (clicks) needs "
                f"jobs -> quality -> missing_label: negative")
    what = f"every labeled prediction is negative (0 of {b.labeled_count}: positive_rate 0.0, {mean})"
    if negative:
        return (f"{what}: with missing_label: negative a prediction no label row matches counts as 0; check that "
                f"{instance.tables.labels}.request_id matches {instance.tables.predictions}.request_id and that "
                "label_delay covers how late labels arrive")
    return f"{what}: check that positives are 1, true or '1' and arrive within label_delay"


def _columns(instance: Instance) -> dict[str, tuple[str, ...]]:
    """The segment columns, of the prediction log."""
    return {"predictions": instance.jobs.quality.segment_by} if instance.jobs.quality.segment_by else {}


SPEC = JobSpec(
    name="quality", tables=("predictions", "labels"), metrics=(*METRICS, *SEGMENT_METRICS), series=series,
    window=compute, lanes=lanes, delay_setting="label_delay", rows_covered=rows_covered, check=check_label_balance,
    columns=_columns,
)
