"""service_checks.json (Datadog's integration format) is what the agent sends: the checks, their statuses and
the tags they are grouped by."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from tests.helpers import DuckDBWarehouse
from tests.scenarios import write_every_table

from mlmon.assets import SERVICE_CHECKS
from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.state import StateStore
from mlmon.testing import RecordingSink

ROOT = Path(__file__).resolve().parents[1]
#: the keys of an entry, as Datadog's validator (datadog_checks.dev ... validate/service_checks.py) requires
KEYS = {"agent_version", "integration", "check", "statuses", "groups", "name", "description"}
STATUSES = ("ok", "warning", "critical", "unknown")
NOW = 1_800_000_000.0
#: the instances' own tags (init_config.env and the instance's static tags): not a group of any check
OWN_TAGS = {"env:test", "team:ads"}


def declared() -> dict[str, dict]:
    entries = json.loads((ROOT / "service_checks.json").read_text(encoding="utf-8"))
    assert isinstance(entries, list)
    by_check = {entry["check"]: entry for entry in entries}
    assert len(by_check) == len(entries), "a check declared twice"
    return by_check


def test_entries_are_in_datadogs_format() -> None:
    """Each entry has exactly Datadog's keys, an x.y.z agent_version, a valid check name, the integration
    name of the manifest, known statuses and a list of groups; names are unique."""
    manifest = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))
    integration = manifest["assets"]["integration"]["source_type_name"]
    names = set()
    for check, entry in declared().items():
        assert set(entry) == KEYS, (check, sorted(set(entry) ^ KEYS))
        assert re.fullmatch(r"\d+\.\d+\.\d+", entry["agent_version"]), check
        assert re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+", check), check
        assert entry["integration"] == integration, check
        assert entry["statuses"] and set(entry["statuses"]) <= set(STATUSES), check
        assert isinstance(entry["groups"], list) and all(isinstance(g, str) for g in entry["groups"]), check
        assert entry["name"] and entry["name"] not in names, check
        names.add(entry["name"])
        assert entry["description"], check
    assert set(declared()) == SERVICE_CHECKS  # the names `mlmon assets validate` accepts in monitors


def run_every_check(tmp_path: Path) -> RecordingSink:
    """One run of four instances that, between them, send every check in every status it can have.

    * ``ads``: every table, all five jobs: ``can_connect``, ``can_run`` and ``available`` OK, and
      ``available`` CRITICAL for the windows in which a model seen in the last day served nothing;
    * ``down``: its DuckDB file does not exist: ``can_connect`` CRITICAL;
    * ``broken``: its predictions ``ts`` column is mapped to one that does not exist: ``can_run``
      CRITICAL, and ``available`` CRITICAL for its configured model (the statement failed);
    * ``ahead``: its predictions watermark was set while the clock was ahead: ``can_run`` WARNING.
    """
    warehouse = DuckDBWarehouse(tmp_path / "full.duckdb")
    write_every_table(warehouse, NOW)
    end = (NOW - 300) // 600 * 600
    only_predictions = {job: {"enabled": False} for job in ("quality", "reproducibility", "training",
                                                              "serving_features")}
    state = tmp_path / "state"
    store = StateStore(state)
    ahead = store.load("ahead", "predictions")
    ahead.advance("", end + 86400)
    store.save("ahead", "predictions", ahead)
    config = parse_config({
        "init_config": {"env": "test", "state_dir": str(state)},
        "instances": [
            {"name": "ads", "warehouse": warehouse.config(), "tags": ["team:ads"],
             "tables": {"serving_features": "serving_features"},
             "jobs": {"predictions": {"initial_lookback": "4h"}, "quality": {"initial_lookback": "4h"},
                      "reproducibility": {"initial_lookback": "4h"},
                      "training": {"features": ["age", "device", "bid_floor"]},
                      "serving_features": {"features": ["age", "device", "bid_floor"], "initial_lookback": "4h"}}},
            {"name": "down", "warehouse": {"engine": "duckdb", "path": str(tmp_path / "missing.duckdb")},
             "tags": ["team:ads"], "jobs": only_predictions},
            {"name": "broken", "warehouse": warehouse.config(), "tags": ["team:ads"], "models": ["ctr"],
             "columns": {"predictions": {"ts": "served_at"}}, "jobs": only_predictions},
            {"name": "ahead", "warehouse": warehouse.config(), "tags": ["team:ads"], "jobs": only_predictions},
        ],
    })
    sink = RecordingSink()
    reports = Agent(config, sink, clock=lambda: NOW).run_once()
    assert {(r.instance, r.job) for r in reports} >= {("ads", job) for job in (
        "predictions", "quality", "reproducibility", "training", "serving_features")}
    assert not [m for r in reports if r.instance == "ads" for m in r.messages]
    return sink


def test_every_check_sent_is_declared_with_its_statuses_and_groups(tmp_path) -> None:
    """Run the agent so that each check goes through each status it can have, then hold what it sent to
    service_checks.json: every check sent is declared; its tags, less the instance's own (env and static
    tags), are exactly the declared groups; every declared check is sent, in every declared status."""
    sink = run_every_check(tmp_path)
    checks = declared()
    statuses: dict[str, set[str]] = defaultdict(set)
    for sent in sink.checks:
        assert sent.name in checks, f"sent but not in service_checks.json: {sent.name}"
        own = set(sent.tags) & OWN_TAGS
        assert own == OWN_TAGS, (sent.name, sent.tags)
        groups = {tag.split(":", 1)[0] for tag in set(sent.tags) - own}
        assert groups == set(checks[sent.name]["groups"]), (sent.name, sent.tags)
        statuses[sent.name].add(sent.status.name.lower())
    assert set(statuses) == set(checks), f"declared but never sent: {sorted(set(checks) - set(statuses))}"
    for name, entry in checks.items():
        assert statuses[name] == set(entry["statuses"]), name
