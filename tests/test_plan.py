"""``mlmon plan``: the series it counts are the series a real agent run emits over the same warehouse."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.helpers import utc
from tests.scenarios import RUN_COLUMNS, write_every_table
from tests.tables import write_table

from mlmon.cli import main
from mlmon.config import Config, parse_config
from mlmon.jobs import JOBS, quality
from mlmon.plan import InstancePlan, plan_config
from mlmon.runner import AGENT_METRICS, Agent
from mlmon.state import StateStore
from mlmon.testing import RecordingSink

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_800_000_000.0
DAY = 86400.0
TABLES = ("predictions", "labels", "replays", "training_runs", "training_features", "serving_features")
#: historical ingestion on, so that a first run (and the plan) covers the whole initial_lookback below
INIT = {"env": "test", "datadog": {"historical_ingestion": True}}
#: periods that cover every window of :func:`write_every_table`
#: drift_min_rows 1: the test windows are small, and the plan counts psi as if every window had enough rows
LOOKBACKS = {"predictions": {"initial_lookback": "5h", "drift_min_rows": 1}, "quality": {"initial_lookback": "4h"},
             "reproducibility": {"initial_lookback": "4h"}}
#: the serving_features job with work: the scenario's serving inputs, psi from one value (as drift_min_rows above)
SERVING = {"features": ["age", "device", "bid_floor"], "top_k": 3, "psi_min_rows": 1, "initial_lookback": "5h"}


def make_config(warehouse: Any, tmp_path: Path, jobs: dict[str, Any] | None = None, **instance: Any) -> Config:
    return parse_config({
        "init_config": {**INIT, "state_dir": str(tmp_path / "state")},
        "instances": [{"name": "ads", "warehouse": warehouse.config(), "tags": ["team:ads"],
                       "tables": {t: warehouse.table(t) for t in TABLES}, "jobs": jobs or {}, **instance}],
    })


def emitted(config: Config, now: float, state_dir: Path) -> dict[str, Counter[str]]:
    """Job -> distinct (name, tags) series per metric name of a first agent run (the reference)."""
    horizon = config.init_config.datadog.horizon  # the configured destination's, as `mlmon run` gets it
    agent = Agent(config, RecordingSink(horizon), clock=lambda: now, store=StateStore(state_dir))
    out = {}
    for instance in config.instances:
        for job in agent.enabled_jobs(instance):
            agent.sink = sink = RecordingSink(horizon)
            agent.run_job(instance, job)
            out[job] = Counter(name for name, _ in {(s.name, s.tags) for s in sink.samples})
    return out


def planned(plan: InstancePlan) -> dict[str, Counter[str]]:
    """Job -> series per metric name, as the plan counts them (zero rows left out)."""
    return {j.job: Counter({m.name: m.series for m in j.metrics if m.series}) for j in plan.jobs if j.metrics}


def write_drift_and_silence(warehouse: Any, now: float) -> None:
    """Day-earlier twins of ctr's predictions (drift references; none for cvr) and a model silent since yesterday."""
    sc = write_every_table(warehouse, now)
    rows = [(f"ref-{rid}", ts - dt.timedelta(days=1), model, version, p)
            for rid, ts, model, version, p in sc.predictions[::4] if model == "ctr"]
    rows.append(("gone-1", utc(now - DAY - 3 * 3600), "gone", "v0", 0.4))
    warehouse.write_predictions(rows, table="predictions")


def test_plan_equals_the_series_an_agent_run_emits(warehouse, tmp_path) -> None:
    """Per job and metric, the plan counts the distinct series a first run emits (drift and silence included)."""
    write_drift_and_silence(warehouse, NOW)
    config = make_config(warehouse, tmp_path, {**LOOKBACKS, "training": {"features": ["age", "device", "bid_floor"]},
                                               "serving_features": SERVING})
    (plan,) = plan_config(config, NOW)
    reference = emitted(config, NOW, tmp_path / "agent")
    assert {"mlmon.prediction.psi", "mlmon.online.auc", "mlmon.training.feature.value_share",
            "mlmon.serving.feature.psi_training"} <= {name for counts in reference.values() for name in counts}
    assert reference["predictions"]["mlmon.prediction.count"] == 3  # ctr v2, cvr v9 and the silent gone v0
    assert reference["predictions"]["mlmon.prediction.psi"] == 1  # ctr only: cvr has no day-earlier twin
    assert planned(plan) == reference
    assert [j.total for j in plan.jobs] == [sum(reference[j].values()) for j in JOBS]
    assert not plan.errors


def test_service_checks_are_listed_apart(warehouse, tmp_path) -> None:
    """Availability checks per expected model, can_connect per instance and can_run per job are counted, not in
    the totals."""
    write_drift_and_silence(warehouse, NOW)
    config = make_config(warehouse, tmp_path, LOOKBACKS)
    (plan,) = plan_config(config, NOW)
    sink = RecordingSink()
    Agent(config, sink, clock=lambda: NOW, store=StateStore(tmp_path / "agent")).run_once()
    sent = Counter(name for name, _ in {(c.name, c.tags) for c in sink.checks})
    counted: Counter[str] = Counter()
    for c in [*plan.checks, *(c for j in plan.jobs for c in j.checks)]:
        counted[c.name] += c.series
    assert counted == sent == Counter({"mlmon.predictions.available": 3, "mlmon.warehouse.can_connect": 1,
                                       "mlmon.job.can_run": 4})
    assert all(not m.name.startswith("mlmon.predictions.available") for j in plan.jobs for m in j.metrics)


def test_a_model_with_two_versions_counts_twice(duckdb_warehouse, tmp_path) -> None:
    """Each prediction metric has one series per (model, version) served in the period."""
    end = (NOW - 300) // 600 * 600
    rows = [(f"{v}-{i}", utc(end - 500 + i), "ctr", v, 0.1 + i / 100) for v in ("v1", "v2") for i in range(20)]
    duckdb_warehouse.write_predictions(rows)
    config = make_config(duckdb_warehouse, tmp_path, {"training": {"enabled": False}},
                         tables={"labels": None, "replays": None, "training_runs": None})
    (plan,) = plan_config(config, NOW)
    counts = planned(plan)["predictions"]
    assert counts["mlmon.prediction.mean"] == counts["mlmon.prediction.count"] == 2
    assert counts == emitted(config, NOW, tmp_path / "agent")["predictions"]


@pytest.mark.parametrize(("distinct", "series"), [(15, 11), (10, 10), (3, 3)], ids=["capped", "exactly-k", "under-k"])
def test_value_share_series_are_capped_at_top_k(duckdb_warehouse, tmp_path, distinct, series) -> None:
    """min(distinct values, top_k), plus one __other__ series when there are more values than top_k."""
    write_table(duckdb_warehouse, "training_runs", RUN_COLUMNS, [("m", "v1", utc(NOW - 3600), 100, 10, 0.3, 0.7)])
    values = [f"d{i % distinct}" for i in range(60)]
    write_table(duckdb_warehouse, "training_features", (("model", "text"), ("model_version", "text"),
                                                        ("device", "text")), [("m", "v1", v) for v in values])
    config = make_config(duckdb_warehouse, tmp_path, {"training": {"features": ["device"], "top_k": 10}},
                         tables={"predictions": None})
    (plan,) = plan_config(config, NOW)
    counts = planned(plan)["training"]
    assert not plan.errors
    assert counts["mlmon.training.feature.value_share"] == series
    assert counts == emitted(config, NOW, tmp_path / "agent")["training"]


def test_lookback_sets_the_period_of_window_jobs(duckdb_warehouse, tmp_path) -> None:
    """--lookback 1h leaves out the hours the scenario's predictions are in; 5h counts them."""
    write_every_table(duckdb_warehouse, NOW)
    config = make_config(duckdb_warehouse, tmp_path)
    short, long = (plan_config(config, NOW, lookback=seconds)[0] for seconds in (3600.0, 5 * 3600.0))
    # 1 h and 5 h of 10-minute windows: 6 and 30 windows, the last one ending at the latest due end
    assert (short.jobs[0].periods[0].windows, long.jobs[0].periods[0].windows) == (6, 30)
    assert planned(short)["predictions"]["mlmon.prediction.mean"] == 0
    assert planned(long)["predictions"]["mlmon.prediction.mean"] == 2


def test_missing_default_table_skips_the_job_like_run(duckdb_warehouse, tmp_path) -> None:
    """No replays table under its default name: the job is skipped and only the agent's seven series count."""
    write_every_table(duckdb_warehouse, NOW)
    import duckdb

    with duckdb.connect(str(duckdb_warehouse.path)) as con:
        con.execute("DROP TABLE replays")
    config = parse_config({"init_config": {"state_dir": str(tmp_path / "state")},
                           "instances": [{"name": "ads", "warehouse": duckdb_warehouse.config(), "jobs": LOOKBACKS}]})
    (plan,) = plan_config(config, NOW)
    job = next(j for j in plan.jobs if j.job == "reproducibility")
    assert job.status == "skipped" and "replays" in job.message
    assert job.total == 7 == sum(emitted(config, NOW, tmp_path / "agent")["reproducibility"].values())
    assert not plan.errors


def write_config(path: Path, instances: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"init_config": {**INIT, "state_dir": str(path.parent / "state")},
                                    "instances": instances}))
    return path


@pytest.fixture
def frozen_clock(monkeypatch) -> None:
    monkeypatch.setattr(time, "time", lambda: NOW)


def test_missing_table_is_named_and_other_jobs_are_planned(duckdb_warehouse, tmp_path, capsys, frozen_clock) -> None:
    """A configured table that does not exist: exit 1, a message naming instance and table, the rest planned."""
    write_every_table(duckdb_warehouse, NOW)
    cfg = write_config(tmp_path / "conf.yaml", [{"name": "ads", "warehouse": duckdb_warehouse.config(),
                                                  "tables": {"replays": "no_such_replays"}, "jobs": LOOKBACKS}])
    assert main(["plan", "--config", str(cfg), "--format", "json"]) == 1
    out, err = capsys.readouterr()
    assert "instance ads, job reproducibility, table no_such_replays:" in err
    jobs = {j["job"]: j for j in json.loads(out)["instances"][0]["jobs"]}
    assert {name: j["status"] for name, j in jobs.items()} == {
        "predictions": "planned", "quality": "planned", "reproducibility": "error", "training": "planned",
        "serving_features": "skipped"}  # no features configured
    assert jobs["quality"]["total_series"] == 2 * len(quality.METRICS) + len(AGENT_METRICS)


def test_unreachable_warehouse_is_named_and_other_instances_are_planned(
    duckdb_warehouse, tmp_path, capsys, frozen_clock
) -> None:
    """A warehouse that cannot be opened: exit 1 and its instance named; the next instance still planned."""
    write_every_table(duckdb_warehouse, NOW)
    cfg = write_config(tmp_path / "conf.yaml", [
        {"name": "gone", "warehouse": {"engine": "duckdb", "path": str(tmp_path / "nowhere" / "w.duckdb")}},
        {"name": "ads", "warehouse": duckdb_warehouse.config(), "tables": {"serving_features": "serving_features"},
         "jobs": {**LOOKBACKS, "serving_features": SERVING}},
    ])
    assert main(["plan", "--config", str(cfg), "--format", "json"]) == 1
    out, err = capsys.readouterr()
    assert "instance gone: cannot open duckdb file" in err
    gone, ads = json.loads(out)["instances"]
    assert {j["job"]: j["status"] for j in gone["jobs"]} == {**dict.fromkeys(JOBS, "error"),
                                                              "serving_features": "skipped"}  # no features
    assert gone["errors"] == [gone["jobs"][0]["message"]]
    assert {j["status"] for j in ads["jobs"]} == {"planned"} and ads["total_series"] > 0


def test_cli_prints_totals_per_job_and_overall(duckdb_warehouse, tmp_path, capsys, frozen_clock) -> None:
    """The text output ends each job with the agent's series count and the whole config with their sum."""
    write_every_table(duckdb_warehouse, NOW)
    instance = {"name": "ads", "warehouse": duckdb_warehouse.config(), "tags": ["team:ads"],
                "jobs": {**LOOKBACKS, "training": {"features": ["age", "device", "bid_floor"]}}}
    cfg = write_config(tmp_path / "conf.yaml", [instance])
    assert main(["plan", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    reference = emitted(parse_config(yaml.safe_load(cfg.read_text())), NOW, tmp_path / "agent")
    job_totals = [int(line.split()[2].replace(",", "")) for line in out.splitlines()  # job total N ~$X/month
                  if line.strip().startswith("job total")]
    assert job_totals == [sum(reference[j].values()) for j in ("predictions", "quality", "reproducibility", "training")]
    assert f"total: {sum(job_totals):,} custom-metric series in 1 instance(s)" in out
    assert "env, team, model, model_version" in out  # static tags shown as keys, each once
    # predictions.available for ctr and cvr, can_connect, can_run for each of the four jobs
    assert "7 service-check series, not billed as custom metrics" in out


def test_json_output_parses_and_adds_up(duckdb_warehouse, tmp_path, capsys, frozen_clock) -> None:
    """--format json is one document whose totals are the sums of its rows."""
    write_every_table(duckdb_warehouse, NOW)
    cfg = write_config(tmp_path / "conf.yaml", [{"name": "ads", "warehouse": duckdb_warehouse.config()}])
    assert main(["plan", "--config", str(cfg), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jobs = doc["instances"][0]["jobs"]
    assert [j["job"] for j in jobs] == list(JOBS)
    for job in jobs:
        assert job["total_series"] == sum(m["series"] for m in job["metrics"])
    assert doc["total_series"] == doc["instances"][0]["total_series"] == sum(j["total_series"] for j in jobs)
    assert doc["errors"] == [] and doc["service_check_series"] >= 1


def test_plan_builds_no_sink(duckdb_warehouse, tmp_path, capsys, monkeypatch, frozen_clock) -> None:
    """Nothing is sent: the command never constructs a sink, even with the API transport and no key."""
    import mlmon.sinks.factory

    def refuse(*args: Any) -> None:
        raise AssertionError("plan built a sink")

    monkeypatch.setattr(mlmon.sinks.factory, "make_sink", refuse)
    monkeypatch.delenv("DD_API_KEY", raising=False)
    write_every_table(duckdb_warehouse, NOW)
    cfg = write_config(tmp_path / "conf.yaml", [{"name": "ads", "warehouse": duckdb_warehouse.config()}])
    assert main(["plan", "--config", str(cfg)]) == 0
    assert "custom-metric series" in capsys.readouterr().out


def test_declared_metrics_are_the_catalogue() -> None:
    """The jobs' and the agent's declared metric names are exactly metadata.csv's, each once."""
    with (ROOT / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        catalogue = [row["metric_name"] for row in csv.DictReader(fh)]
    declared = [*(name for spec in JOBS.values() for name in spec.metrics), *AGENT_METRICS]
    assert len(declared) == len(set(declared))
    assert sorted(declared) == sorted(catalogue)
