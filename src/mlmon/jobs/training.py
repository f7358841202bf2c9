"""The ``training`` job: a snapshot of each model's latest training run and its features.

Two statements per run: the lineage rows (latest, previous and 30-day run of each model), then,
when features are configured, the feature aggregates of each model's latest and previous version
(after a no-row probe that tells numeric from categorical columns). Every sample is a gauge stamped
at ``now`` and tagged with the model and its latest version. A failing lineage statement raises
:class:`~mlmon.warehouse.engines.QueryError`; a failing feature statement is reported in
``problems`` and the lineage samples are still returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from mlmon.config import Instance, TrainingJob
from mlmon.metrics.training import feature_stats, lineage
from mlmon.samples import Sample, make_tags
from mlmon.warehouse.engines import Engine, QueryError
from mlmon.warehouse.training import feature_kinds, fetch_feature_aggregates, fetch_runs

PREFIX = "mlmon.training."
FEATURE_PREFIX = "mlmon.training.feature."
#: lineage metrics, per model, tagged with its latest version
LINEAGE_METRICS = tuple(PREFIX + name for name in (
    "rows", "valid_rows", "valid_logloss", "valid_auc", "rows_change_prev", "rows_change_30d",
    "valid_logloss_change_prev", "valid_auc_change_prev", "model_age_hours",
))
#: feature metrics, per (model, feature) of the latest version; ``value_share`` also per ``value``
FEATURE_METRICS = tuple(FEATURE_PREFIX + name for name in (
    "null_ratio", "mean", "stddev", "distinct_count", "same_value_ratio", "psi_prev", "value_share",
))
METRICS = LINEAGE_METRICS + FEATURE_METRICS
#: Datadog's limit on the length of a tag
MAX_TAG_LENGTH = 200

_UNSAFE = re.compile(r"[,\s]")


@dataclass(frozen=True)
class TrainingSnapshot:
    """What one run of the training job produced."""

    samples: list[Sample] = field(default_factory=list)
    rows_fetched: int = 0
    problems: list[str] = field(default_factory=list)


def tag(key: str, value: str) -> str:
    """``key:value`` with commas and whitespace in ``value`` replaced by ``_``, cut at 200 characters."""
    return f"{key}:{_UNSAFE.sub('_', value)}"[:MAX_TAG_LENGTH]


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
