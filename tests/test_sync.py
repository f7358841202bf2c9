"""mlmon assets sync -> the real datadog client -> the loopback intake's monitor and dashboard account."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.helpers import API_KEY, asset_root

from mlmon.assets.sync import desired_assets
from mlmon.cli import main
from mlmon.config import load_config
from mlmon.testing import IntakeServer, Reply

ROOT = Path(__file__).resolve().parents[1]
APP_KEY = "test-app-key-fedcba9876543210"
#: a small valid dashboard, so that dashboards are synced whatever dashboards/ ships
FIXTURE_DASHBOARD = {
    "title": "mlmon sync fixture",
    "description": "A small dashboard for the sync tests.",
    "layout_type": "ordered",
    "template_variables": [{"name": "env", "prefix": "env", "available_values": [], "default": "*"},
                           {"name": "model", "prefix": "model", "available_values": [], "default": "*"}],
    "widgets": [
        {"definition": {"type": "timeseries", "title": "Predictions per window",
                        "requests": [{"q": "sum:mlmon.prediction.count{$env,$model} by {model}",
                                      "display_type": "bars"}]}},
        {"definition": {"type": "note", "content": "Served predictions per model."}},
    ],
}


@pytest.fixture
def account() -> Iterator[IntakeServer]:
    with IntakeServer(valid_keys=(API_KEY,), valid_app_keys=(APP_KEY,)) as server:
        yield server


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The shipped monitors, dashboards and catalogue, plus the fixture dashboard."""
    return asset_root(tmp_path, "sync_fixture", FIXTURE_DASHBOARD)


def write_config(
    path: Path, api_host: str, assets: dict[str, Any] | None = None, app_key: str | None = APP_KEY
) -> Path:
    datadog = {"api_key": API_KEY, "api_host": api_host, **({"app_key": app_key} if app_key else {})}
    init_config = {"datadog": datadog, **({"assets": assets} if assets is not None else {})}
    path.write_text(yaml.safe_dump({"init_config": init_config,
                                    "instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": "w"}}]}))
    return path


def sync(tmp_path: Path, account: IntakeServer, root: Path, *flags: str, **config: Any) -> int:
    cfg = write_config(tmp_path / "conf.yaml", account.url, **config)
    return main(["assets", "sync", "--root", str(root), "--config", str(cfg), *flags])


def files(root: Path, folder: str) -> list[Path]:
    return sorted((root / folder).glob("*.json"))


def monitor(account: IntakeServer, stem: str) -> dict[str, Any]:
    (found,) = [m for m in account.monitors.values() if f"mlmon_asset:{stem}" in m["tags"]]
    return found


def test_first_sync_creates_one_of_each_shipped_asset(tmp_path, account, capsys) -> None:
    """Against the repository's own assets: one monitor per monitors/*.json, one dashboard per dashboards/*.json."""
    assert sync(tmp_path, account, ROOT) == 0
    stems = [p.stem for p in files(ROOT, "monitors")]
    assert sorted(tag for m in account.monitors.values() for tag in m["tags"] if tag.startswith("mlmon_asset:")) == \
        sorted(f"mlmon_asset:{s}" for s in stems)
    assert {m["name"] for m in account.monitors.values()} == \
        {json.loads(p.read_text())["definition"]["name"] for p in files(ROOT, "monitors")}
    assert len(account.dashboards) == len(files(ROOT, "dashboards"))
    assert capsys.readouterr().out.count("created   ") == len(stems) + len(files(ROOT, "dashboards"))


def test_second_sync_writes_nothing_and_keeps_one_copy(tmp_path, account, root, capsys) -> None:
    """Run twice: the second run makes no POST/PUT, reports every asset unchanged, and no duplicate exists."""
    assert sync(tmp_path, account, root) == 0
    writes = len(account.writes())
    capsys.readouterr()
    assert sync(tmp_path, account, root) == 0
    assert len(account.writes()) == writes == len(files(root, "monitors")) + len(files(root, "dashboards"))
    assert len(account.monitors) == len(files(root, "monitors"))
    assert len(account.dashboards) == len(files(root, "dashboards"))
    plan = [line for line in capsys.readouterr().out.splitlines() if line.endswith((")", *"0123456789"))]
    assert len(plan) == writes and all(line.startswith("unchanged ") for line in plan), plan


def test_threshold_override_updates_that_monitor_and_its_query_only(tmp_path, account, root, capsys) -> None:
    """A changed critical/warning is one PUT of that monitor, with the query's threshold rewritten."""
    assert sync(tmp_path, account, root) == 0
    before_monitors, before_dashboards = copy.deepcopy(account.monitors), copy.deepcopy(account.dashboards)
    writes = len(account.writes())
    capsys.readouterr()
    overrides = {"monitors": {"model_stale": {"thresholds": {"critical": 72, "warning": 50}}}}
    assert sync(tmp_path, account, root, assets=overrides) == 0
    stale = monitor(account, "model_stale")
    assert [(r.method, r.path) for r in account.writes()[writes:]] == [("PUT", f"/api/v1/monitor/{stale['id']}")]
    assert stale["query"] == "max(last_2h):max:mlmon.training.model_age_hours{*} by {model} > 72"
    assert stale["options"]["thresholds"] == {"critical": 72, "warning": 50}
    assert {k: m for k, m in account.monitors.items() if k != stale["id"]} == \
        {k: m for k, m in before_monitors.items() if k != stale["id"]}
    assert account.dashboards == before_dashboards
    assert "update    monitor monitors/model_stale.json" in capsys.readouterr().out


def test_notify_handles_and_tags_land_on_monitors(tmp_path, account, root) -> None:
    """Handles end each message (per-monitor ones replace the default); tags are added; team: tags reach dashboards."""
    assets = {"notify": ["@slack-ml-alerts"], "tags": ["team:ads", "cost_center:42"],
              "monitors": {"online_quality_degraded": {"notify": ["@pagerduty-ml"], "tags": ["severity:high"]}}}
    assert sync(tmp_path, account, root, assets=assets) == 0
    for path in files(root, "monitors"):
        got = monitor(account, path.stem)
        special = path.stem == "online_quality_degraded"
        assert got["message"].endswith("\n\n@pagerduty-ml" if special else "\n\n@slack-ml-alerts"), path.stem
        assert {"team:ads", "cost_center:42"} <= set(got["tags"])
        assert ("severity:high" in got["tags"]) == special
    assert "@slack-ml-alerts" not in monitor(account, "online_quality_degraded")["message"]
    (board,) = [d for d in account.dashboards.values() if d["title"] == FIXTURE_DASHBOARD["title"]]
    assert board["tags"] == ["team:ads"]


def test_dry_run_writes_nothing(tmp_path, account, root, capsys) -> None:
    """--dry-run reads the account and prints what it would create or update, with the differing keys."""
    assert sync(tmp_path, account, root, "--dry-run") == 0
    out = capsys.readouterr().out
    assert account.writes() == [] and account.monitors == {} and account.dashboards == {}
    assert out.count("create    ") == len(files(root, "monitors")) + len(files(root, "dashboards"))
    assert "nothing written" in out
    assert sync(tmp_path, account, root) == 0
    writes = len(account.writes())
    capsys.readouterr()
    overrides = {"monitors": {"model_stale": {"thresholds": {"warning": 24}}}}
    assert sync(tmp_path, account, root, "--dry-run", assets=overrides) == 0
    assert len(account.writes()) == writes
    assert monitor(account, "model_stale")["options"]["thresholds"]["warning"] == 30
    assert "monitors/model_stale.json" in (line := next(line for line in capsys.readouterr().out.splitlines()
                                                        if line.startswith("update ")))
    assert "differs: options.thresholds" in line


def test_monitor_edited_in_the_account_is_put_back(tmp_path, account, root, capsys) -> None:
    """A message changed in the UI is restored by the next sync, with one PUT naming the key."""
    assert sync(tmp_path, account, root) == 0
    shipped = monitor(account, "reproducibility_low")["message"]
    monitor(account, "reproducibility_low")["message"] = "edited by hand"
    writes = len(account.writes())
    capsys.readouterr()
    assert sync(tmp_path, account, root) == 0
    assert monitor(account, "reproducibility_low")["message"] == shipped
    assert len(account.writes()) == writes + 1
    assert "(differs: message)" in capsys.readouterr().out


def test_renamed_monitor_is_found_by_its_tag(tmp_path, account, root) -> None:
    """A monitor renamed in the account is updated back, not created again."""
    assert sync(tmp_path, account, root) == 0
    stale = monitor(account, "model_stale")
    stale["name"] = "Renamed in the UI"
    writes = len(account.writes())
    assert sync(tmp_path, account, root) == 0
    assert len(account.monitors) == len(files(root, "monitors"))
    assert monitor(account, "model_stale")["name"] == "[mlmon] Model stale"
    assert [(r.method, r.path) for r in account.writes()[writes:]] == [("PUT", f"/api/v1/monitor/{stale['id']}")]


def test_dashboard_edited_in_the_account_is_put_back(tmp_path, account, root, capsys) -> None:
    """A widget changed in the account is restored; the ids Datadog adds to widgets are not a difference."""
    assert sync(tmp_path, account, root) == 0
    (board,) = [d for d in account.dashboards.values() if d["title"] == FIXTURE_DASHBOARD["title"]]
    board["widgets"][0]["definition"]["title"] = "edited"
    capsys.readouterr()
    assert sync(tmp_path, account, root) == 0
    assert "(differs: widgets[0].definition.title)" in capsys.readouterr().out
    assert account.dashboards[board["id"]]["widgets"][0]["definition"]["title"] == "Predictions per window"
    assert account.writes()[-1].method == "PUT" and account.writes()[-1].path == f"/api/v1/dashboard/{board['id']}"


def test_a_second_copy_is_reported_and_left_alone(tmp_path, account, root, capsys) -> None:
    """A monitor cloned in the UI keeps the identity tag: the oldest copy is synced, the clone is only named."""
    assert sync(tmp_path, account, root) == 0
    clone = {**copy.deepcopy(monitor(account, "model_stale")), "id": 9999, "message": "a clone"}
    account.monitors[9999] = clone
    writes = len(account.writes())
    capsys.readouterr()
    assert sync(tmp_path, account, root) == 0
    assert len(account.writes()) == writes and account.monitors[9999]["message"] == "a clone"
    assert "left as they are: 9999" in capsys.readouterr().out


def test_disabled_monitor_is_not_synced(tmp_path, account, root, capsys) -> None:
    """enabled: false leaves the monitor out of the account."""
    assert sync(tmp_path, account, root, assets={"monitors": {"model_stale": {"enabled": False}}}) == 0
    assert not [m for m in account.monitors.values() if "mlmon_asset:model_stale" in m["tags"]]
    assert len(account.monitors) == len(files(root, "monitors")) - 1
    assert "skip      monitor monitors/model_stale.json" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("reply", "method", "path", "status", "file"),
    [
        (Reply(500, {"errors": ["Internal Server Error"]}), "POST", "/monitor", "HTTP 500",
         "monitors/agent_not_reporting.json"),
        (Reply(403, {"errors": ["Forbidden"]}), "GET", "/monitor", "HTTP 403", "monitors/agent_not_reporting.json"),
        (Reply(500, {"errors": ["Internal Server Error"]}), "GET", "/dashboard", "HTTP 500",
         "dashboards/sync_fixture.json"),
    ],
    ids=["500-on-create", "403-on-lookup", "500-on-dashboard-list"],
)
def test_datadog_failure_exits_1_naming_the_file(tmp_path, account, root, capsys, reply, method, path, status,
                                                 file) -> None:
    """A failed call stops the sync with exit 1, the HTTP status and the asset file on stderr."""
    account.fail_next(reply, method=method, path=path)
    assert sync(tmp_path, account, root) == 1
    err = capsys.readouterr().err
    assert file in err and status in err, err
    assert any(r.status == reply.status for r in account.requests)


def test_missing_app_key_is_a_usage_error(tmp_path, account, root, capsys, monkeypatch) -> None:
    """No application key: exit 2 naming the config key and the environment variable, nothing requested."""
    monkeypatch.delenv("DD_APP_KEY", raising=False)
    monkeypatch.delenv("DATADOG_APP_KEY", raising=False)
    assert sync(tmp_path, account, root, app_key=None) == 2
    err = capsys.readouterr().err
    assert "init_config.datadog.app_key" in err and "DD_APP_KEY" in err
    assert account.requests == []


@pytest.mark.parametrize(
    ("assets", "path", "words"),
    [
        ({"monitors": {"modle_stale": {"thresholds": {"critical": 72}}}},
         "init_config -> assets -> monitors -> modle_stale", "no such monitor"),
        ({"monitors": {"model_stale": {"thresholds": {"critical": 24}}}},
         "init_config -> assets -> monitors -> model_stale -> thresholds", "warning 30 must be below critical 24"),
        ({"notify": ["slack-ml-alerts"]}, "init_config -> assets -> notify -> 0", "notification handle"),
        ({"monitors": {"model_stale": {"thresholds": {"critical": None}}}},
         "init_config -> assets -> monitors -> model_stale -> thresholds", "critical cannot be removed"),
    ],
    ids=["unknown-monitor", "warning-beyond-critical", "bad-handle", "critical-removed"],
)
def test_bad_overrides_are_config_errors(tmp_path, account, root, capsys, assets, path, words) -> None:
    """A bad assets override exits 2 naming the config file and the key, before any request."""
    assert sync(tmp_path, account, root, assets=assets) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "conf.yaml") in err and path in err and words in err, err
    assert account.requests == []


def test_invalid_assets_are_not_synced(tmp_path, account, root, capsys) -> None:
    """Sync refuses to run (exit 1) when assets validate reports problems, and lists them."""
    broken = json.loads((root / "monitors" / "model_stale.json").read_text())
    broken["definition"]["query"] = broken["definition"]["query"].replace("model_age_hours", "model_age_days")
    (root / "monitors" / "model_stale.json").write_text(json.dumps(broken))
    assert sync(tmp_path, account, root) == 1
    assert "monitors/model_stale.json: $.definition.query: unknown metric 'mlmon.training.model_age_days'" in \
        capsys.readouterr().err
    assert account.requests == []


def test_keys_never_appear_in_output(tmp_path, account, root, capsys) -> None:
    """API and application keys are sent as headers and never printed or logged, on success or failure."""
    assert sync(tmp_path, account, root, "--log-level", "DEBUG") == 0
    account.fail_next(Reply(403, {"errors": [f"Forbidden for {API_KEY} / {APP_KEY}"]}), method="PUT")
    monitor(account, "model_stale")["message"] = "edited"
    assert sync(tmp_path, account, root, "--log-level", "DEBUG") == 1
    out, err = capsys.readouterr()
    assert "HTTP 403" in err and "***" in err  # the failure was reported, with the echoed keys hidden
    assert all(r.headers["dd-api-key"] == API_KEY and r.headers["dd-application-key"] == APP_KEY
               for r in account.requests)
    for key in (API_KEY, APP_KEY):
        assert key not in out and key not in err


def test_example_config_overrides_name_shipped_monitors(tmp_path) -> None:
    """The assets section of conf.yaml.example, once uncommented, applies to the shipped monitors."""
    lines = (ROOT / "conf.d" / "mlmon.d" / "conf.yaml.example").read_text().splitlines()
    start = lines.index("  # assets:")
    end = lines.index("", start)
    assert end - start > 3, lines[start:end]  # the example holds notify, tags and monitor overrides
    lines[start:end] = ["  " + line.removeprefix("  # ") for line in lines[start:end]]
    uncommented = tmp_path / "conf.yaml"
    uncommented.write_text("\n".join(lines) + "\n")
    config = load_config(uncommented)
    assets = {a.name: a for a in desired_assets(ROOT, config.init_config.assets, "conf.yaml.example")}
    assert assets["model_stale"].payload is not None
    assert assets["model_stale"].payload["query"].endswith("> 72")
    assert "@pagerduty-ml-oncall" in assets["online_quality_degraded"].payload["message"]
