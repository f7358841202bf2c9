"""Assets: dashboards and monitors held to Datadog's API models, their queries parsed, their metrics catalogued."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from datadog_api_client import Configuration
from datadog_api_client.model_utils import validate_and_convert_types
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.monitor import Monitor

from mlmon.assets import QueryError, metric_names, parse_monitor_query, validate_assets
from mlmon.assets.queries import parse_metric_expressions
from mlmon.assets.syntax import BinaryOp, Call, Metric
from mlmon.cli import main

ROOT = Path(__file__).resolve().parents[1]

DASHBOARD = {
    "title": "mlmon test",
    "layout_type": "ordered",
    "template_variables": [{"name": "env", "prefix": "env", "default": "*"}],
    "widgets": [
        {"definition": {"type": "timeseries", "title": "Predictions",
                        "requests": [{"q": "sum:mlmon.prediction.count{$env} by {model}", "display_type": "bars"}]}},
    ],
}
MONITOR = {
    "version": 2,
    "created_at": "2026-11-22",
    "last_updated_at": "2026-12-01",
    "title": "Model stale",
    "description": "The latest trained version is too old.",
    "tags": ["integration:mlmon"],
    "definition": {
        "name": "[mlmon] Model stale",
        "type": "query alert",
        "query": "max(last_2h):max:mlmon.training.model_age_hours{*} by {model} > 48",
        "message": "Model {{model.name}} is stale.",
        "options": {"thresholds": {"critical": 48}, "notify_no_data": False},
    },
}
DASHBOARD_FILE, MONITOR_FILE = "dashboards/overview.json", "monitors/model_stale.json"
BAD_WIDGET_TYPE = (f"{DASHBOARD_FILE}: $.widgets[0].definition.type: "
                   "unknown widget type 'timeserie' (did you mean 'timeseries'?)")


def write_assets(root: Path, dashboard: dict, monitor: dict) -> Path:
    for name, document in ((DASHBOARD_FILE, dashboard), (MONITOR_FILE, monitor)):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(document, indent=2))
    shutil.copy(ROOT / "metadata.csv", root / "metadata.csv")
    return root


@pytest.fixture
def assets(tmp_path) -> Path:
    return write_assets(tmp_path, DASHBOARD, MONITOR)


def planted(tmp_path: Path, change) -> list[str]:
    dashboard, monitor = copy.deepcopy(DASHBOARD), copy.deepcopy(MONITOR)
    change(dashboard, monitor)
    return validate_assets(write_assets(tmp_path, dashboard, monitor))


def test_shipped_assets_are_valid() -> None:
    """Every dashboard and monitor in the repository passes (models, queries, catalogue)."""
    assert validate_assets(ROOT) == []


def test_minimal_assets_are_valid_and_the_client_agrees(assets) -> None:
    """The test's own dashboard and monitor pass, and the client parses them without UnparsedObject."""
    assert validate_assets(assets) == []
    for document, model in ((DASHBOARD, Dashboard), (MONITOR["definition"], Monitor)):
        parsed = validate_and_convert_types(copy.deepcopy(document), (model,), ["received_data"], True, True,
                                            configuration=Configuration())
        assert not parsed._unparsed, model


def _formula_request(query: str) -> list[dict]:
    return [{"queries": [{"data_source": "metrics", "name": "q1", "query": query}],
             "formulas": [{"formula": "q1"}], "response_format": "timeseries"}]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d, m: d["widgets"][0]["definition"].update(type="timeserie"),
         BAD_WIDGET_TYPE),
        (lambda d, m: m["definition"]["options"].update(notify_nodata_typo=True),
         f"{MONITOR_FILE}: $.definition.options.notify_nodata_typo: unknown key (did you mean 'notify_no_data'?)"),
        (lambda d, m: m["definition"].update(type="metric alerts"),
         f"{MONITOR_FILE}: $.definition.type: 'metric alerts' is not an allowed value (did you mean 'metric alert'?)"),
        (lambda d, m: m["definition"].update(query="max(last_2h):max:mlmon.training.model_age_hours{*} by {model}"),
         f"{MONITOR_FILE}: $.definition.query: malformed query: column 62: "
         "expected a comparator (>, >=, <, <=) and a threshold, found end of query"),
        (lambda d, m: d["widgets"][0]["definition"]["requests"][0].update(q="sum:mlmon.prediction.count{$env"),
         f"{DASHBOARD_FILE}: $.widgets[0].definition.requests[0].q: malformed query: "
         "column 27: unbalanced braces: '{' is never closed"),
        (lambda d, m: m["definition"].update(query="max(last_2h):max:mlmon.training.model_age_days{*} > 2"),
         f"{MONITOR_FILE}: $.definition.query: unknown metric 'mlmon.training.model_age_days': not in metadata.csv"),
        (lambda d, m: d["widgets"][0]["definition"].update(requests=_formula_request("avg:mlmon.prediction.psy{*}")),
         f"{DASHBOARD_FILE}: $.widgets[0].definition.requests[0].queries[0].query: "
         "unknown metric 'mlmon.prediction.psy': not in metadata.csv"),
        (lambda d, m: m["definition"].update(
            type="service check", options={}, query='"mlmon.warehouse.up".over("*").last(2).count_by_status()'),
         f"{MONITOR_FILE}: $.definition.query: unknown service check 'mlmon.warehouse.up': "
         "mlmon sends mlmon.job.can_run, mlmon.predictions.available, mlmon.warehouse.can_connect"),
        (lambda d, m: m.pop("title"), f"{MONITOR_FILE}: $: missing required key 'title'"),
        (lambda d, m: m.update(version="1"), f"{MONITOR_FILE}: $.version: expected an integer, got a string"),
        (lambda d, m: m.update(version=1), f"{MONITOR_FILE}: $.version: 1 is not the current recommended-monitor "
                                            "version; expected 2 (with created_at and last_updated_at)"),
        (lambda d, m: m.pop("created_at"), f"{MONITOR_FILE}: $: missing required key 'created_at'"),
        (lambda d, m: m.update(last_updated_at="2026-12-32"),
         f"{MONITOR_FILE}: $.last_updated_at: '2026-12-32' is not a date; expected YYYY-MM-DD"),
        (lambda d, m: m.update(created_at="20261122"),
         f"{MONITOR_FILE}: $.created_at: '20261122' is not a date; expected YYYY-MM-DD"),
        (lambda d, m: m.update(created_at="2026-12-02"),
         f"{MONITOR_FILE}: $.last_updated_at: 2026-12-01 is before created_at 2026-12-02"),
        (lambda d, m: m["definition"].pop("query"), f"{MONITOR_FILE}: $.definition: missing required key 'query'"),
        (lambda d, m: m["definition"].update(id=123),
         f"{MONITOR_FILE}: $.definition.id: read-only key (Datadog sets it; leave it out of the payload)"),
        (lambda d, m: m["definition"]["options"]["thresholds"].update(critical="48"),
         f"{MONITOR_FILE}: $.definition.options.thresholds.critical: expected a number, got a string"),
        (lambda d, m: d["widgets"][0]["definition"].update(requests=[]),
         f"{DASHBOARD_FILE}: $.widgets[0].definition.requests: "
         "Invalid value for `requests`, number of items must be greater than or equal to `1`"),
    ],
    ids=["widget-type", "unknown-option", "enum", "no-comparator", "unbalanced-braces", "uncatalogued-metric",
         "uncatalogued-formula-metric", "unknown-service-check", "missing-wrapper-key", "wrapper-type",
         "wrapper-version-1", "wrapper-no-created-at", "wrapper-bad-date", "wrapper-compact-date",
         "wrapper-updated-before-created", "missing-required-key", "read-only-key", "value-type", "library-validation"],
)
def test_planted_error_is_reported_with_file_and_path(tmp_path, change, problem) -> None:
    """Each planted error yields exactly one problem naming the file, the JSON path and the fault."""
    assert planted(tmp_path, change) == [problem]


def test_invalid_json_names_file_and_line(assets) -> None:
    """A file that is not JSON is reported with its line and column."""
    (assets / MONITOR_FILE).write_text('{\n  "version": 2,\n}\n')
    assert validate_assets(assets) == [
        f"{MONITOR_FILE}: line 3, column 1: invalid JSON: Expecting property name enclosed in double quotes"]


def test_every_problem_is_reported_not_only_the_first(tmp_path) -> None:
    """Problems in several places and files are all listed, file by file."""
    def change(d, m) -> None:
        d["widgets"][0]["definition"]["title_align"] = "middle"
        d["widgets"][0]["definition"]["requests"][0]["display_type"] = "area"  # allowed
        m["definition"]["options"]["renotify_interval"] = "never"
        m["extra"] = True

    assert planted(tmp_path, change) == [
        f"{DASHBOARD_FILE}: $.widgets[0].definition.title_align: 'middle' is not an allowed value; "
        "expected one of 'center', 'left', 'right'",
        f"{MONITOR_FILE}: $.extra: unknown key; the wrapper has version, created_at, last_updated_at, title, "
        "description, tags, definition",
        f"{MONITOR_FILE}: $.definition.options.renotify_interval: expected an integer, got a string",
    ]


def test_missing_catalogue_is_a_problem(assets) -> None:
    """Without metadata.csv the metric names cannot be checked, and that is said."""
    (assets / "metadata.csv").unlink()
    assert validate_assets(assets) == ["metadata.csv: cannot read (No such file or directory); "
                                       "metric names cannot be checked"]


# --- command line ------------------------------------------------------------------------------


def test_cli_valid_assets_exit_0(assets, capsys) -> None:
    """Valid assets under --root: the count, exit 0."""
    assert main(["assets", "validate", "--root", str(assets)]) == 0
    assert capsys.readouterr().out == "2 asset(s) valid\n"


def test_cli_root_defaults_to_the_shipped_assets(assets, capsys, monkeypatch) -> None:
    """Without --root the shipped assets are validated (here the checkout's: an editable install), not the
    working directory's, even when that holds assets of its own."""
    from mlmon.shipped import shipped_root

    monkeypatch.chdir(assets)
    assert shipped_root() == ROOT
    assert main(["assets", "validate"]) == 0
    shipped = len(list((ROOT / "dashboards").glob("*.json"))) + len(list((ROOT / "monitors").glob("*.json")))
    assert capsys.readouterr().out == f"{shipped} asset(s) valid\n"


@pytest.mark.parametrize("command", ["validate", "sync", "evaluate"])
def test_cli_root_help_names_the_default(capsys, command) -> None:
    """--root's help says that it defaults to the shipped assets, and where they are."""
    with pytest.raises(SystemExit):
        main(["assets", command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default: the assets shipped with mlmon, {ROOT};" in help_text, help_text


@pytest.mark.parametrize(("args", "printed"), [([], ROOT), (["checks.d/mlmon.py"], ROOT / "checks.d" / "mlmon.py"),
                                               (["conf.d/mlmon.d/conf.yaml.example"],
                                                ROOT / "conf.d" / "mlmon.d" / "conf.yaml.example")],
                         ids=["root", "agent-check", "example-config"])
def test_cli_assets_path_prints_where_the_shipped_files_are(capsys, args, printed) -> None:
    """`mlmon assets path [FILE]`: the default --root, or a file in it, for scripts (cp "$(...)" ...)."""
    assert main(["assets", "path", *args]) == 0
    assert capsys.readouterr().out == f"{printed}\n"


def test_cli_assets_path_unknown_file_exit_2(capsys) -> None:
    """A file that is not shipped is a usage error that lists what is."""
    assert main(["assets", "path", "checks.d/other.py"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "checks.d/other.py: not shipped with mlmon" in captured.err
    assert "checks.d/mlmon.py" in captured.err


def test_cli_problems_exit_1(tmp_path, capsys) -> None:
    """Each problem on its own line, then the totals; exit 1."""
    def change(d, m) -> None:
        d["widgets"][0]["definition"]["type"] = "timeserie"
        m["definition"]["type"] = "metric alerts"
        m.pop("tags")

    planted(tmp_path, change)
    assert main(["assets", "validate", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        BAD_WIDGET_TYPE,
        f"{MONITOR_FILE}: $: missing required key 'tags'",
        f"{MONITOR_FILE}: $.definition.type: 'metric alerts' is not an allowed value (did you mean 'metric alert'?)",
        "3 problem(s) in 2 file(s)",
    ]


def test_cli_missing_root_exit_2(tmp_path, capsys) -> None:
    """A root without dashboards/ or monitors/ is a usage error on stderr."""
    assert main(["assets", "validate", "--root", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "nowhere: no dashboards/ or monitors/ directory" in captured.err


# --- query parser ------------------------------------------------------------------------------


def test_metric_monitor_query_fields() -> None:
    """Metric, group tags, time aggregation, window, comparator and threshold come out of a metric query."""
    parsed = parse_monitor_query(
        "avg(last_1h):avg:mlmon.online.logloss_vs_offline{env:prod} by {model} > 1.25", "query alert")
    assert parsed.kind == "metric" and parsed.metrics == {"mlmon.online.logloss_vs_offline"}
    assert parsed.group_by == ("model",)
    assert (parsed.time_aggregation, parsed.timeframe, parsed.window_seconds) == ("avg", "last_1h", 3600)
    assert (parsed.comparator, parsed.threshold) == (">", 1.25)
    assert parsed.expression == Metric("avg", "mlmon.online.logloss_vs_offline", ("env:prod",), ("model",))


def test_methods_after_group_by() -> None:
    """``by {...}.as_count()`` keeps the group tags and records the method."""
    parsed = parse_monitor_query("min(last_2h):sum:mlmon.prediction.count{*} by {model}.as_count() < 1", "metric alert")
    assert parsed.expression == Metric("sum", "mlmon.prediction.count", ("*",), ("model",), (Call("as_count"),))
    assert (parsed.comparator, parsed.threshold, parsed.window_seconds) == ("<", 1.0, 7200)


def test_arithmetic_of_several_metrics() -> None:
    """Functions and arithmetic over several metric queries parse into a tree naming every metric."""
    parsed = parse_monitor_query("avg(last_4h):abs(avg:a{x} - avg:b{x}) > 0.1", "query alert")
    assert parsed.metrics == {"a", "b"}
    assert parsed.expression == Call("abs", (BinaryOp("-", Metric("avg", "a", ("x",)), Metric("avg", "b", ("x",))),))


@pytest.mark.parametrize(
    ("query", "aggregation", "change", "timeframe", "shift", "threshold"),
    [
        ("sum(last_5m):sum:mlmon.agent.run.errors{*}.as_count() >= 1", "sum", None, "last_5m", None, 1.0),
        ("last(last_1d):max:mlmon.training.rows{*} by {model,model_version} <= 0", "last", None, "last_1d", None, 0.0),
        ("max(last_1w):p95:mlmon.agent.lag_seconds{*}.rollup(max, 60) > 3600", "max", None, "last_1w", None, 3600.0),
        ("pct_change(avg(last_1h),last_1d):avg:mlmon.training.rows{*} by {model} < -30",
         "avg", "pct_change", "last_1h", "last_1d", -30.0),
        ("change(max(last_5m),1h_ago):avg:mlmon.prediction.mean{env:prod,!model:x} > 2e-1",
         "max", "change", "last_5m", "1h_ago", 0.2),
    ],
    ids=["sum", "last", "percentile-rollup", "pct_change", "change"],
)
def test_time_aggregations(query, aggregation, change, timeframe, shift, threshold) -> None:
    """avg/min/max/sum/last and change/pct_change with their shift parse with their timeframe."""
    parsed = parse_monitor_query(query, "query alert")
    assert (parsed.time_aggregation, parsed.change, parsed.timeframe, parsed.timeshift, parsed.threshold) == (
        aggregation, change, timeframe, shift, threshold)


@pytest.mark.parametrize(
    "query",
    [
        '"mlmon.warehouse.can_connect".over("env:prod","team:ads").by("instance").last(2).count_by_status()',
        '"mlmon.warehouse.can_connect".over("env:prod", "team:ads").last(2).by("instance").count_by_status()',
    ],
    ids=["by-then-last", "last-then-by"],
)
def test_service_check_query_fields(query) -> None:
    """Check name, .over() tags, .by() tags and last(n) come out in either method order."""
    parsed = parse_monitor_query(query, "service check")
    assert parsed.kind == "service_check" and parsed.check == "mlmon.warehouse.can_connect"
    assert (parsed.over, parsed.group_by, parsed.last, parsed.metrics) == (
        ("env:prod", "team:ads"), ("instance",), 2, frozenset())


@pytest.mark.parametrize(
    ("query", "monitor_type", "message"),
    [
        ("avg(last_1h):avg:mlmon.x{*}", "query alert", "column 28: expected a comparator"),
        ("avg(last_1h):avg:mlmon.x{env:prod > 1", "query alert", r"column 25: unbalanced braces: '\{' is never"),
        ("avg(last_1h):avg:mlmon.x{env}} > 1", "query alert", r"column 30: unbalanced braces: '\}' closes nothing"),
        ("avg(last_1h):abs(avg:mlmon.x{*} > 1", "query alert", r"column 33: expected ',' or '\)' to close the '\('"),
        ("avg(last_1x):avg:mlmon.x{*} > 1", "query alert", "column 5: expected a timeframe like last_5m"),
        ("median(last_1h):avg:mlmon.x{*} > 1", "query alert", "column 1: expected a time aggregation"),
        ("change(avg(last_5m)):avg:mlmon.x{*} > 1", "query alert", "column 20: expected ',' and a shift"),
        ("avg(last_1h):mean:mlmon.x{*} > 1", "query alert", "column 14: expected a space aggregation"),
        ("avg(last_1h):avg:mlmon.x > 1", "query alert", r"column 26: expected a scope like \{\*\}"),
        ("avg(last_1h):avg:mlmon.x{*} by model > 1", "query alert", "column 32: expected group tags"),
        ("avg(last_1h):avg:mlmon.x{*}.as_cnt() > 1", "query alert", "column 29: expected a method"),
        ("avg(last_1h):avg:mlmon.x{*} > high", "query alert", "column 31: expected a numeric threshold"),
        ("avg(last_1h):avg:mlmon.x{a,,b} > 1", "query alert", "column 25: empty tag"),
        ("avg(last_1h):avg:mlmon.x{*} & 1", "query alert", "column 29: unexpected character '&'"),
        ('"mlmon.x".over("*").count_by_status()', "service check", r"needs \.last\(<n>\)"),
        ('"mlmon.x".over().last(1).count_by_status()', "service check", r"\.over\(\) needs at least one tag"),
        ('"mlmon.x".over("*").last(0).count_by_status()', "service check", "column 26: .last.. takes a positive"),
        ('"mlmon.x".over("*").last(1)', "service check", "column 28: expected '.' and the next method"),
        ('mlmon.x.over("*").last(1).count_by_status()', "service check", "column 1: expected a quoted check name"),
        ("avg(last_1h):avg:mlmon.x{*} > 1", "log alert", "cannot parse queries of monitor type 'log alert'"),
    ],
    ids=["no-comparator", "unclosed-brace", "stray-brace", "unclosed-paren", "timeframe", "time-aggregation",
         "change-without-shift", "space-aggregation", "no-scope", "by-without-braces", "method", "threshold",
         "empty-tag", "bad-character", "no-last", "empty-over", "last-zero", "no-count-by-status", "unquoted-check",
         "unsupported-type"],
)
def test_malformed_queries_are_refused(query, monitor_type, message) -> None:
    """A malformed query raises QueryError saying what was expected and where."""
    with pytest.raises(QueryError, match=message):
        parse_monitor_query(query, monitor_type)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("max(last_2h):max:mlmon.training.model_age_hours{*} by {model} > 48", {"mlmon.training.model_age_hours"}),
        ("avg:mlmon.prediction.psi{$env,$model} by {model}", {"mlmon.prediction.psi"}),
        ("top(sum:mlmon.prediction.count{*} by {model}.as_count(), 10, 'sum', 'desc'), avg:mlmon.prediction.mean{*}",
         {"mlmon.prediction.count", "mlmon.prediction.mean"}),
        ("anomalies(avg:mlmon.online.auc{env:prod AND model:a}, 'agile', 2, direction='below') * 100",
         {"mlmon.online.auc"}),
        ('"mlmon.warehouse.can_connect".over("*").last(2).count_by_status()', set()),
    ],
    ids=["monitor", "template-variables", "comma-separated", "keyword-arguments", "service-check"],
)
def test_metric_names(query, names) -> None:
    """metric_names finds every metric in monitor and dashboard queries (none in a service check)."""
    assert metric_names(query) == names


def test_dashboard_query_with_trailing_garbage_is_refused() -> None:
    """A dashboard query must end after its expressions."""
    with pytest.raises(QueryError, match="column 16: expected ',' or end of query, found 'avg'"):
        parse_metric_expressions("avg:mlmon.x{*} avg:mlmon.y{*}")


def test_parsed_query_is_frozen() -> None:
    """ParsedQuery cannot be changed after parsing."""
    parsed = parse_monitor_query("avg(last_1h):avg:mlmon.x{*} > 1", "query alert")
    with pytest.raises(AttributeError):
        parsed.threshold = 2.0  # type: ignore[misc]
