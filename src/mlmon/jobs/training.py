"""The ``training`` job: a snapshot of each model's latest training run and its features.

Two statements per run: the lineage rows (latest, previous and 30-day run of each model), then,
when features are configured, the feature aggregates of each model's latest and previous version
(after a no-row probe that tells numeric from categorical columns). Every sample is a gauge stamped
at ``now`` and tagged with the model and its latest version. A failing lineage statement raises
:class:`~mlmon.warehouse.engines.QueryError`; a failing feature statement is reported in
``problems`` and the lineage samples are still returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mlmon.cardinality import MODEL_KEYS, Counted, FirstRun, SeriesCounter, tag_keys
from mlmon.config import Instance, TrainingJob
from mlmon.jobs.spec import JobSpec, Snapshot
from mlmon.metrics.training import FeatureStats, Lineage, feature_stats, lineage
from mlmon.samples import Sample, make_tags, normalize_tag
from mlmon.warehouse.cardinality import fetch_feature_counts
from mlmon.warehouse.engines import Engine, QueryError
from mlmon.warehouse.features import feature_kinds, fetch_feature_aggregates
from mlmon.warehouse.training import fetch_runs

PREFIX = "mlmon.training."
FEATURE_PREFIX = "mlmon.training.feature."
#: lineage metrics, per model, tagged with its latest version
LINEAGE_METRICS = tuple(PREFIX + name for name in Lineage.names())
#: feature metrics, per (model, feature) of the latest version; ``value_share`` also per ``value``
FEATURE_METRICS = tuple(FEATURE_PREFIX + name for name in (*FeatureStats.names(), "value_share"))
METRICS = LINEAGE_METRICS + FEATURE_METRICS

#: what one run of the training job produced
TrainingSnapshot = Snapshot


def tag(key: str, value: str) -> str:
    """``key:value`` as it is sent (:func:`mlmon.samples.normalize_tag`): values that become one tag are one."""
    return normalize_tag(f"{key}:{value}")


def compute(
    engine: Engine, instance: Instance, job: TrainingJob, base_tags: Iterable[str], now: float
) -> TrainingSnapshot:
    """Query the lineage and feature aggregates of every model and turn them into samples."""
    base = make_tags(base_tags)
    runs = fetch_runs(engine, instance, instance.models)
    samples: list[Sample] = []
    problems: list[str] = []
    rows_fetched = runs.rows_fetched
    model_tags: dict[str, tuple[str, ...]] = {}
    for model, found in sorted(runs.models.items()):
        tags = make_tags(base, f"model:{model}", f"model_version:{found.latest.model_version}")
        model_tags[model] = tags
        values = lineage(found.latest, found.previous, found.month_ago, now).values()
        samples.extend(Sample(PREFIX + name, value, tags, now) for name, value in values.items())

    table = instance.tables.training_features
    if table is None or not job.features or not runs.models:
        return TrainingSnapshot(samples, rows_fetched, problems)
    versions = {
        model: [found.latest.model_version, *([found.previous.model_version] if found.previous else [])]
        for model, found in sorted(runs.models.items())
    }
    try:
        kinds = feature_kinds(engine, instance, job.features, job.categorical)
        result = fetch_feature_aggregates(engine, instance, job.features, kinds, versions, job.top_k)
    except QueryError as exc:
        problems.append(f"instance {instance.name}, job training, table {table}: {exc}")
        return TrainingSnapshot(samples, rows_fetched, problems)
    rows_fetched += result.rows_fetched
    for (model, feature), (latest, previous) in sorted(result.features.items()):
        tags = make_tags(model_tags[model], f"feature:{feature}")
        stats = feature_stats(latest, previous, categorical=kinds[feature] == "categorical")
        samples.extend(Sample(FEATURE_PREFIX + name, value, tags, now) for name, value in stats.values().items())
        shares: dict[str, float] = {}
        for value, share in stats.value_shares.items():
            key = tag("value", value)
            shares[key] = shares.get(key, 0.0) + share  # values equal once sanitized share one tag
        samples.extend(
            Sample(FEATURE_PREFIX + "value_share", share, make_tags(tags, key), now) for key, share in shares.items()
        )
    return TrainingSnapshot(samples, rows_fetched, problems)


def series(engine: Engine, instance: Instance, now: float, first_run: FirstRun, base: Sequence[str]) -> Counted:
    """Per model, the lineage metrics of its latest version (the three ``*_change_prev`` with a previous run,
    ``rows_change_30d`` with a run 30 days older); per configured feature with rows in the latest version
    ``null_ratio`` and ``distinct_count``, with valid values ``same_value_ratio``, for numeric features
    ``mean`` (``stddev`` from two values), ``psi_prev`` when the previous version has valid values too, for
    categorical ones ``value_share``: min(distinct values, ``top_k``), plus one ``value:__other__`` series."""
    job = instance.jobs.training
    runs = fetch_runs(engine, instance, instance.models).models
    counter = SeriesCounter(METRICS)
    for name in LINEAGE_METRICS:
        if name.endswith("_change_prev"):
            counter.add(name, sum(1 for r in runs.values() if r.previous is not None))
        elif name.endswith("_change_30d"):
            counter.add(name, sum(1 for r in runs.values() if r.month_ago is not None))
        else:
            counter.add(name, len(runs))

    def keys(name: str) -> tuple[str, ...]:
        if name in LINEAGE_METRICS:
            return tag_keys(base, *MODEL_KEYS)
        extra = ("value",) if name.endswith(".value_share") else ()
        return tag_keys(base, *MODEL_KEYS, "feature", *extra)

    table = instance.tables.training_features
    if table is None or not job.features or not runs:
        return Counted(counter.rows(keys))
    versions = {
        model: [r.latest.model_version, *([r.previous.model_version] if r.previous else [])]
        for model, r in sorted(runs.items())
    }
    try:
        kinds = feature_kinds(engine, instance, job.features, job.categorical)
        counts = fetch_feature_counts(engine, instance, job.features, kinds, versions)
    except QueryError as exc:
        return Counted(counter.rows(keys), problems=[f"instance {instance.name}, job training, table {table}: {exc}"])
    for (model, feature, role), latest in counts.items():
        if role != 0 or latest.rows == 0:
            continue
        numeric = kinds[feature] == "numeric"
        previous = counts.get((model, feature, 1))
        counter.add(FEATURE_PREFIX + "null_ratio")
        counter.add(FEATURE_PREFIX + "distinct_count")
        if latest.valid == 0:
            continue
        counter.add(FEATURE_PREFIX + "same_value_ratio")
        if numeric:
            counter.add(FEATURE_PREFIX + "mean")
            counter.add(FEATURE_PREFIX + "stddev", int(latest.valid >= 2))
        else:
            shares = min(latest.distinct, job.top_k) + int(latest.distinct > job.top_k)  # + value:__other__
            counter.add(FEATURE_PREFIX + "value_share", shares)
        counter.add(FEATURE_PREFIX + "psi_prev", int(previous is not None and previous.valid > 0))
    return Counted(counter.rows(keys))


def _snapshot(engine: Engine, instance: Instance, base_tags: Iterable[str], now: float) -> TrainingSnapshot:
    return compute(engine, instance, instance.jobs.training, base_tags, now)


def _features_table(instance: Instance) -> tuple[str, ...]:
    """``training_features`` when features are configured."""
    return ("training_features",) if instance.jobs.training.features else ()


def _feature_columns(instance: Instance) -> dict[str, tuple[str, ...]]:
    """The configured features, columns of ``training_features``."""
    return {"training_features": instance.jobs.training.features}


SPEC = JobSpec(
    name="training", tables=("training_runs",), metrics=METRICS, series=series, snapshot=_snapshot,
    extra_tables=_features_table, columns=_feature_columns,
)
