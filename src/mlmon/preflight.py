"""``mlmon check``: every problem with a config, its warehouses and Datadog, not only the first.

Problems (exit 1): an unreachable warehouse, a missing table or column, a column whose type does not
fit the data contract (read from the probe's result description, no row read), a rejected key.
Warnings (printed as ``WARNING ...``, exit code unchanged): what is valid but probably not meant, such
as a matured hour whose labeled predictions are all of one class against the odds (a labels table that
holds only positives, read without ``missing_label: negative``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from mlmon.config import OPTIONAL_TABLES, TABLE_COLUMNS, Config, Instance
from mlmon.jobs import JOBS, JobSpec
from mlmon.state import check_writable
from mlmon.warehouse.engines import Engine, QueryError, WarehouseError, open_engine, type_kind
from mlmon.warehouse.sql import bind_source, exists_query, parse_template

#: the type kinds (:func:`~mlmon.warehouse.engines.type_kind`) each data-contract column may have, and how to
#: say so. Types mlmon does not recognise (JSON, VARIANT, enums) are not judged. Lenient where the
#: statements are: ids and versions may be numbers (read as their text form), a prediction any number type,
#: a label a number, a boolean or text; time columns must be timestamps (with or without time zone).
EXPECTED_KINDS: Mapping[str, tuple[frozenset[str], str]] = {
    "request_id": (frozenset({"text", "number", "uuid"}), "text (or an integer or UUID id)"),
    "model": (frozenset({"text"}), "text"),
    "model_version": (frozenset({"text", "number"}), "text (or an integer version)"),
    "ts": (frozenset({"timestamp"}), "TIMESTAMP"),
    "label_ts": (frozenset({"timestamp"}), "TIMESTAMP"),
    "trained_at": (frozenset({"timestamp"}), "TIMESTAMP"),
    "prediction": (frozenset({"number"}), "DOUBLE (or another number type)"),
    "label": (frozenset({"number", "boolean", "text"}), "INTEGER, BOOLEAN or text 0/1"),
    **{c: (frozenset({"number"}), "a number type") for c in ("train_rows", "valid_rows", "valid_logloss",
                                                               "valid_auc")},
}


def _probe_columns(instance: Instance, table: str) -> tuple[str, ...]:
    """The contract's columns of ``table``, then the other columns the jobs that run read from it (features)."""
    extra = [c for spec in JOBS.values() if _runs(spec, instance) for c in spec.columns(instance).get(table, ())]
    return tuple(dict.fromkeys([*TABLE_COLUMNS[table], *extra]))


def _runs(spec: JobSpec, instance: Instance) -> bool:
    return bool(spec.settings(instance).enabled) and not spec.idle(instance)


def _tables_to_check(instance: Instance) -> dict[str, list[str]]:
    """Table -> the enabled jobs that read it (training_features when features are configured)."""
    tables: dict[str, list[str]] = {}
    for job, spec in JOBS.items():
        if _runs(spec, instance):
            for table in (*spec.tables_of(instance), *spec.extra_tables(instance)):
                tables.setdefault(table, []).append(job)
    return tables


def probe_query(instance: Instance, table: str) -> exp.Expression:
    """``SELECT <contract columns> FROM <table> WHERE 1 = 0``: checks names without reading rows."""
    columns = ", ".join(f"src.{c}" for c in _probe_columns(instance, table))
    template = parse_template(f"SELECT {columns} FROM __source__ AS src WHERE 1 = 0")
    physical = getattr(instance.tables, table)
    return bind_source(template, physical, instance.columns.get(table, {}))


def type_problems(instance: Instance, table: str, types: list[tuple[str, str]]) -> list[str]:
    """``labels.label is DATE; expected ...`` for each probed column whose type does not fit the contract."""
    physical = getattr(instance.tables, table)
    out = []
    # the contract's columns come first in the probe; feature columns (any type) follow
    for logical, (_, type_name) in zip(TABLE_COLUMNS[table], types, strict=False):
        kinds, expected = EXPECTED_KINDS.get(logical, (frozenset(), ""))
        kind = type_kind(type_name)
        if kinds and kind != "unknown" and kind not in kinds:
            out.append(f"{physical}.{instance.column(table, logical)} is {type_name.upper()}; expected {expected}")
    return out


def _request_id_mismatch(instance: Instance, table: str, kinds: Mapping[str, tuple[str, str]]) -> str | None:
    """A join on request_id between ``table`` and predictions whose types are of different kinds."""
    if table == "predictions" or "predictions" not in kinds or table not in kinds:
        return None
    (kind, name), (pred_kind, pred_name) = kinds[table], kinds["predictions"]
    if "unknown" in (kind, pred_kind) or kind == pred_kind:
        return None
    return (f"{getattr(instance.tables, table)}.{instance.column(table, 'request_id')} is {name.upper()} but "
            f"{instance.tables.predictions}.{instance.column('predictions', 'request_id')} is {pred_name.upper()}; "
            "the join on request_id needs the same kind of type in both (text, a number or UUID)")


_PARTITION_PROBE = parse_template("SELECT src.partition_column FROM __source__ AS src WHERE 1 = 0")


def partition_problems(engine: Engine, instance: Instance, say: Callable[[str], object]) -> list[str]:
    """Each ``partitions:`` column exists and is a DATE or text (``'YYYY-MM-DD'``)."""
    problems = []
    for table, column in sorted(instance.partitions.items()):
        physical = getattr(instance.tables, table)
        if physical is None:
            continue
        where = f"instance {instance.name}, partitions -> {table} ({physical}.{column})"
        try:
            ((_, type_name),) = engine.column_types(bind_source(_PARTITION_PROBE, physical,
                                                                {"partition_column": column}), {})
        except (QueryError, WarehouseError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        if type_kind(type_name) not in ("date", "text", "unknown"):
            problems.append(f"{where}: the column is {type_name.upper()}; expected DATE or 'YYYY-MM-DD' text")
            continue
        say(f"instance {instance.name}: table {physical} is read by its date partition column {column}")
    return problems


def check_instance(
    instance: Instance, say: Callable[[str], object], engine_factory: Callable[..., Engine] = open_engine,
    now: float | None = None,
) -> list[str]:
    """Problems with one instance's warehouse, tables, columns and column types; warnings go to ``say``.

    ``now`` (default: the clock) places the latest matured windows of the label-balance warning.
    """
    problems: list[str] = []
    try:
        engine = engine_factory(instance.warehouse)
    except WarehouseError as exc:
        return [f"instance {instance.name}: {exc}"]
    say(f"instance {instance.name}: connected ({engine.dialect})")
    fitting: set[str] = set()
    id_kinds: dict[str, tuple[str, str]] = {}
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
                    if table in OPTIONAL_TABLES:
                        say(f"instance {instance.name}: table {physical} (default name, optional) not found; "
                            f"{OPTIONAL_TABLES[table]} skipped")
                    else:
                        say(f"instance {instance.name}: table {physical} (default name) not found; job(s) {names} "
                            "will be skipped")
                    continue
            try:
                types = engine.column_types(probe_query(instance, table), {})
            except (QueryError, WarehouseError) as exc:
                problems.append(f"instance {instance.name}, table {physical} (job(s) {names}): {exc}")
                continue
            if "request_id" in TABLE_COLUMNS[table]:
                name = types[TABLE_COLUMNS[table].index("request_id")][1]
                id_kinds[table] = (type_kind(name), name)
            mismatch = _request_id_mismatch(instance, table, id_kinds)
            wrong = type_problems(instance, table, types) + ([mismatch] if mismatch else [])
            problems += [f"instance {instance.name}, table {physical} (job(s) {names}): {w}" for w in wrong]
            if not wrong:
                fitting.add(table)
                say(f"instance {instance.name}: table {physical} has the columns job(s) {names} need, of fitting "
                    "types")
        problems += partition_problems(engine, instance, say)
        for spec in JOBS.values():  # a job's own checks, once the tables it reads fit
            if spec.check is not None and _runs(spec, instance) and set(spec.tables_of(instance)) <= fitting:
                problems += spec.check(engine, instance, time.time() if now is None else now, say)
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


def check_state_dir(config: Config, say: Callable[[str], object]) -> list[str]:
    """Whether ``init_config.state_dir`` takes a file (made if missing): where watermarks and the lock live."""
    problem = check_writable(config.init_config.state_dir)
    if problem:
        return [problem]
    say(f"state_dir {config.init_config.state_dir}: writable")
    return []


Say = Callable[[str], object]


def _sections(config: Config, now: float | None) -> list[tuple[str, str | None, Callable[[Say], list[str]]]]:
    """The checks in the order they run: (section, instance name or None, the check given its ``say``)."""

    def instance_check(instance: Instance) -> Callable[[Say], list[str]]:
        return lambda say: check_instance(instance, say, now=now)

    return [*((f"instance {i.name}", i.name, instance_check(i)) for i in config.instances),
            ("datadog", None, lambda say: check_datadog(config, say)),
            ("state_dir", None, lambda say: check_state_dir(config, say))]


def preflight(config: Config, say: Say, now: float | None = None) -> list[str]:
    """Run every check, print progress and warnings with ``say`` and each problem as found; return the
    problems (warnings are not problems)."""
    problems: list[str] = []
    for _, _, run in _sections(config, now):
        problems += run(say)
    for p in problems:
        say(f"PROBLEM {p}")
    return problems


def preflight_report(config: Config, now: float | None = None) -> dict[str, Any]:
    """The same checks as :func:`preflight`, as JSON data (``mlmon check --format json``): ``ok`` (no problem),
    every ``problems``, ``warnings`` (the ``WARNING`` lines, without the word) and ``notes`` (the other lines),
    and the same per section in ``sections``: one per instance (``section`` ``instance <name>``, ``instance``
    its name), then ``datadog`` and ``state_dir``. Warnings leave ``ok`` true, as they leave the exit code."""
    sections: list[dict[str, Any]] = []
    for name, instance, run in _sections(config, now):
        lines: list[str] = []
        problems = run(lines.append)
        warnings = [line.removeprefix("WARNING ") for line in lines if line.startswith("WARNING ")]
        notes = [line for line in lines if not line.startswith("WARNING ")]
        sections.append({"section": name, **({"instance": instance} if instance else {}), "ok": not problems,
                         "problems": problems, "warnings": warnings, "notes": notes})
    every = {key: [item for s in sections for item in s[key]] for key in ("problems", "warnings", "notes")}
    return {"ok": not every["problems"], **every, "sections": sections}
