"""``mlmon plan``: how many custom-metric time series each job of a config will create, before anything is sent.

Datadog bills one custom metric per distinct (metric name, tag set) that reports in an hour. For
each instance and job this counts the tag sets the agent would emit, from the config and from
counts of distinct values the warehouse returns (:mod:`mlmon.warehouse.plan`: aggregates only, one
row per model version or per (model, feature)). No sink is built: nothing is sent.

**Period.** A window job (``predictions``, ``quality``, ``reproducibility``) is planned over the
windows a first ``mlmon run --once`` would process: the latest windows that are due now (their end
plus the job's delay has passed), as many as cover ``initial_lookback`` rounded up to whole windows,
at least one, less those the configured destination would drop (under ``timestamp_policy:
window_end``, windows ending more than ``ingestion_horizon`` ago without ``historical_ingestion``).
``--lookback`` asks for that whole period instead, horizon or not. ``quality`` does so per lane (per
``label_delay_by_model`` delay). The default lookback, 1 h, is Datadog's billing hour; a longer one
counts every model version active in it, an upper bound on any one hour. ``training`` is a
snapshot: every model of ``training_runs`` with its latest version.

**Counts.** ``env`` and the static ``tags`` are the same on every series of an instance: they
multiply by 1.

* predictions, per (model, model_version) with rows in the period: ``count``, ``invalid_count``;
  with valid rows, the other statistics; ``psi`` and ``ks_statistic`` when the model also has valid
  rows in the drift reference range (the period ``drift_reference`` earlier). Plus one ``count``
  series for each expected model (configured in ``models``, or with rows in the day before the
  period's end) that has no rows in some window of the period, tagged with the version of its
  latest row (no version if none), unless that series is already counted.
* quality, per (model, model_version) with rows in the period: the three counts; with valid rows,
  the other metrics (``logloss_vs_offline`` and ``auc_vs_offline`` only with ``training_runs``
  configured).
* reproducibility, per (model, model_version) with valid rows in the period: its five metrics.
* training, per model: the lineage metrics of its latest version (the three ``*_change_prev`` with a
  previous run, ``rows_change_30d`` with a run 30 days older); per configured feature with rows in
  the latest version: ``null_ratio`` and ``distinct_count``; with valid values ``same_value_ratio``,
  for numeric features ``mean`` (``stddev`` from two values), ``psi_prev`` when the previous version
  has valid values too; for categorical ones ``value_share``: min(distinct values, ``top_k``), plus
  one ``value:__other__`` series when there are more than ``top_k``.
* the agent, per (instance, job) that runs: its six counters and gauges, plus ``lag_seconds`` for
  window jobs (a job skipped for a missing default-named table sends the six only).

The counts are exact for what the data's shape decides and upper bounds where a value can still
be undefined (a one-class window has no AUC, a window without a day-earlier twin or with fewer
than ``drift_min_rows`` rows no PSI, NULL
columns drop their metric, two values sanitized to the same ``value`` tag share a series).
Service checks (``mlmon.warehouse.can_connect``, ``mlmon.job.can_run``, ``mlmon.predictions.available``) are
listed apart: Datadog does not bill them as custom metrics.

A job whose table is not configured, or left at its default name and absent, is skipped, as
``mlmon run`` does. An unreachable warehouse or a failing statement (a table named in the config
that does not exist, a missing column) is an error naming the instance and table; the other jobs
and instances are still planned.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlmon.config import Config, Instance
from mlmon.jobs import predictions as predictions_job
from mlmon.jobs import quality as quality_job
from mlmon.jobs import reproducibility as reproducibility_job
from mlmon.jobs import training as training_job
from mlmon.jobs.windows import Lane, Window, due_windows, first_run_horizon
from mlmon.runner import AGENT_METRICS, CAN_CONNECT_CHECK, JOB_CHECK, JOB_TABLES, JOBS
from mlmon.times import iso
from mlmon.warehouse.engines import Engine, QueryError, WarehouseError, open_engine
from mlmon.warehouse.plan import VersionSeen, fetch_feature_counts, fetch_pairs
from mlmon.warehouse.sql import exists_query
from mlmon.warehouse.training import feature_kinds, fetch_runs

DAY = 86400.0
Status = Literal["planned", "skipped", "disabled", "error"]
MODEL_KEYS = ("model", "model_version")


@dataclass(frozen=True)
class SeriesCount:
    """``series`` distinct tag sets of ``name`` (a metric or a service check), tagged by ``tag_keys``."""

    name: str
    tag_keys: tuple[str, ...]
    series: int


@dataclass(frozen=True)
class Period:
    """The windows ``[start, end)`` a window job (or one of its lanes) is planned over."""

    start: float
    end: float
    windows: int


@dataclass
class JobPlan:
    """The series one job of one instance will create."""

    job: str
    status: Status
    metrics: list[SeriesCount] = field(default_factory=list)
    checks: list[SeriesCount] = field(default_factory=list)
    periods: list[Period] = field(default_factory=list)
    message: str = ""

    @property
    def total(self) -> int:
        """Custom-metric series of the job."""
        return sum(m.series for m in self.metrics)


@dataclass
class InstancePlan:
    """The series one instance will create, job by job."""

    instance: str
    engine: str
    jobs: list[JobPlan] = field(default_factory=list)
    checks: list[SeriesCount] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Custom-metric series of the instance."""
        return sum(j.total for j in self.jobs)

    @property
    def errors(self) -> list[str]:
        """Distinct error messages of the instance's jobs, in job order."""
        return list(dict.fromkeys(j.message for j in self.jobs if j.status == "error"))


def tag_keys(tags: Iterable[str], *keys: str) -> tuple[str, ...]:
    """The keys of ``tags`` (``team:ads`` -> ``team``) followed by ``keys``, each once."""
    return tuple(dict.fromkeys([*(t.split(":", 1)[0] for t in tags), *keys]))


def plan_period(now: float, job: Any, lane: Lane, lookback: float | None, horizon: float | None) -> list[Window]:
    """The windows a first run of ``job`` (its settings) would process at ``now`` in ``lane``, as
    :meth:`mlmon.runner.Agent.windows` computes them with the sink's ``horizon``; a ``lookback`` (``--lookback``)
    replaces ``initial_lookback`` and the horizon: it asks for that whole period."""
    if lookback is not None:
        return due_windows(now, None, job.window, lane.delay, lookback)
    return due_windows(now, None, job.window, lane.delay, job.initial_lookback,
                       first_run_horizon(job.timestamp_policy, horizon))


class _Counter:
    """Series per metric name, kept in declaration order."""

    def __init__(self, names: Sequence[str]) -> None:
        self.counts = dict.fromkeys(names, 0)

    def add(self, name: str, n: int = 1) -> None:
        if name not in self.counts:
            raise KeyError(f"{name} is not declared by its job")  # the job modules list what they emit
        self.counts[name] += n

    def rows(self, keys: Callable[[str], tuple[str, ...]]) -> list[SeriesCount]:
        return [SeriesCount(name, keys(name), n) for name, n in self.counts.items()]


@dataclass
class _Planned:
    metrics: list[SeriesCount]
    checks: list[SeriesCount] = field(default_factory=list)
    periods: list[Period] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _pairs(seen: Iterable[VersionSeen], *, valid: bool) -> set[tuple[str, str]]:
    return {(s.model, s.model_version) for s in seen if s.active and (s.valid or not valid)}


def _plan_predictions(engine: Engine, instance: Instance, now: float, lookback: float | None, horizon: float | None,
                      base: Sequence[str]) -> _Planned:
    job = instance.jobs.predictions
    (lane,) = predictions_job.lanes(instance)
    windows = plan_period(now, job, lane, lookback, horizon)
    start, end = windows[0].start, windows[-1].end
    seen = fetch_pairs(engine, instance, start, end, job.window, day_start=start - DAY,
                       ref_start=start - job.drift_reference, ref_end=end - job.drift_reference, include=lane.include)
    active, valid = _pairs(seen, valid=False), _pairs(seen, valid=True)
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
    counter = _Counter(predictions_job.METRICS)
    for name in predictions_job.METRICS:
        if name == "mlmon.prediction.count":
            counter.add(name, len(counted))
        elif name == "mlmon.prediction.invalid_count":
            counter.add(name, len(active))
        elif name in ("mlmon.prediction.psi", "mlmon.prediction.ks_statistic"):
            counter.add(name, sum(1 for model, _ in valid if model in referenced))
        else:
            counter.add(name, len(valid))
    available = len(expected | {m for m, _ in active})
    return _Planned(
        counter.rows(lambda _: tag_keys(base, *MODEL_KEYS)),
        [SeriesCount(predictions_job.AVAILABLE_CHECK, tag_keys(base, "model"), available)],
        [Period(start, end, len(windows))],
    )


def _plan_quality(engine: Engine, instance: Instance, now: float, lookback: float | None, horizon: float | None,
                  base: Sequence[str]) -> _Planned:
    job = instance.jobs.quality
    active: set[tuple[str, str]] = set()
    valid: set[tuple[str, str]] = set()
    periods = []
    for lane in quality_job.lanes(instance):
        windows = plan_period(now, job, lane, lookback, horizon)
        start, end = windows[0].start, windows[-1].end
        seen = fetch_pairs(engine, instance, start, end, job.window, day_start=start, ref_start=start,
                           ref_end=start, include=lane.include, exclude=lane.exclude)
        active |= _pairs(seen, valid=False)
        valid |= _pairs(seen, valid=True)
        periods.append(Period(start, end, len(windows)))
    always = {"mlmon.online.labeled_count", "mlmon.online.invalid_prediction_count", "mlmon.online.invalid_label_count"}
    offline = {"mlmon.online.logloss_vs_offline", "mlmon.online.auc_vs_offline"}
    counter = _Counter(quality_job.METRICS)
    for name in quality_job.METRICS:
        if name in always:
            counter.add(name, len(active))
        elif name not in offline or instance.tables.training_runs is not None:
            counter.add(name, len(valid))
    return _Planned(counter.rows(lambda _: tag_keys(base, *MODEL_KEYS)), periods=periods)


def _plan_reproducibility(engine: Engine, instance: Instance, now: float, lookback: float | None, horizon: float | None,
                          base: Sequence[str]) -> _Planned:
    job = instance.jobs.reproducibility
    (lane,) = reproducibility_job.lanes(instance)
    windows = plan_period(now, job, lane, lookback, horizon)
    start, end = windows[0].start, windows[-1].end
    seen = fetch_pairs(engine, instance, start, end, job.window, day_start=start, ref_start=start, ref_end=start,
                       include=lane.include)
    valid = _pairs(seen, valid=True)  # the statement reads valid predictions only
    counter = _Counter(reproducibility_job.METRICS)
    for name in reproducibility_job.METRICS:
        counter.add(name, len(valid))
    return _Planned(counter.rows(lambda _: tag_keys(base, *MODEL_KEYS)), periods=[Period(start, end, len(windows))])


def _plan_training(engine: Engine, instance: Instance, now: float, lookback: float | None, horizon: float | None,
                   base: Sequence[str]) -> _Planned:
    job = instance.jobs.training
    runs = fetch_runs(engine, instance, instance.models).models
    counter = _Counter(training_job.METRICS)
    for name in training_job.LINEAGE_METRICS:
        if name.endswith("_change_prev"):
            counter.add(name, sum(1 for r in runs.values() if r.previous is not None))
        elif name.endswith("_change_30d"):
            counter.add(name, sum(1 for r in runs.values() if r.month_ago is not None))
        else:
            counter.add(name, len(runs))

    def keys(name: str) -> tuple[str, ...]:
        if name in training_job.LINEAGE_METRICS:
            return tag_keys(base, *MODEL_KEYS)
        extra = ("value",) if name.endswith(".value_share") else ()
        return tag_keys(base, *MODEL_KEYS, "feature", *extra)

    table = instance.tables.training_features
    if table is None or not job.features or not runs:
        return _Planned(counter.rows(keys))
    versions = {
        model: [r.latest.model_version, *([r.previous.model_version] if r.previous else [])]
        for model, r in sorted(runs.items())
    }
    try:
        kinds = feature_kinds(engine, instance, job.features, job.categorical)
        counts = fetch_feature_counts(engine, instance, job.features, kinds, versions)
    except QueryError as exc:
        return _Planned(counter.rows(keys), problems=[f"instance {instance.name}, job training, table {table}: {exc}"])
    prefix = training_job.FEATURE_PREFIX
    for (model, feature, role), latest in counts.items():
        if role != 0 or latest.rows == 0:
            continue
        numeric = kinds[feature] == "numeric"
        previous = counts.get((model, feature, 1))
        counter.add(prefix + "null_ratio")
        counter.add(prefix + "distinct_count")
        if latest.valid == 0:
            continue
        counter.add(prefix + "same_value_ratio")
        if numeric:
            counter.add(prefix + "mean")
            counter.add(prefix + "stddev", int(latest.valid >= 2))
        else:
            counter.add(prefix + "value_share", min(latest.distinct, job.top_k) + int(latest.distinct > job.top_k))
        counter.add(prefix + "psi_prev", int(previous is not None and previous.valid > 0))
    return _Planned(counter.rows(keys))


_PLANNERS: dict[str, Callable[[Engine, Instance, float, float | None, float | None, Sequence[str]], _Planned]] = {
    "predictions": _plan_predictions,
    "quality": _plan_quality,
    "reproducibility": _plan_reproducibility,
    "training": _plan_training,
}


def _agent_rows(job: str, base: Sequence[str], *, lag: bool) -> list[SeriesCount]:
    keys = tag_keys(base, "instance", "job")
    names = [n for n in AGENT_METRICS if lag or n != "mlmon.agent.lag_seconds"]
    return [SeriesCount(n, keys, 1) for n in names]


def _absent_table(engine: Engine, instance: Instance, job: str) -> tuple[str, str] | None:
    """The first table ``job`` reads that does not exist, with the engine's message."""
    for table in JOB_TABLES[job]:
        name = str(getattr(instance.tables, table))
        try:
            engine.fetch(exists_query(name), {})
        except QueryError as exc:
            return table, str(exc)
    return None


def _plan_job(engine: Engine | None, unreachable: str, instance: Instance, job: str, now: float,
              lookback: float | None, horizon: float | None, base: Sequence[str]) -> JobPlan:
    windowed = job != "training"
    agent = _agent_rows(job, base, lag=windowed)
    if engine is None:
        return JobPlan(job, "error", agent, message=unreachable)
    try:
        absent = _absent_table(engine, instance, job)
        if absent is not None:
            table, problem = absent
            name = getattr(instance.tables, table)
            if not instance.tables.explicit(table):
                return JobPlan(job, "skipped", _agent_rows(job, base, lag=False),
                               message=f"table {name} (default name) does not exist; mlmon run skips the job")
            return JobPlan(job, "error", agent, message=f"instance {instance.name}, job {job}, table {name}: {problem}")
        planned = _PLANNERS[job](engine, instance, now, lookback, horizon, base)
    except WarehouseError as exc:
        return JobPlan(job, "error", agent, message=f"instance {instance.name}: {exc}")
    except QueryError as exc:
        names = ", ".join(str(getattr(instance.tables, t)) for t in JOB_TABLES[job])
        return JobPlan(job, "error", agent, message=f"instance {instance.name}, job {job}, table {names}: {exc}")
    status: Status = "error" if planned.problems else "planned"
    return JobPlan(job, status, planned.metrics + agent, planned.checks, planned.periods, "; ".join(planned.problems))


def plan_instance(
    config: Config, instance: Instance, now: float, *, lookback: float | None = None,
    engine_factory: Callable[..., Engine] = open_engine,
) -> InstancePlan:
    """The series every job of ``instance`` will create (one connection, closed before returning)."""
    base = config.base_tags(instance)
    horizon = config.init_config.datadog.horizon  # the configured sink's, as the agent's first run uses it
    plan = InstancePlan(instance.name, instance.warehouse.engine)
    engine: Engine | None = None
    unreachable = ""
    opened = False
    try:
        for job in JOBS:
            if not getattr(instance.jobs, job).enabled:
                plan.jobs.append(JobPlan(job, "disabled", message="enabled: false"))
                continue
            missing = [t for t in JOB_TABLES[job] if getattr(instance.tables, t) is None]
            if missing:
                plan.jobs.append(JobPlan(job, "skipped", message=f"table {missing[0]} not configured (null)"))
                continue
            if not opened:
                opened = True
                try:
                    engine = engine_factory(instance.warehouse)
                except WarehouseError as exc:
                    unreachable = f"instance {instance.name}: {exc}"
            job_plan = _plan_job(engine, unreachable, instance, job, now, lookback, horizon, base)
            if engine is not None and job_plan.status != "skipped":
                job_plan.checks.append(SeriesCount(JOB_CHECK, tag_keys(base, "instance", "job"), 1))
            plan.jobs.append(job_plan)
    finally:
        if engine is not None:
            engine.close()
    if opened:
        plan.checks.append(SeriesCount(CAN_CONNECT_CHECK, tag_keys(base, "instance"), 1))
    return plan


def plan_config(
    config: Config, now: float, *, lookback: float | None = None, engine_factory: Callable[..., Engine] = open_engine
) -> list[InstancePlan]:
    """Plan every instance of ``config`` at ``now``; ``lookback`` overrides every window job's ``initial_lookback``."""
    return [plan_instance(config, i, now, lookback=lookback, engine_factory=engine_factory) for i in config.instances]


# --- output ----------------------------------------------------------------------------------------


def to_dict(plans: Sequence[InstancePlan]) -> dict[str, Any]:
    """The plan as plain JSON data (``--format json``)."""

    def job(j: JobPlan) -> dict[str, Any]:
        return {
            "job": j.job, "status": j.status, "message": j.message or None, "total_series": j.total,
            "periods": [{"start": iso(p.start), "end": iso(p.end), "windows": p.windows} for p in j.periods],
            "metrics": [asdict(m) for m in j.metrics], "service_checks": [asdict(c) for c in j.checks],
        }

    instances = [
        {"instance": p.instance, "engine": p.engine, "total_series": p.total, "errors": p.errors,
         "jobs": [job(j) for j in p.jobs], "service_checks": [asdict(c) for c in p.checks]}
        for p in plans
    ]
    return {
        "total_series": sum(p.total for p in plans),
        "service_check_series": _check_series(plans),
        "errors": [e for p in plans for e in p.errors],
        "instances": instances,
    }


def format_json(plans: Sequence[InstancePlan]) -> str:
    """The plan as one JSON document."""
    return json.dumps(to_dict(plans), indent=2)


def _check_series(plans: Sequence[InstancePlan]) -> int:
    return sum(c.series for p in plans for c in [*p.checks, *(c for j in p.jobs for c in j.checks)])


def _period_text(periods: Sequence[Period]) -> str:
    return "; ".join(f"{p.windows} window(s) {iso(p.start)} .. {iso(p.end)}" for p in periods)


def format_text(plans: Sequence[InstancePlan]) -> str:
    """The plan as tables: per job, a row per metric; totals per job, instance and overall."""
    rows = [m for p in plans for j in p.jobs for m in j.metrics]
    name_w = max([len("metric"), *(len(m.name) for m in rows)])
    keys_w = max([len("tag keys"), *(len(", ".join(m.tag_keys)) for m in rows)])
    lines: list[str] = []
    for p in plans:
        lines.append(f"instance {p.instance} ({p.engine})")
        for j in p.jobs:
            if j.status in ("disabled", "skipped") and not j.metrics:
                lines.append(f"  job {j.job}: {j.status}, {j.message}")
                continue
            head = f"  job {j.job}"
            if j.periods:
                head += f": {_period_text(j.periods)}"
            if j.status == "skipped":
                head += f": skipped, {j.message}"
            lines.append(head)
            if j.status == "error":
                lines.append(f"    ERROR {j.message}")
            lines.append(f"    {'metric':<{name_w}}  {'tag keys':<{keys_w}}  {'series':>8}")
            for m in j.metrics:
                lines.append(f"    {m.name:<{name_w}}  {', '.join(m.tag_keys):<{keys_w}}  {m.series:>8,}")
            incomplete = " (incomplete: see ERROR)" if j.status == "error" else ""
            lines.append(f"    {'job total':<{name_w}}  {'':<{keys_w}}  {j.total:>8,}{incomplete}")
            for c in j.checks:
                lines.append(f"    service check {c.name} ({', '.join(c.tag_keys)}): {c.series:,} series, "
                             "not billed as custom metrics")
        checks = ", ".join(f"{c.name} {c.series:,}" for c in p.checks)
        lines.append(f"  instance {p.instance} total: {p.total:,} custom-metric series"
                     + (f"; service check {checks}" if checks else ""))
        lines.append("")
    errors = sum(len(p.errors) for p in plans)
    lines.append(
        f"total: {sum(p.total for p in plans):,} custom-metric series in {len(plans)} instance(s) "
        f"(Datadog bills each distinct metric name and tag set per hour); {_check_series(plans):,} service-check "
        f"series, not billed as custom metrics" + (f"; {errors} error(s)" if errors else "")
    )
    return "\n".join(lines)
