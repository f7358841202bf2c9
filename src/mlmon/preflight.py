"""``mlmon check``: every problem with a config, its warehouses and Datadog, not only the first."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from mlmon.config import TABLE_COLUMNS, Config, Instance
from mlmon.runner import JOB_TABLES, JOBS
from mlmon.warehouse.engines import Engine, QueryError, WarehouseError, open_engine
from mlmon.warehouse.sql import bind_source, exists_query, parse_template


def _probe_columns(instance: Instance, table: str) -> tuple[str, ...]:
    extra = instance.jobs.training.features if table == "training_features" else ()
    return (*TABLE_COLUMNS[table], *extra)


def _tables_to_check(instance: Instance) -> dict[str, list[str]]:
    """Table -> the enabled jobs that read it (training_features when features are configured)."""
    tables: dict[str, list[str]] = {}
    for job in JOBS:
        if getattr(instance.jobs, job).enabled:
            for table in JOB_TABLES[job]:
                tables.setdefault(table, []).append(job)
    if instance.jobs.training.enabled and instance.jobs.training.features:
        tables.setdefault("training_features", []).append("training")
    return tables


def probe_query(instance: Instance, table: str) -> exp.Expression:
    """``SELECT <contract columns> FROM <table> WHERE 1 = 0``: checks names without reading rows."""
    columns = ", ".join(f"src.{c}" for c in _probe_columns(instance, table))
    template = parse_template(f"SELECT {columns} FROM __source__ AS src WHERE 1 = 0")
    physical = getattr(instance.tables, table)
    return bind_source(template, physical, instance.columns.get(table, {}))


def check_instance(
    instance: Instance, say: Callable[[str], object], engine_factory: Callable[..., Engine] = open_engine
) -> list[str]:
    """Problems with one instance's warehouse, tables and columns."""
    problems: list[str] = []
    try:
        engine = engine_factory(instance.warehouse)
    except WarehouseError as exc:
        return [f"instance {instance.name}: {exc}"]
    say(f"instance {instance.name}: connected ({engine.dialect})")
    try:
        for table, jobs in _tables_to_check(instance).items():
            names = ", ".join(jobs)
            physical = getattr(instance.tables, table)
            if physical is None:
                say(f"instance {instance.name}: table {table} not configured; job(s) {names} skipped")
                continue
            # features configured means the table is wanted, whatever its name
            if not instance.tables.explicit(table) and table != "training_features":
                try:
                    engine.fetch(exists_query(physical), {})
                except QueryError:
                    say(f"instance {instance.name}: table {physical} (default name) not found; job(s) {names} "
                        "will be skipped")
                    continue
            try:
                engine.fetch(probe_query(instance, table), {})
                say(f"instance {instance.name}: table {physical} has the columns job(s) {names} need")
            except (QueryError, WarehouseError) as exc:
                problems.append(f"instance {instance.name}, table {physical} (job(s) {names}): {exc}")
    finally:
        engine.close()
    return problems


def check_datadog(config: Config, say: Callable[[str], object]) -> list[str]:
    """Validate the API key against ``/api/v1/validate`` when sending through the API."""
    cfg = config.init_config.datadog
    if cfg.transport != "api":
        say(f"datadog: transport {cfg.transport}, no key needed")
        return []
    key = cfg.resolved_api_key()
    if not key:
        return ["datadog: no API key (init_config.datadog.api_key, DD_API_KEY or DATADOG_API_KEY)"]
    from mlmon.sinks.datadog_api import DatadogApiSink

    sink = DatadogApiSink(api_key=key, api_host=cfg.resolved_api_host(), timeout=cfg.timeout, max_retries=0)
    problem = sink.validate()
    if problem:
        return [f"datadog: {problem}"]
    say(f"datadog: API key valid at {cfg.resolved_api_host()}")
    return []


def preflight(config: Config, say: Callable[[str], object]) -> list[str]:
    """Run every check, print progress with ``say`` and each problem as found; return the problems."""
    problems: list[str] = []
    for instance in config.instances:
        problems += check_instance(instance, say)
    problems += check_datadog(config, say)
    for p in problems:
        say(f"PROBLEM {p}")
    return problems
