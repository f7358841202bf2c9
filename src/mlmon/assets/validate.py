"""``mlmon assets validate``: the shipped dashboards and monitors, held to Datadog's API and to the catalogue.

``dashboards/*.json`` are ``/api/v1/dashboard`` payloads (the client's ``Dashboard`` model);
``monitors/*.json`` are recommended-monitor wrappers (version 2: ``version``, ``created_at``,
``last_updated_at``, ``title``, ``description``, ``tags``) whose ``definition`` is a ``/api/v1/monitor``
payload (``Monitor``). Monitor queries and dashboard metric queries are parsed, and every ``mlmon.``
metric or service check they name must be one the agent sends: metrics from ``metadata.csv``,
service checks from :data:`SERVICE_CHECKS`. Each problem reads ``<file>: <JSON path>: <problem>``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.monitor import Monitor

from mlmon.assets.queries import (
    METRIC_MONITOR_TYPES,
    SERVICE_CHECK_MONITOR_TYPES,
    parse_metric_expressions,
    parse_monitor_query,
)
from mlmon.assets.schema import check_model, child_path, kind_of
from mlmon.assets.syntax import QueryError, metrics_in
from mlmon.shipped import CATALOGUE

METRIC_PREFIX = "mlmon."
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
ASSET_DIRS = ("dashboards", "monitors")
#: the service checks the agent sends (the catalogue of metrics is metadata.csv)
SERVICE_CHECKS = frozenset({"mlmon.warehouse.can_connect", "mlmon.job.can_run", "mlmon.predictions.available"})
#: the recommended-monitor wrapper's version: Datadog's current one, which integrations-core's monitors use
#: and "Export as recommended monitor" writes (version 1 had no dates)
WRAPPER_VERSION = 2
#: the wrapper keys that hold a date, ``YYYY-MM-DD``
WRAPPER_DATES = ("created_at", "last_updated_at")
#: the recommended-monitor wrapper: key -> (JSON type, how a message names it)
WRAPPER_KEYS: Mapping[str, tuple[type, str]] = {
    "version": (int, "an integer"),
    "created_at": (str, "a date string"),
    "last_updated_at": (str, "a date string"),
    "title": (str, "a string"),
    "description": (str, "a string"),
    "tags": (list, "a list of strings"),
    "definition": (dict, "an object"),
}


def asset_files(root: Path) -> list[Path]:
    """The dashboards and monitors under ``root``, in a stable order."""
    return sorted(path for folder in ASSET_DIRS for path in (root / folder).glob("*.json"))


def validate_assets(root: Path) -> list[str]:
    """Every problem in ``root``'s dashboards and monitors, each ``<file>: <JSON path>: <problem>``.

    Raises :class:`FileNotFoundError` when ``root`` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory")
    catalogue, problems = load_catalogue(root)
    for path in asset_files(root):
        relative = path.relative_to(root).as_posix()
        problems.extend(f"{relative}: {problem}" for problem in _validate_file(path, catalogue))
    return problems


def load_catalogue(root: Path) -> tuple[frozenset[str] | None, list[str]]:
    """The metric names in ``root/metadata.csv`` (None when unreadable) and any problem reading it."""
    try:
        with (root / CATALOGUE).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if "metric_name" not in (reader.fieldnames or ()):
                return None, [f"{CATALOGUE}: no metric_name column; metric names cannot be checked"]
            return frozenset(row["metric_name"] for row in reader), []
    except OSError as exc:
        return None, [f"{CATALOGUE}: cannot read ({exc.strerror}); metric names cannot be checked"]


def _validate_file(path: Path, catalogue: frozenset[str] | None) -> list[str]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"cannot read: {exc}"]
    if path.parent.name == "monitors":
        return _validate_monitor(document, catalogue)
    return _validate_dashboard(document, catalogue)


def _validate_monitor(document: Any, catalogue: frozenset[str] | None) -> list[str]:
    if not isinstance(document, dict):
        return [f"$: expected an object (the recommended-monitor wrapper), got {kind_of(document)}"]
    problems = []
    for key, value in document.items():
        if key not in WRAPPER_KEYS:
            problems.append(f"{child_path('$', key)}: unknown key; the wrapper has {', '.join(WRAPPER_KEYS)}")
            continue
        expected, words = WRAPPER_KEYS[key]
        if not isinstance(value, expected) or isinstance(value, bool):
            problems.append(f"$.{key}: expected {words}, got {kind_of(value)}")
        elif isinstance(value, list):
            problems.extend(f"$.tags[{i}]: expected a string, got {kind_of(tag)}"
                            for i, tag in enumerate(value) if not isinstance(tag, str))
    problems.extend(f"$: missing required key {key!r}" for key in WRAPPER_KEYS if key not in document)
    problems.extend(_wrapper_value_problems(document))
    definition = document.get("definition")
    if isinstance(definition, dict):
        problems.extend(check_model(definition, Monitor, "$.definition"))
        problems.extend(_monitor_query_problems(definition, catalogue))
    return problems


def _wrapper_value_problems(document: dict[str, Any]) -> list[str]:
    """The wrapper's version is :data:`WRAPPER_VERSION`; its dates are ``YYYY-MM-DD`` and not updated before
    created (keys of the wrong type are already reported)."""
    problems = []
    version = document.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version != WRAPPER_VERSION:
        problems.append(f"$.version: {version} is not the current recommended-monitor version; expected "
                        f"{WRAPPER_VERSION} (with {' and '.join(WRAPPER_DATES)})")
    dates: dict[str, dt.date] = {}
    for key in WRAPPER_DATES:
        value = document.get(key)
        if isinstance(value, str):
            date = _date(value)
            if date is None:
                problems.append(f"$.{key}: {value!r} is not a date; expected YYYY-MM-DD")
            else:
                dates[key] = date
    if len(dates) == len(WRAPPER_DATES) and dates["last_updated_at"] < dates["created_at"]:
        problems.append(f"$.last_updated_at: {document['last_updated_at']} is before created_at "
                        f"{document['created_at']}")
    return problems


def _date(text: str) -> dt.date | None:
    """``YYYY-MM-DD`` as a date, else None (``fromisoformat`` alone also takes ``20261201`` from Python 3.11)."""
    if not _DATE_RE.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:  # 2026-02-30
        return None


def _monitor_query_problems(definition: dict[str, Any], catalogue: frozenset[str] | None) -> list[str]:
    """Parse the query of a metric or service-check monitor (other types are left to the model check)."""
    query, monitor_type = definition.get("query"), definition.get("type")
    if not isinstance(query, str) or monitor_type not in (*METRIC_MONITOR_TYPES, *SERVICE_CHECK_MONITOR_TYPES):
        return []
    try:
        parsed = parse_monitor_query(query, monitor_type)
    except QueryError as exc:
        return [f"$.definition.query: malformed query: {exc}"]
    checks = () if parsed.check is None else (parsed.check,)
    return _catalogue_problems("$.definition.query", parsed.metrics, checks, catalogue)


def _validate_dashboard(document: Any, catalogue: frozenset[str] | None) -> list[str]:
    problems = check_model(document, Dashboard)
    for path, kind, text in _dashboard_queries(document, "$"):
        if kind == "check":
            problems.extend(_catalogue_problems(path, (), (text,), catalogue))
            continue
        try:
            expressions = parse_metric_expressions(text)
        except QueryError as exc:
            problems.append(f"{path}: malformed query: {exc}")
            continue
        names = {metric.name for expression in expressions for metric in metrics_in(expression)}
        problems.extend(_catalogue_problems(path, names, (), catalogue))
    return problems


def _dashboard_queries(value: Any, path: str, in_requests: bool = False) -> Iterator[tuple[str, str, str]]:
    """``(JSON path, "metrics" | "check", text)`` for each widget request ``q``, each ``data_source:
    metrics`` query and each check-status widget's check."""
    if isinstance(value, dict):
        if in_requests and isinstance(value.get("q"), str):
            yield child_path(path, "q"), "metrics", value["q"]
        if value.get("data_source") == "metrics" and isinstance(value.get("query"), str):
            yield child_path(path, "query"), "metrics", value["query"]
        if value.get("type") == "check_status" and isinstance(value.get("check"), str):
            yield child_path(path, "check"), "check", value["check"]
        for key, item in value.items():
            yield from _dashboard_queries(item, child_path(path, key), in_requests or key == "requests")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _dashboard_queries(item, child_path(path, index), in_requests)


def _catalogue_problems(
    path: str, metrics: Iterable[str], checks: Iterable[str], catalogue: frozenset[str] | None
) -> list[str]:
    problems = [
        f"{path}: unknown metric {name!r}: not in {CATALOGUE}"
        for name in sorted(metrics)
        if catalogue is not None and name.startswith(METRIC_PREFIX) and name not in catalogue
    ]
    problems.extend(
        f"{path}: unknown service check {name!r}: mlmon sends {', '.join(sorted(SERVICE_CHECKS))}"
        for name in checks
        if name.startswith(METRIC_PREFIX) and name not in SERVICE_CHECKS
    )
    return problems
