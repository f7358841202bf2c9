"""The shipped monitors: every required one is there, multi-alert, tuned for late warehouse data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.test_catalogue import catalogue

ROOT = Path(__file__).resolve().parents[1]
MONITORS = {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "monitors").glob("*.json"))}

#: SPEC section 9, one file each
REQUIRED = {
    "offline_quality_regression", "training_rows_drop_prev", "training_rows_drop_30d", "online_quality_degraded",
    "predictions_unavailable", "predictions_shifted", "same_value_ratio_high", "reproducibility_low", "model_stale",
    "feature_collapsed", "agent_not_reporting",
}


def test_every_required_monitor_is_shipped() -> None:
    """One file per monitor of the spec."""
    assert MONITORS.keys() >= REQUIRED, sorted(REQUIRED - MONITORS.keys())


@pytest.mark.parametrize("name", sorted(MONITORS))
def test_monitor_is_multi_alert_and_fits_late_data(name: str) -> None:
    """Grouped by model (agent: instance), no full window required, an explicit no-data choice."""
    definition = MONITORS[name]["definition"]
    query, options = definition["query"], definition["options"]
    group = "instance" if name in ("agent_not_reporting", "job_failing") else "model"
    assert re.search(rf'by \{{{group}[,}}]|\.by\("{group}"[,)]', query), query
    assert "notify_no_data" in options
    if definition["type"] == "query alert":
        assert options["require_full_window"] is False
        assert "evaluation_delay" in options
    assert "Check first" in definition["message"]
    assert "@" not in definition["message"]  # handles are added per account at sync time


@pytest.mark.parametrize("name", sorted(MONITORS))
def test_monitor_names_only_catalogued_metrics(name: str) -> None:
    """Every mlmon.* metric a monitor reads is in metadata.csv, or is one of the service checks the agent sends."""
    query = MONITORS[name]["definition"]["query"]
    names = set(re.findall(r"mlmon\.[a-z0-9_.]+[a-z0-9_]", query))
    assert names, query
    from mlmon.jobs.predictions import AVAILABLE_CHECK
    from mlmon.runner import CAN_CONNECT_CHECK, JOB_CHECK

    known = set(catalogue()) | {AVAILABLE_CHECK, CAN_CONNECT_CHECK, JOB_CHECK}
    assert names <= known, sorted(names - known)


@pytest.mark.parametrize("name", ["online_miscalibrated", "online_quality_degraded"])
def test_online_monitors_do_not_judge_a_new_model_on_its_first_windows(name: str) -> None:
    """A model's first online window is partial (the model, or the agent, started mid-window: a few minutes of
    traffic, a handful of labels) and would be its 3-hour average alone for an hour: new_group_delay of at least the
    window keeps it out, so the first judgement averages full windows (measured: monitors/README.md)."""
    from mlmon.assets.queries import parse_monitor_query

    definition = MONITORS[name]["definition"]
    window = parse_monitor_query(definition["query"], definition["type"]).window_seconds
    assert window is not None and definition["options"]["new_group_delay"] >= window
