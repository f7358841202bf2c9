"""The ``quality`` job: online logloss, AUC, calibration... once a window's labels have matured."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

from mlmon.config import Instance
from mlmon.jobs.windows import Batch, Lane, Window, group_outputs, no_failure_checks
from mlmon.metrics.quality import OfflineMetrics, QualityAggregate, online_quality
from mlmon.samples import make_tags
from mlmon.state import JobState
from mlmon.times import iso
from mlmon.warehouse.engines import Engine, QueryError
from mlmon.warehouse.online import fetch_offline_metrics, fetch_quality
from mlmon.warehouse.predictions import GroupKey
from mlmon.warehouse.sql import exists_query

log = logging.getLogger("mlmon.jobs.quality")

#: every metric the job emits, per (model, model_version) and matured window
METRICS = tuple(f"mlmon.online.{name}" for name in (
    "labeled_count", "invalid_prediction_count", "invalid_label_count", "label_coverage", "positive_rate",
    "mean_prediction", "logloss", "auc", "brier", "calibration", "normalized_entropy", "logloss_vs_offline",
    "auc_vs_offline",
))


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


def _exists(engine: Engine, table: str) -> bool:
    try:
        engine.fetch(exists_query(table), {})
    except QueryError:
        return False
    return True


def compute(
    engine: Engine,
    instance: Instance,
    windows: Sequence[Window],
    lane: Lane,
    state: JobState,
    base_tags: Iterable[str],
    now: float,
) -> Batch:
    """Query one range of windows (predictions joined with labels) and return per-window outputs."""
    job = instance.jobs.quality
    start, end = windows[0].start, windows[-1].end
    result = fetch_quality(engine, instance, start, end, job.window, lane.delay, lane.include, lane.exclude)
    fetched = result.rows_fetched
    problems: list[str] = []
    offline: dict[tuple[str, str], OfflineMetrics] = {}
    if instance.tables.training_runs and result.groups:
        pairs = sorted({(k.model, k.model_version) for k in result.groups})
        try:
            offline, n = fetch_offline_metrics(engine, instance, pairs)
            fetched += n
        except QueryError as exc:
            if instance.tables.explicit("training_runs") or _exists(engine, instance.tables.training_runs):
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

    outputs = group_outputs(windows, result.groups, make_tags(base_tags), "mlmon.online.", values)
    return Batch(outputs, fetched, problems)
