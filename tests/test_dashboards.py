"""The overview dashboard: valid, filtered by its template variables, covering the catalogue, drawing the monitors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from mlmon.assets import metric_names, parse_monitor_query, validate_assets
from mlmon.assets.queries import METRIC_MONITOR_TYPES, parse_metric_expressions
from mlmon.assets.syntax import BinaryOp, Call, Expr, Metric, Negate
from mlmon.assets.validate import load_catalogue

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_FILE = "dashboards/mlmon_overview.json"
DASHBOARD = json.loads((ROOT / DASHBOARD_FILE).read_text(encoding="utf-8"))
MONITORS = {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted((ROOT / "monitors").glob("*.json"))}

#: (name, prefix, default) of each template variable, in order
TEMPLATE_VARIABLES = [("env", "env", "*"), ("model", "model", "*"), ("model_version", "model_version", "*"),
                      ("segment", "segment", "*"), ("segment_value", "segment_value", "*"), ("service", "service", "*")]
#: a keyword of each group's title, in the dashboard's order
GROUP_KEYWORDS = ("prediction statistics", "drift", "online quality", "segments", "offline quality", "training feature",
                  "serving inputs", "reproducibility", "agent health", "serving service")
#: the template variables every model metric query is filtered by (agent metrics carry no model tags)...
MODEL_SCOPE = {"$env", "$model", "$model_version"}
#: ...and segment metrics by these too
SEGMENT_SCOPE = MODEL_SCOPE | {"$segment", "$segment_value"}
SERVING_SCOPE = {"$service", "$env"}
#: metric families the dashboard must draw in full...
DRAWN_FAMILIES = ("mlmon.prediction.", "mlmon.online.", "mlmon.segment.", "mlmon.training.", "mlmon.serving.",
                  "mlmon.reproducibility.", "mlmon.agent.")
#: ...except these catalogued metrics, each with the reason it is left out (none today: add one only with a reason)
NOT_DRAWN: dict[str, str] = {}
#: every widget title reads "<what it shows> — good: <what good looks like>"
TITLE_RE = re.compile(r"\S.* — good: \S.*")
#: a threshold marker is a horizontal line, "y = <number>"
MARKER_RE = re.compile(r"y = (-?\d+(?:\.\d+)?)")
INVERSE = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}


class Drawn(NamedTuple):
    """A metric query in an expression and the functions applied to it, outermost first: ``abs(log2(m))`` ->
    ``(m, ("abs", "log2"))``."""

    metric: Metric
    functions: tuple[str, ...] = ()


def drawn_in(expr: Expr, functions: tuple[str, ...] = ()) -> Iterator[Drawn]:
    """Every metric query of an expression, left to right, with the functions around it."""
    if isinstance(expr, Metric):
        yield Drawn(expr, functions)
    elif isinstance(expr, BinaryOp):
        yield from drawn_in(expr.left, functions)
        yield from drawn_in(expr.right, functions)
    elif isinstance(expr, Negate):
        yield from drawn_in(expr.operand, functions)
    elif isinstance(expr, Call):
        for arg in (*expr.args, *(value for _, value in expr.kwargs)):
            yield from drawn_in(arg, (*functions, expr.name))


class MetricMonitor(NamedTuple):
    """A shipped metric monitor: the series it watches (its first metric, with the functions applied to it: the
    calibration band watches ``abs(log2(calibration_vs_model))``, not the calibration) and its thresholds."""

    name: str
    series: Drawn
    comparator: str
    critical: float
    warning: float | None

    def watches(self, drawn: Drawn) -> bool:
        """Whether a dashboard query draws this monitor's series (same metric and functions, scope at least as
        narrow)."""
        scope = set(self.series.metric.scope) - {"*"}
        return (drawn.metric.name == self.series.metric.name and drawn.functions == self.series.functions
                and scope <= set(drawn.metric.scope))


def metric_monitors() -> list[MetricMonitor]:
    monitors = []
    for name, wrapper in MONITORS.items():
        definition = wrapper["definition"]
        if definition["type"] not in METRIC_MONITOR_TYPES:
            continue
        parsed = parse_monitor_query(definition["query"], definition["type"])
        assert parsed.expression is not None and parsed.comparator is not None
        series = next(drawn_in(parsed.expression))
        thresholds = definition["options"]["thresholds"]
        monitors.append(
            MetricMonitor(name, series, parsed.comparator, thresholds["critical"], thresholds.get("warning")))
    return monitors


def groups() -> list[dict[str, Any]]:
    return [widget["definition"] for widget in DASHBOARD["widgets"]]


def widgets(items: Iterable[dict[str, Any]] = DASHBOARD["widgets"]) -> Iterator[dict[str, Any]]:
    """Every widget definition that is not a group, inside groups too."""
    for widget in items:
        definition = widget["definition"]
        if definition["type"] == "group":
            yield from widgets(definition["widgets"])
        else:
            yield definition


def queries(definition: dict[str, Any]) -> dict[str, str]:
    """A widget's metric queries: ``q`` (keyed by position) and ``queries`` (keyed by name)."""
    found = {}
    for i, request in enumerate(definition.get("requests", [])):
        if "q" in request:
            found[f"request {i}"] = request["q"]
        found.update((query["name"], query["query"]) for query in request.get("queries", [])
                     if query.get("data_source") == "metrics")
    return found


def drawn(query: str) -> list[Drawn]:
    return [d for expression in parse_metric_expressions(query) for d in drawn_in(expression)]


def metrics(query: str) -> list[Metric]:
    return [d.metric for d in drawn(query)]


def widget_drawn(definition: dict[str, Any]) -> list[Drawn]:
    return [d for query in queries(definition).values() for d in drawn(query)]


def widget_metrics(definition: dict[str, Any]) -> list[Metric]:
    return [d.metric for d in widget_drawn(definition)]


def marker_value(marker: dict[str, str]) -> float:
    match = MARKER_RE.fullmatch(marker["value"])
    assert match, marker
    return float(match.group(1))


def traffic_light(monitor: MetricMonitor) -> list[dict[str, Any]]:
    """A table cell's colours: red past the alert threshold, green on the good side of warning (or alert)."""
    good = monitor.critical if monitor.warning is None else monitor.warning
    return [{"comparator": monitor.comparator, "value": monitor.critical, "palette": "white_on_red"},
            {"comparator": INVERSE[monitor.comparator], "value": good, "palette": "white_on_green"}]


def test_dashboard_is_valid() -> None:
    """The dashboard passes `mlmon assets validate`: the API's models, its queries, the catalogue."""
    assert [p for p in validate_assets(ROOT) if p.startswith(f"{DASHBOARD_FILE}:")] == []


def test_template_variables() -> None:
    """Template variables are exactly env, model, model_version, segment, segment_value and service, each on its
    own tag, default all."""
    assert [(v["name"], v["prefix"], v["default"]) for v in DASHBOARD["template_variables"]] == TEMPLATE_VARIABLES


def test_ten_ordered_groups_in_order() -> None:
    """The dashboard is ten ordered groups, titled in order (the segments after the model's online quality, the
    serving inputs beside the training features)."""
    assert DASHBOARD["layout_type"] == "ordered"
    assert [(g["type"], g["layout_type"]) for g in groups()] == [("group", "ordered")] * len(GROUP_KEYWORDS)
    titles = [g["title"].lower() for g in groups()]
    assert all(keyword in title for keyword, title in zip(GROUP_KEYWORDS, titles, strict=True)), titles


def test_every_widget_title_says_what_good_looks_like() -> None:
    """Each widget's title reads '<what> — good: <what good looks like>'."""
    assert [d["title"] for d in widgets() if not TITLE_RE.fullmatch(d.get("title", ""))] == []


def test_model_metric_queries_use_the_template_variables() -> None:
    """mlmon model metrics are filtered by $env, $model and $model_version (segment metrics also by $segment and
    $segment_value); agent metrics by $env and not $model."""
    wrong = []
    for definition in widgets():
        for query in queries(definition).values():
            for metric in metrics(query):
                scope = set(metric.scope)
                if metric.name.startswith("mlmon.agent."):
                    fits = "$env" in scope and "$model" not in scope
                elif metric.name.startswith("mlmon.segment."):
                    fits = scope >= SEGMENT_SCOPE
                else:
                    fits = not metric.name.startswith("mlmon.") or scope >= MODEL_SCOPE
                if not fits:
                    wrong.append((definition["title"], query))
    assert wrong == []


def test_serving_group_queries_use_service_and_env() -> None:
    """The serving group's queries are all filtered by $service and $env; no other group reads non-mlmon metrics."""
    *ml_groups, serving = groups()
    serving_metrics = [m for d in widgets(serving["widgets"]) for m in widget_metrics(d)]
    assert serving_metrics
    assert [m for m in serving_metrics if m.name.startswith("mlmon.") or not set(m.scope) >= SERVING_SCOPE] == []
    ml_metrics = [m for g in ml_groups for d in widgets(g["widgets"]) for m in widget_metrics(d)]
    assert [m.name for m in ml_metrics if not m.name.startswith("mlmon.")] == []


def test_agent_health_shows_service_checks_and_monitors() -> None:
    """Every service check, grouped by its tags and filtered like the metrics, and every shipped monitor."""
    agent = groups()[GROUP_KEYWORDS.index("agent health")]
    checks = {d["check"]: (d["grouping"], d["group_by"], d["tags"])
              for d in widgets(agent["widgets"]) if d["type"] == "check_status"}
    assert checks == {"mlmon.warehouse.can_connect": ("cluster", ["instance"], ["$env"]),
                      "mlmon.job.can_run": ("cluster", ["instance", "job"], ["$env"]),
                      "mlmon.predictions.available": ("cluster", ["model"], ["$env", "$model"])}
    (monitor_list,) = [d for d in widgets(agent["widgets"]) if d["type"] == "manage_status"]
    assert monitor_list["query"] == 'tag:"integration:mlmon"'
    assert [name for name, m in MONITORS.items() if "integration:mlmon" not in m["definition"]["tags"]] == []


def test_dashboard_draws_the_whole_catalogue() -> None:
    """Every prediction, online, training, serving, reproducibility and agent metric of metadata.csv is drawn."""
    catalogue, problems = load_catalogue(ROOT)
    assert catalogue is not None, problems
    drawn = {name for d in widgets() for query in queries(d).values() for name in metric_names(query)}
    expected = {name for name in catalogue if name.startswith(DRAWN_FAMILIES)}
    assert sorted(expected - drawn - NOT_DRAWN.keys()) == []
    assert sorted(NOT_DRAWN.keys() - (expected - drawn)) == []  # a stale exception is an error too


def test_threshold_markers_equal_the_monitors() -> None:
    """A timeseries of a monitored series draws exactly its monitor's alert and warning lines, labelled with it."""
    monitors = metric_monitors()
    mismatched = {}
    for definition in widgets():
        if definition["type"] != "timeseries":
            continue
        watching = [m for series in widget_drawn(definition) for m in monitors if m.watches(series)]
        expected = {(m.critical, "error", f"alert: {m.name}") for m in watching} | {
            (m.warning, "warning", f"warning: {m.name}") for m in watching if m.warning is not None}
        drawn = {(marker_value(marker), kind, marker.get("label")) for marker in definition.get("markers", [])
                 if (kind := marker["display_type"].split()[0]) in ("error", "warning")}
        if drawn != expected:
            mismatched[definition["title"]] = (sorted(drawn), sorted(expected))
    assert mismatched == {}


def test_every_metric_monitor_is_drawn() -> None:
    """Each metric monitor's series is on a timeseries (and so, by the test above, its thresholds)."""
    drawn = {m.name for d in widgets() if d["type"] == "timeseries"
             for series in widget_drawn(d) for m in metric_monitors() if m.watches(series)}
    assert sorted({m.name for m in metric_monitors()} - drawn) == []


def test_table_colours_equal_the_monitors() -> None:
    """A table column of a monitored series is red past the alert threshold and green before warning; others plain."""
    monitors = metric_monitors()
    tables = [d for d in widgets() if d["type"] == "query_table"]
    assert tables
    mismatched = {}
    for definition in tables:
        named = queries(definition)
        for request in definition["requests"]:
            for formula in request["formulas"]:
                used = [named[name] for name in re.findall(r"[A-Za-z_]\w*", formula["formula"]) if name in named]
                watching = [m for query in used for series in drawn(query) for m in monitors if m.watches(series)]
                expected = [rule for m in watching for rule in traffic_light(m)]
                if formula.get("conditional_formats", []) != expected:
                    mismatched[f"{definition['title']}: {formula.get('alias')}"] = expected
    assert mismatched == {}
