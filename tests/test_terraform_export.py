"""mlmon assets export --format terraform: .tf.json files whose resources hold what mlmon assets sync sends.

terraform itself is not run (not installed here): every written file is parsed as JSON, its structure held
to Terraform's JSON syntax and the provider's resources, and each resource's JSON string compared with
the body the real sync POSTs to a loopback account for the same config.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.helpers import API_KEY, asset_root

from mlmon.assets.sync import desired_assets
from mlmon.assets.terraform import ASSETS_FILE, MARKER, VERSIONS_FILE, resource_name
from mlmon.cli import main
from mlmon.config import load_config
from mlmon.testing import IntakeServer

ROOT = Path(__file__).resolve().parents[1]
APP_KEY = "test-app-key-fedcba9876543210"
#: a second dashboard, so that more than one datadog_dashboard_json is written
EXTRA_DASHBOARD = {
    "title": "mlmon export fixture",
    "description": "A small dashboard for the export tests.",
    "layout_type": "ordered",
    "widgets": [{"definition": {"type": "timeseries", "title": "Predictions per window",
                                "requests": [{"q": "sum:mlmon.prediction.count{*} by {model}",
                                              "display_type": "bars"}]}}],
}
OVERRIDES = {
    "notify": ["@slack-ml-alerts"],
    "tags": ["team:ads", "cost_center:42"],
    "monitors": {
        "model_stale": {"thresholds": {"critical": 72, "warning": 50}},
        "predictions_shifted": {"thresholds": {"critical": 0.3}},
        "online_quality_degraded": {"notify": ["@pagerduty-ml"], "tags": ["severity:high"]},
        "job_failing": {"enabled": False},
    },
}
#: Terraform reads these strings as templates: the export must keep them literal (not ${NAME}, which the
#: config loader expands)
TEMPLATE_SEQUENCES = {"tags": ["team:${a.b}"], "notify": ["@webhook-%{oops}", "@slack-$${x.y}"]}
#: what terraform-provider-datadog treats as set by Datadog (resource_datadog_*_json.go): never in a payload
PROVIDER_MONITOR_COMPUTED = {"id", "author_handle", "author_name", "classification", "created", "creator",
                             "created_at", "deleted", "modified", "modified_at", "multi", "org_id", "overall_state",
                             "overall_state_modified", "url", "restricted", "run_as"}
PROVIDER_DASHBOARD_COMPUTED = {"id", "author_handle", "author_name", "created_at", "modified_at", "url",
                               "is_read_only"}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The shipped monitors, dashboards and catalogue, plus a second dashboard."""
    return asset_root(tmp_path, "export_fixture", EXTRA_DASHBOARD)


@pytest.fixture
def account() -> Iterator[IntakeServer]:
    with IntakeServer(valid_keys=(API_KEY,), valid_app_keys=(APP_KEY,)) as server:
        yield server


def write_config(path: Path, assets: dict[str, Any] | None = None, api_host: str = "http://127.0.0.1:9") -> Path:
    datadog = {"api_key": API_KEY, "app_key": APP_KEY, "api_host": api_host}
    init_config = {"datadog": datadog, **({"assets": assets} if assets is not None else {})}
    path.write_text(yaml.safe_dump({"init_config": init_config,
                                    "instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": "w"}}]}))
    return path


def export(root: Path, out: Path, config: Path, *flags: str) -> int:
    return main(["assets", "export", "--format", "terraform", "--out", str(out), "--root", str(root),
                 "--config", str(config), *flags])


def read(out: Path) -> dict[str, Any]:
    """Every file in ``out``, parsed as JSON."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(out.iterdir())}


def template_value(raw: str) -> str:
    """What Terraform evaluates a JSON string to: ``$${`` and ``%%{`` are literal, ``${`` or ``%{`` would
    interpolate (HCL's template scanner, left to right)."""
    value, i = [], 0
    while i < len(raw):
        if raw[i:i + 3] in ("$${", "%%{"):
            value.append(raw[i + 1:i + 3])
            i += 3
        elif raw[i:i + 2] in ("${", "%{"):
            raise AssertionError(f"a template sequence Terraform would evaluate at {i}: {raw[i:i + 40]!r}")
        else:
            value.append(raw[i])
            i += 1
    return "".join(value)


def resources(out: Path) -> dict[str, dict[str, Any]]:
    """resource type -> name -> the JSON its string holds, as Terraform evaluates it."""
    blocks = read(out)[ASSETS_FILE].get("resource", {})
    return {kind: {name: json.loads(template_value(body[kind.removeprefix("datadog_").removesuffix("_json")]))
                   for name, body in named.items()}
            for kind, named in blocks.items()}


def posted(account: IntakeServer) -> dict[str, dict[str, Any]]:
    """The bodies a first sync POSTed: resource type -> mlmon_<identity> -> body."""
    found: dict[str, dict[str, Any]] = {"datadog_monitor_json": {}, "datadog_dashboard_json": {}}
    for request in account.requests:
        if request.method != "POST":
            continue
        if request.path == "/api/v1/monitor":
            (identity,) = [t.split(":", 1)[1] for t in request.body["tags"] if t.startswith("mlmon_asset:")]
            found["datadog_monitor_json"][f"mlmon_{identity}"] = request.body
        elif request.path == "/api/v1/dashboard":
            identity = re.search(r"\(mlmon_asset:([^)]+)\)\.$", request.body["description"]).group(1)
            found["datadog_dashboard_json"][f"mlmon_{identity}"] = request.body
    return found


def test_export_writes_a_provider_block_and_one_named_resource_per_asset(tmp_path, root, capsys) -> None:
    """Two files, every one JSON: the required_providers block, and one resource per file named after it."""
    out = tmp_path / "tf" / "nested"  # created, parents too
    assert export(root, out, write_config(tmp_path / "conf.yaml")) == 0
    files = read(out)
    assert sorted(files) == sorted([VERSIONS_FILE, ASSETS_FILE])
    assert files[VERSIONS_FILE] == {"//": MARKER,
                                    "terraform": {"required_providers": {"datadog": {"source": "DataDog/datadog"}}}}
    assert files[ASSETS_FILE]["//"] == MARKER
    blocks = files[ASSETS_FILE]["resource"]
    assert sorted(blocks) == ["datadog_dashboard_json", "datadog_monitor_json"]
    monitors = sorted(root.glob("monitors/*.json"))
    dashboards = sorted(root.glob("dashboards/*.json"))
    assert sorted(blocks["datadog_monitor_json"]) == sorted(f"mlmon_{p.stem}" for p in monitors)
    assert sorted(blocks["datadog_dashboard_json"]) == sorted(f"mlmon_{p.stem}" for p in dashboards)
    assert "mlmon_predictions_shifted" in blocks["datadog_monitor_json"]
    assert "mlmon_mlmon_overview" in blocks["datadog_dashboard_json"]
    for kind, attribute in (("datadog_monitor_json", "monitor"), ("datadog_dashboard_json", "dashboard")):
        for name, body in blocks[kind].items():
            assert IDENTIFIER.fullmatch(name), name
            assert set(body) == {"//", attribute}, body.keys()  # "//": the source file, a comment to Terraform
            assert isinstance(body[attribute], str)
            assert body["//"] == f"{attribute}s/{name.removeprefix('mlmon_')}.json"
    out_text = capsys.readouterr().out
    assert f"{len(monitors)} datadog_monitor_json, {len(dashboards)} datadog_dashboard_json" in out_text


@pytest.mark.parametrize("assets", [None, OVERRIDES, TEMPLATE_SEQUENCES], ids=["no-overrides", "overrides",
                                                                               "template-sequences"])
def test_each_resource_holds_what_sync_sends(tmp_path, root, account, assets) -> None:
    """Round trip: json.loads of each resource's string is the body mlmon assets sync POSTs for the same
    config, resource for resource (a monitor with enabled: false is in neither)."""
    config = write_config(tmp_path / "conf.yaml", assets, api_host=account.url)
    assert export(root, tmp_path / "tf", config) == 0
    assert main(["assets", "sync", "--root", str(root), "--config", str(config)]) == 0
    exported, sent = resources(tmp_path / "tf"), posted(account)
    assert exported == sent
    assert len(sent["datadog_monitor_json"]) == len(list(root.glob("monitors/*.json"))) - (assets is OVERRIDES)
    # and the same through the shared function, resource by resource
    wanted = {resource_name(a.name): a.payload
              for a in desired_assets(root, load_config(config).init_config.assets) if a.payload is not None}
    assert {**exported["datadog_monitor_json"], **exported["datadog_dashboard_json"]} == wanted


def test_overrides_reach_the_exported_payloads(tmp_path, root) -> None:
    """Thresholds (and the query's), notify handles and tags from config are in the resources' JSON."""
    assert export(root, tmp_path / "tf", write_config(tmp_path / "conf.yaml", OVERRIDES)) == 0
    monitors = resources(tmp_path / "tf")["datadog_monitor_json"]
    stale = monitors["mlmon_model_stale"]
    assert stale["options"]["thresholds"] == {"critical": 72, "warning": 50}
    assert stale["query"].endswith("> 72")
    assert monitors["mlmon_predictions_shifted"]["query"].endswith("> 0.3")
    assert "mlmon_job_failing" not in monitors
    for name, monitor in monitors.items():
        special = name == "mlmon_online_quality_degraded"
        assert monitor["message"].endswith("\n\n@pagerduty-ml" if special else "\n\n@slack-ml-alerts"), name
        assert {"team:ads", "cost_center:42", f"mlmon_asset:{name.removeprefix('mlmon_')}"} <= set(monitor["tags"])
        assert ("severity:high" in monitor["tags"]) == special
    for dashboard in resources(tmp_path / "tf")["datadog_dashboard_json"].values():
        assert dashboard["tags"] == ["team:ads"]


def test_template_sequences_are_escaped(tmp_path, root) -> None:
    """${ and %{ in a payload are written $${ and %%{, so that Terraform does not interpolate them."""
    assert export(root, tmp_path / "tf", write_config(tmp_path / "conf.yaml", TEMPLATE_SEQUENCES)) == 0
    raw = read(tmp_path / "tf")[ASSETS_FILE]["resource"]["datadog_monitor_json"]["mlmon_model_stale"]["monitor"]
    assert "team:$${a.b}" in raw and "@webhook-%%{oops}" in raw and "@slack-$$${x.y}" in raw
    monitor = json.loads(template_value(raw))
    assert "team:${a.b}" in monitor["tags"]
    assert monitor["message"].endswith("\n\n@webhook-%{oops} @slack-$${x.y}")


def test_no_field_the_provider_leaves_to_datadog(tmp_path, root) -> None:
    """No id, author, timestamps or other Datadog-set field (the provider ignores them), no widget ids."""
    assert export(root, tmp_path / "tf", write_config(tmp_path / "conf.yaml", OVERRIDES)) == 0
    exported = resources(tmp_path / "tf")
    for monitor in exported["datadog_monitor_json"].values():
        assert not set(monitor) & PROVIDER_MONITOR_COMPUTED
        assert "silenced" not in monitor.get("options", {})

    def widget_ids(widgets: list[dict[str, Any]]) -> list[Any]:
        return [found for w in widgets for found in ([w["id"]] if "id" in w else [])
                + widget_ids(w["definition"].get("widgets", []))]

    for dashboard in exported["datadog_dashboard_json"].values():
        assert not set(dashboard) & PROVIDER_DASHBOARD_COMPUTED
        assert widget_ids(dashboard["widgets"]) == []


def test_export_again_gives_the_same_bytes_and_leaves_other_files(tmp_path, root, capsys) -> None:
    """A second export rewrites its two files identically (an edited one is put back); other files stay."""
    out = tmp_path / "tf"
    out.mkdir()
    (out / "main.tf").write_text('module "mlmon" {}\n')
    (out / "notes.json").write_text("not even JSON")
    config = write_config(tmp_path / "conf.yaml", OVERRIDES)
    assert export(root, out, config) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / ASSETS_FILE).write_text(json.dumps({"//": MARKER, "resource": {}}))
    assert export(root, out, config) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert (out / "main.tf").read_text() == 'module "mlmon" {}\n'
    assert (out / "notes.json").read_text() == "not even JSON"
    # the order of the files does not matter either
    for path in (root / "monitors").glob("*.json"):
        path.write_text(json.dumps(json.loads(path.read_text()), sort_keys=True))
    assert export(root, tmp_path / "again", config) == 0
    assert (tmp_path / "again" / ASSETS_FILE).read_bytes() == first[ASSETS_FILE]


def test_a_file_mlmon_did_not_write_is_not_overwritten(tmp_path, root, capsys) -> None:
    """A user's own mlmon_assets.tf.json is left as it is, with exit 2 and why; nothing else is written."""
    out = tmp_path / "tf"
    out.mkdir()
    (out / ASSETS_FILE).write_text('{"resource": {}}')
    assert export(root, out, write_config(tmp_path / "conf.yaml")) == 2
    assert "was not written by mlmon assets export; not overwriting it" in capsys.readouterr().err
    assert (out / ASSETS_FILE).read_text() == '{"resource": {}}'
    assert not (out / VERSIONS_FILE).exists()


@pytest.mark.parametrize(
    ("assets", "words"),
    [
        ({"monitors": {"modle_stale": {"thresholds": {"critical": 72}}}},
         "init_config -> assets -> monitors -> modle_stale: no such monitor"),
        ({"monitors": {"model_stale": {"thresholds": {"critical": 24}}}},
         "warning 30 must be below critical 24"),
        ({"notify": ["slack-ml-alerts"]}, "init_config -> assets -> notify -> 0"),
    ],
    ids=["unknown-monitor", "warning-beyond-critical", "bad-handle"],
)
def test_bad_config_is_a_usage_error(tmp_path, root, capsys, assets, words) -> None:
    """A bad override: exit 2 naming the config file and the key; --out is not created."""
    config = write_config(tmp_path / "conf.yaml", assets)
    assert export(root, tmp_path / "tf", config) == 2
    err = capsys.readouterr().err
    assert str(config) in err and words in err, err
    assert not (tmp_path / "tf").exists()


def test_missing_config_is_a_usage_error(tmp_path, root, capsys) -> None:
    assert export(root, tmp_path / "tf", tmp_path / "absent.yaml") == 2
    assert f"{tmp_path / 'absent.yaml'}: cannot read config file" in capsys.readouterr().err
    assert not (tmp_path / "tf").exists()


def test_unwritable_out_is_a_failure(tmp_path, root, capsys) -> None:
    """--out under a regular file: exit 1, naming --out; the file is untouched."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert export(root, blocker / "tf", write_config(tmp_path / "conf.yaml")) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mlmon: --out {blocker / 'tf'}: cannot write") and "Traceback" not in err, err
    assert blocker.read_text() == "x"


def test_invalid_assets_are_not_exported(tmp_path, root, capsys) -> None:
    """As for sync: the files must pass mlmon assets validate (exit 1, the problems listed)."""
    broken = json.loads((root / "monitors" / "model_stale.json").read_text())
    broken["definition"]["id"] = 12345
    (root / "monitors" / "model_stale.json").write_text(json.dumps(broken))
    assert export(root, tmp_path / "tf", write_config(tmp_path / "conf.yaml")) == 1
    err = capsys.readouterr().err
    assert "monitors/model_stale.json: $.definition.id" in err and "not exporting: 1 problem(s)" in err, err
    assert not (tmp_path / "tf").exists()


def test_resource_names_are_identifiers_and_clashes_are_refused(tmp_path, root, capsys) -> None:
    """Odd file names become valid identifiers; two files giving one name are refused (exit 2) naming both."""
    assert resource_name("predictions_shifted") == "mlmon_predictions_shifted"
    assert resource_name("Odd name.v2") == "mlmon_odd_name_v2"
    assert resource_name("2x-drift") == "mlmon_2x-drift"
    (root / "dashboards" / "export.fixture.json").write_text(json.dumps(EXTRA_DASHBOARD))
    assert export(root, tmp_path / "tf", write_config(tmp_path / "conf.yaml")) == 2
    err = capsys.readouterr().err
    assert "datadog_dashboard_json.mlmon_export_fixture" in err
    assert "dashboards/export.fixture.json" in err and "dashboards/export_fixture.json" in err, err
    assert not (tmp_path / "tf").exists()
