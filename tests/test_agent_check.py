"""mlmon inside the Datadog Agent: ``MlmonCheck`` run against datadog-checks-dev's aggregator stub."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("datadog_checks.base", reason="the agent extra (pip install 'mlmon[agent]') is not installed")

from datadog_checks.base import AgentCheck, ConfigurationError
from datadog_checks.dev.utils import get_metadata_metrics
from tests.reference import prediction_stats
from tests.scenarios import known_answers

from mlmon.agent_check import MlmonCheck
from mlmon.state import StateStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _env_tag_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stub refuses ``env`` (an integration should leave it to the Agent's host tags). mlmon's points have no
    host, so host tags never reach them: mlmon sends ``env`` itself, in every mode, and says so."""
    monkeypatch.setenv("DDEV_SKIP_GENERIC_TAGS_CHECK", "1")


def make_check(tmp_path: Path, warehouse: dict[str, Any], **datadog: Any) -> MlmonCheck:
    init_config = {"env": "test", "state_dir": str(tmp_path / "state"), "datadog": datadog}
    instance = {"name": "ads", "warehouse": warehouse, "tags": ["team:ads"], "min_collection_interval": 600,
                "empty_default_hostname": True, "jobs": {"predictions": {"initial_lookback": "1h"}}}
    return MlmonCheck("mlmon", init_config, [instance])


def test_check_submits_window_metrics_and_keeps_its_watermark(aggregator, dd_run_check, duckdb_warehouse,
                                                              tmp_path) -> None:
    """On a DuckDB warehouse: the window metrics with their tags and reference values, the service checks, every
    name and type as metadata.csv says; a second collection submits no window twice."""
    sc = known_answers(time.time())
    duckdb_warehouse.write_predictions(sc.rows)
    check = make_check(tmp_path, duckdb_warehouse.config())
    dd_run_check(check)
    window_a = sc.values[("ctr_a", "v1", sc.window_ends[0])]
    expected = prediction_stats(window_a)
    tags = ["env:test", "model:ctr_a", "model_version:v1", "team:ads"]
    for name in ("count", "invalid_count", "mean", "median", "same_value_ratio"):
        aggregator.assert_metric(f"mlmon.prediction.{name}", value=pytest.approx(expected[name], rel=1e-12),
                                 tags=tags, hostname="", count=1)
    aggregator.assert_service_check("mlmon.warehouse.can_connect", AgentCheck.OK,
                                    tags=["env:test", "instance:ads", "team:ads"])
    aggregator.assert_service_check("mlmon.job.can_run", AgentCheck.OK,
                                    tags=["env:test", "instance:ads", "job:predictions", "team:ads"])
    aggregator.assert_metric("mlmon.agent.run.errors", value=0,
                             tags=["env:test", "instance:ads", "job:predictions", "team:ads"])
    aggregator.assert_metrics_using_metadata(get_metadata_metrics(), check_submission_type=True)
    watermark = StateStore(tmp_path / "state").load("ads", "predictions").watermark
    assert watermark is not None and watermark >= max(sc.window_ends)
    aggregator.reset()
    dd_run_check(check)
    assert not aggregator.metrics("mlmon.prediction.count")
    aggregator.assert_metric("mlmon.agent.windows_processed", value=0)


def test_broken_warehouse_is_a_critical_service_check_not_an_exception(aggregator, dd_run_check,
                                                                       tmp_path) -> None:
    """A missing DuckDB file: can_connect CRITICAL naming it, run errors counted, check() does not raise."""
    check = make_check(tmp_path, {"engine": "duckdb", "path": str(tmp_path / "gone.duckdb")})
    dd_run_check(check)  # raises if check() raised
    checks = aggregator.service_checks("mlmon.warehouse.can_connect")
    assert checks and all(c.status == AgentCheck.CRITICAL for c in checks)  # one per job that tried
    assert all("gone.duckdb" in c.message and "instance ads" in c.message for c in checks)
    assert sum(m.value for m in aggregator.metrics("mlmon.agent.run.errors")) == len(checks)


def test_late_windows_keep_their_timestamps_through_dogstatsd(aggregator, dd_run_check, duckdb_warehouse,
                                                             tmp_path, udp) -> None:
    """late_windows: dogstatsd: windows older than late_after go to DogStatsD with their window-end timestamps;
    the fresh ones go through the Agent; none is sent both ways."""
    sc = known_answers(time.time())
    duckdb_warehouse.write_predictions(sc.rows)
    listener, port = udp
    check = make_check(tmp_path, duckdb_warehouse.config(), late_windows="dogstatsd", late_after="30m",
                       dogstatsd_host="127.0.0.1", dogstatsd_port=port, historical_ingestion=True)
    dd_run_check(check)
    check.sink.late.close()  # type: ignore[union-attr]
    lines = listener.datagrams()
    now = time.time()
    a, _, c = map(int, sc.window_ends)  # ages: a 35-45 min (late), c 15-25 min (fresh), b either
    late = {}
    for line in lines:
        if line.startswith("mlmon.prediction.count:") and "model:ctr_a" in line:
            late[int(line.rsplit("|T", 1)[1])] = float(line.split(":", 1)[1].split("|", 1)[0])
    assert a in late and c not in late
    assert all(now - end > 30 * 60 for end in late)
    via_agent = [m.value for m in aggregator.metrics("mlmon.prediction.count") if "model:ctr_a" in m.tags]
    # each window of ctr_a once, by one path: its row counts (11, 1, 500), plus the empty windows before
    counts = sorted([v for end, v in late.items() if end in (a, c) or end > a] + via_agent)
    assert [v for v in counts if v] == sorted(float(len(sc.values[("ctr_a", "v1", e)])) for e in sc.window_ends)


def test_example_config_loads_as_an_agent_check(monkeypatch) -> None:
    """conf.d/mlmon.d/conf.yaml.example is a valid Agent check configuration: one check per instance."""
    monkeypatch.setenv("DD_API_KEY", "0123456789abcdef0123456789abcdef")
    data = yaml.safe_load((ROOT / "conf.d" / "mlmon.d" / "conf.yaml.example").read_text())
    from mlmon.config import expand_env

    data = expand_env(data)
    for instance in data["instances"]:
        check = MlmonCheck("mlmon", data["init_config"], [instance])
        assert check.mlmon_config.instances[0].name == instance["name"]


def test_init_agent_writes_the_agent_check_settings(tmp_path, capsys) -> None:
    """`mlmon init --agent` writes a conf.yaml the Agent creates the check from, collecting every 10 minutes
    without the Agent's host name."""
    from mlmon.cli import main

    path = tmp_path / "conf.d" / "mlmon.d" / "conf.yaml"
    assert main(["init", str(path), "--agent", "--name", "ads", "--warehouse", str(tmp_path / "w.duckdb")]) == 0
    data = yaml.safe_load(path.read_text())
    instance = data["instances"][0]
    assert (instance["min_collection_interval"], instance["empty_default_hostname"]) == (600, True)
    check = MlmonCheck("mlmon", data["init_config"], [instance])
    assert check.mlmon_config.instances[0].empty_default_hostname is True
    assert check.mlmon_config.instances[0].name == "ads"


def test_bad_instance_is_a_configuration_error(tmp_path) -> None:
    """A bad key raises ConfigurationError naming the path, when the Agent creates the check."""
    with pytest.raises(ConfigurationError, match=r"instances -> 0 -> warehouse"):
        MlmonCheck("mlmon", {"state_dir": str(tmp_path)}, [{"name": "ads", "warehouse": {"engine": "oracle"}}])


def test_a_run_that_raises_is_can_run_critical_per_job(aggregator, dd_run_check, duckdb_warehouse, tmp_path,
                                                       monkeypatch) -> None:
    """A bug that escapes the run: check() does not raise, and each enabled job of each instance gets can_run
    CRITICAL in the check's own groups (instance, job), naming the error."""
    from mlmon.jobs import JOBS
    from mlmon.runner import Agent

    check = make_check(tmp_path, duckdb_warehouse.config())

    def broken(self: Agent) -> list:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Agent, "run_once", broken)
    dd_run_check(check)
    checks = aggregator.service_checks("mlmon.job.can_run")
    assert sorted(tuple(sorted(t for t in c.tags if t.startswith(("instance:", "job:")))) for c in checks) == sorted(
        ("instance:ads", f"job:{job}") for job in JOBS)
    assert all(c.status == AgentCheck.CRITICAL and "RuntimeError: a bug" in c.message for c in checks)
