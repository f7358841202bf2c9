"""``mlmon plan``: how many custom-metric time series each job of a config will create, before anything is sent.

Datadog bills one custom metric per distinct (metric name, tag set) that reports in an hour. For
each instance and job this counts the tag sets the agent would emit, from the config and from
counts of distinct values the warehouse returns (:mod:`mlmon.warehouse.cardinality`: aggregates only, one
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

* each job, by its series rule (``series`` in its module, declared in its
  :class:`~mlmon.jobs.spec.JobSpec`): per (model, model_version) with rows in the period, and per
  feature and top-K value for ``training``;
* the agent, per (instance, job) that runs: its six counters and gauges, plus ``lag_seconds`` for
  window jobs (a job skipped for a missing default-named table sends the six only).

The counts are exact for what the data's shape decides and upper bounds where a value can still
be undefined (a one-class window has no AUC, a window without a day-earlier twin or with fewer
than ``drift_min_rows`` rows no PSI, NULL
columns drop their metric, two values sanitized to the same ``value`` tag share a series).
Service checks (``mlmon.warehouse.can_connect``, ``mlmon.job.can_run``, ``mlmon.predictions.available``) are
listed apart: Datadog does not bill them as custom metrics.

**Cost.** Each count comes with an estimate of what it costs per month: series / 100 *
``init_config.custom_metric_price`` (US dollars per 100 custom metrics per month, default Datadog's list
price, $5). An estimate only: Datadog bills the hourly average of distinct series over the month (a
series that reports in some hours only costs less), each host includes an allotment of custom metrics
(100 on Pro, 200 on Enterprise) that the estimate does not subtract, and contracts differ.

A job whose table is not configured, or left at its default name and absent, is skipped, as
``mlmon run`` does. An unreachable warehouse or a failing statement (a table named in the config
that does not exist, a missing column) is an error naming the instance and table; the other jobs
and instances are still planned.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlmon.cardinality import FirstRun, Period, SeriesCount, tag_keys
from mlmon.config import Config, Instance
from mlmon.config.instance import DEFAULT_CUSTOM_METRIC_PRICE
from mlmon.jobs import JOBS, JobSpec
from mlmon.jobs.spec import absent_default_table
from mlmon.runner import AGENT_METRICS, CAN_CONNECT_CHECK, JOB_CHECK
from mlmon.times import iso
from mlmon.warehouse.engines import Engine, QueryError, WarehouseError, open_engine

Status = Literal["planned", "skipped", "disabled", "error"]
MODEL_KEYS = ("model", "model_version")


@dataclass
class JobPlan:
    """The series one job of one instance will create."""

    job: str
    status: Status
    metrics: list[SeriesCount] = field(default_factory=list)
    checks: list[SeriesCount] = field(default_factory=list)
    periods: list[Period] = field(default_factory=list)
    message: str = ""
    #: ``init_config.series_cap``: a job whose total reaches it would have series left unsent in its first run
    series_cap: int | None = None
    #: ``init_config.custom_metric_price``: US dollars per 100 custom metrics per month
    custom_metric_price: float = DEFAULT_CUSTOM_METRIC_PRICE

    @property
    def total(self) -> int:
        """Custom-metric series of the job."""
        return sum(m.series for m in self.metrics)

    @property
    def monthly_cost(self) -> float:
        """Estimated US dollars per month of the job's series (see the module's **Cost**)."""
        return monthly_cost(self.total, self.custom_metric_price)

    @property
    def over_cap(self) -> bool:
        """Whether a first run would send fewer series than planned (``series_cap`` reached)."""
        return self.series_cap is not None and self.total > self.series_cap


@dataclass
class InstancePlan:
    """The series one instance will create, job by job."""

    instance: str
    engine: str
    jobs: list[JobPlan] = field(default_factory=list)
    checks: list[SeriesCount] = field(default_factory=list)
    #: ``init_config.custom_metric_price``: US dollars per 100 custom metrics per month
    custom_metric_price: float = DEFAULT_CUSTOM_METRIC_PRICE

    @property
    def total(self) -> int:
        """Custom-metric series of the instance."""
        return sum(j.total for j in self.jobs)

    @property
    def monthly_cost(self) -> float:
        """Estimated US dollars per month of the instance's series."""
        return monthly_cost(self.total, self.custom_metric_price)

    @property
    def errors(self) -> list[str]:
        """Distinct error messages of the instance's jobs, in job order."""
        return list(dict.fromkeys(j.message for j in self.jobs if j.status == "error"))


def monthly_cost(series: int, price: float) -> float:
    """Estimated US dollars per month of ``series`` custom metrics at ``price`` per 100 per month."""
    return series * price / 100


def _agent_rows(job: str, base: Sequence[str], *, lag: bool) -> list[SeriesCount]:
    keys = tag_keys(base, "instance", "job")
    names = [n for n in AGENT_METRICS if lag or n != "mlmon.agent.lag_seconds"]
    return [SeriesCount(n, keys, 1) for n in names]


def _plan_job(engine: Engine | None, unreachable: str, instance: Instance, spec: JobSpec, now: float,
              first_run: FirstRun, base: Sequence[str]) -> JobPlan:
    job = spec.name
    agent = _agent_rows(job, base, lag=spec.windowed)
    if engine is None:
        return JobPlan(job, "error", agent, message=unreachable)
    try:
        absent = absent_default_table(engine, instance, spec, explicit_too=True)
        if absent is not None:
            table, problem = absent
            name = getattr(instance.tables, table)
            if not instance.tables.explicit(table):
                return JobPlan(job, "skipped", _agent_rows(job, base, lag=False),
                               message=f"table {name} (default name) does not exist; mlmon run skips the job")
            return JobPlan(job, "error", agent, message=f"instance {instance.name}, job {job}, table {name}: {problem}")
        counted = spec.series(engine, instance, now, first_run, base)
    except WarehouseError as exc:
        return JobPlan(job, "error", agent, message=f"instance {instance.name}: {exc}")
    except QueryError as exc:
        return JobPlan(job, "error", agent, message=spec.failure(instance, exc))
    status: Status = "error" if counted.problems else "planned"
    return JobPlan(job, status, counted.metrics + agent, counted.checks, counted.periods, "; ".join(counted.problems))


def plan_instance(
    config: Config, instance: Instance, now: float, *, lookback: float | None = None,
    engine_factory: Callable[..., Engine] = open_engine,
) -> InstancePlan:
    """The series every job of ``instance`` will create (one connection, closed before returning)."""
    base = config.base_tags(instance)
    # the configured sink's horizon bounds a first run, as in the agent
    first_run = FirstRun(lookback, config.init_config.datadog.horizon)
    price = config.init_config.custom_metric_price
    plan = InstancePlan(instance.name, instance.warehouse.engine, custom_metric_price=price)
    engine: Engine | None = None
    unreachable = ""
    opened = False
    try:
        for job, spec in JOBS.items():
            runs, why = spec.runnable(instance)
            if not runs:
                plan.jobs.append(JobPlan(job, "disabled" if why == "enabled: false" else "skipped", message=why,
                                         custom_metric_price=price))
                continue
            if not opened:
                opened = True
                try:
                    engine = engine_factory(instance.warehouse)
                except WarehouseError as exc:
                    unreachable = f"instance {instance.name}: {exc}"
            job_plan = _plan_job(engine, unreachable, instance, spec, now, first_run, base)
            job_plan.series_cap = config.init_config.series_cap
            job_plan.custom_metric_price = price
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
            "estimated_monthly_cost_usd": j.monthly_cost, "over_series_cap": j.over_cap,
            "periods": [{"start": iso(p.start), "end": iso(p.end), "windows": p.windows} for p in j.periods],
            "metrics": [asdict(m) for m in j.metrics], "service_checks": [asdict(c) for c in j.checks],
        }

    instances = [
        {"instance": p.instance, "engine": p.engine, "total_series": p.total,
         "estimated_monthly_cost_usd": p.monthly_cost, "errors": p.errors,
         "jobs": [job(j) for j in p.jobs], "service_checks": [asdict(c) for c in p.checks]}
        for p in plans
    ]
    return {
        "total_series": sum(p.total for p in plans),
        # an estimate (the module's **Cost**): series / 100 x the price, before any per-host allotment
        "estimated_monthly_cost_usd": _total_cost(plans),
        "custom_metric_price_usd_per_100_per_month": _price(plans),
        "service_check_series": _check_series(plans),
        "errors": [e for p in plans for e in p.errors],
        "instances": instances,
    }


def format_json(plans: Sequence[InstancePlan]) -> str:
    """The plan as one JSON document."""
    return json.dumps(to_dict(plans), indent=2)


def _price(plans: Sequence[InstancePlan]) -> float:
    """The price the plans were costed at (one config: one price)."""
    return plans[0].custom_metric_price if plans else DEFAULT_CUSTOM_METRIC_PRICE


def _total_cost(plans: Sequence[InstancePlan]) -> float:
    return monthly_cost(sum(p.total for p in plans), _price(plans))


def _dollars(amount: float) -> str:
    """``$1,234.50``: an amount in US dollars, to the cent."""
    return f"${amount:,.2f}"


def _cost_text(amount: float) -> str:
    return f"~{_dollars(amount)}/month"


def _price_text(price: float) -> str:
    """``$5`` or ``$7.5``: the price as configured, without trailing zeros."""
    return "$" + f"{price:,f}".rstrip("0").rstrip(".")


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
            lines.append(f"    {'job total':<{name_w}}  {'':<{keys_w}}  {j.total:>8,}  {_cost_text(j.monthly_cost)}"
                         f"{incomplete}")
            if j.over_cap:
                lines.append(f"    WARNING more than init_config.series_cap ({j.series_cap:,}) series: a run sends the "
                             "first ones only and counts the rest in mlmon.agent.series_capped; look for a tag with "
                             "too many values (model_version, a segment_by column), or raise the cap")
            for c in j.checks:
                lines.append(f"    service check {c.name} ({', '.join(c.tag_keys)}): {c.series:,} series, "
                             "not billed as custom metrics")
        checks = ", ".join(f"{c.name} {c.series:,}" for c in p.checks)
        lines.append(f"  instance {p.instance} total: {p.total:,} custom-metric series ({_cost_text(p.monthly_cost)})"
                     + (f"; service check {checks}" if checks else ""))
        lines.append("")
    errors = sum(len(p.errors) for p in plans)
    lines.append(
        f"total: {sum(p.total for p in plans):,} custom-metric series in {len(plans)} instance(s), "
        f"{_cost_text(_total_cost(plans))} (Datadog bills each distinct metric name and tag set per hour); "
        f"{_check_series(plans):,} service-check series, not billed as custom metrics"
        + (f"; {errors} error(s)" if errors else "")
    )
    lines.append(
        f"cost estimated at {_price_text(_price(plans))} per 100 custom metrics per month "
        "(init_config.custom_metric_price), an estimate only: Datadog bills the hourly average of distinct series "
        "over the month and includes an allotment of custom metrics per host, not subtracted here"
    )
    return "\n".join(lines)
