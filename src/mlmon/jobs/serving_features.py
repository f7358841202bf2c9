"""The ``serving_features`` job: statistics of the serving inputs per window, and their skew against the
serving version's training data.

One statement per range of windows (:mod:`mlmon.warehouse.serving`), after two no-row probes a run:
the serving columns' types (numeric or categorical) and which features ``training_features`` has
(the reference of ``psi_training`` and ``unseen_share``). Per (model, model_version, window) it sends
``mlmon.serving.count`` (the rows read) and, per ``feature``, the statistics of
:class:`~mlmon.metrics.serving.ServingStats` and the top-K ``value_share`` series. With ``features``
empty the job has nothing to watch and is skipped (one log line), like a job whose table is null.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlmon.cardinality import MODEL_KEYS, Counted, FirstRun, Period, SeriesCounter, tag_keys
from mlmon.config import Instance
from mlmon.jobs.spec import JobSpec, table_exists
from mlmon.jobs.training import tag
from mlmon.jobs.windows import Batch, Lane, RunMemo, Window, WindowOutput, model_tags
from mlmon.metrics.serving import ServingStats, serving_stats
from mlmon.samples import Sample, make_tags
from mlmon.state import JobState
from mlmon.warehouse.engines import Engine, QueryError
from mlmon.warehouse.features import FeatureKind
from mlmon.warehouse.serving import fetch_serving_features, reference_features, serving_kinds, source_table

log = logging.getLogger("mlmon.jobs.serving_features")

PREFIX = "mlmon.serving.feature."
#: rows of the serving table per (model, model_version, window): what the feature ratios are shares of
COUNT_METRIC = "mlmon.serving.count"
#: per (model, model_version, window, feature); ``value_share`` also per ``value``
FEATURE_METRICS = tuple(PREFIX + name for name in (*ServingStats.names(), "value_share"))
METRICS = (COUNT_METRIC, *FEATURE_METRICS)


def lanes(instance: Instance) -> list[Lane]:
    """One lane: every (configured) model, due ``lateness`` after the window end."""
    return [Lane("", instance.jobs.serving_features.lateness, instance.models)]


def _reference(engine: Engine, instance: Instance) -> tuple[list[str], str]:
    """The features ``training_features`` has, and a problem to report ("" if none)."""
    table = instance.tables.training_features
    if table is None:
        return [], ""
    try:
        return reference_features(engine, instance, instance.jobs.serving_features.features), ""
    except QueryError as exc:
        if instance.tables.explicit("training_features") or table_exists(engine, table):
            return [], (f"instance {instance.name}, job serving_features, table {table}: {exc}; psi_training and "
                        "unseen_share not computed")
        log.debug("instance %s: table %s (default name) not found; psi_training and unseen_share not computed",
                  instance.name, table)
        return [], ""


def _inputs(engine: Engine, instance: Instance, memo: RunMemo) -> tuple[dict[str, FeatureKind], list[str], str]:
    """The features' kinds and reference features (probed once a run), and the reference's problem, told once."""
    job = instance.jobs.serving_features
    if "kinds" not in memo:
        memo["kinds"] = serving_kinds(engine, instance, job.features, job.categorical)
        memo["reference"], problem = _reference(engine, instance)
        return memo["kinds"], memo["reference"], problem
    return memo["kinds"], memo["reference"], ""


def outputs(
    engine: Engine, instance: Instance, windows: Sequence[Window], include: Sequence[str], base: tuple[str, ...],
    memo: RunMemo,
) -> Batch:
    """One statement over ``windows`` (contiguous) for the models ``include``: per-window outputs."""
    job = instance.jobs.serving_features
    kinds, reference, problem = _inputs(engine, instance, memo)
    result = fetch_serving_features(engine, instance, windows[0].start, windows[-1].end, job.window, job.features,
                                    kinds, job.top_k, reference, include)
    batch = Batch([], result.rows_fetched, [problem] if problem else [])
    for window in windows:
        out = WindowOutput(window)
        keys = sorted(k for k in result.groups if k.window_index == window.index)
        for key in keys:
            tags = model_tags(base, key.model, key.model_version)
            features = result.groups[key]
            rows = next(iter(features.values())).count  # every feature is read from every row
            out.samples.append(Sample(COUNT_METRIC, float(rows), tags, window.end))
            for feature in (f for f in job.features if f in features):
                out.samples.extend(_feature_samples(features[feature], feature, kinds[feature], job.psi_min_rows,
                                                    tags, window.end))
            out.models[key.model] = key.model_version
        batch.outputs.append(out)
    return batch


def _feature_samples(agg: Any, feature: str, kind: FeatureKind, min_rows: int, tags: tuple[str, ...],
                     at: float) -> list[Sample]:
    stats = serving_stats(agg, categorical=kind == "categorical", min_rows=min_rows)
    tags = make_tags(tags, f"feature:{feature}")
    samples = [Sample(PREFIX + name, value, tags, at) for name, value in stats.values().items()]
    shares: dict[str, float] = {}
    for value, share in stats.value_shares.items():
        key = tag("value", value)
        shares[key] = shares.get(key, 0.0) + share  # values equal once sanitized share one tag
    samples.extend(Sample(PREFIX + "value_share", share, make_tags(tags, key), at) for key, share in shares.items())
    return samples


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
    """Query one contiguous range of windows and return per-window outputs and rows fetched."""
    return outputs(engine, instance, windows, lane.include, make_tags(base_tags), memo)


def series(engine: Engine, instance: Instance, now: float, first_run: FirstRun, base: Sequence[str]) -> Counted:
    """The distinct series the job's statement over the first run's period yields: per (model, version) with
    rows ``count``; per feature with rows ``null_ratio`` and ``distinct_count``, with valid values
    ``same_value_ratio``, numeric ``mean``, ``min``, ``max`` (``stddev`` from two valid values in a window),
    categorical ``value_share`` per value in some window's top K (plus ``__other__``) and, with training rows of
    the version, ``unseen_share``; ``psi_training`` where both sides hold ``psi_min_rows`` valid values."""
    job = instance.jobs.serving_features
    (lane,) = lanes(instance)
    windows = first_run.period(now, job, lane)
    batch = outputs(engine, instance, windows, lane.include, (), {})
    counter = SeriesCounter(METRICS)
    for name, _ in {(s.name, s.tags) for out in batch.outputs for s in out.samples}:
        counter.add(name)

    def keys(name: str) -> tuple[str, ...]:
        if name == COUNT_METRIC:
            return tag_keys(base, *MODEL_KEYS)
        return tag_keys(base, *MODEL_KEYS, "feature", *(("value",) if name.endswith(".value_share") else ()))

    return Counted(counter.rows(keys), periods=[Period(windows[0].start, windows[-1].end, len(windows))],
                   problems=batch.problems)


def rows_covered(values: Mapping[str, float]) -> float:
    """Every row of the window: ``mlmon.serving.count`` (the feature series cover the same rows)."""
    return values.get(COUNT_METRIC, 0.0)


def _tables(instance: Instance) -> tuple[str, ...]:
    """``serving_features`` when configured, else ``predictions``."""
    return (source_table(instance),)


def _reference_table(instance: Instance) -> tuple[str, ...]:
    """``training_features`` when it is wanted: named in the config, or read by the training job's features."""
    wanted = instance.tables.explicit("training_features") or bool(instance.jobs.training.features)
    return ("training_features",) if instance.tables.training_features is not None and wanted else ()


def _idle(instance: Instance) -> str:
    return "" if instance.jobs.serving_features.features else "no features configured (jobs.serving_features.features)"


def _columns(instance: Instance) -> dict[str, tuple[str, ...]]:
    """The features, columns of the serving table."""
    return {source_table(instance): instance.jobs.serving_features.features}


SPEC = JobSpec(
    name="serving_features", tables=_tables, metrics=METRICS, series=series, window=compute, lanes=lanes,
    delay_setting="lateness", rows_covered=rows_covered, extra_tables=_reference_table, idle=_idle,
    columns=_columns,
)
