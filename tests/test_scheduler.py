"""mlmon run's scheduler: one job per (instance, job), never overlapping, missed runs coalesced."""

from __future__ import annotations

from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.scheduler import build_scheduler
from mlmon.testing import RecordingSink


def test_one_scheduled_job_per_instance_and_job(tmp_path) -> None:
    """Each enabled (instance, job) is scheduled at its interval with max_instances=1 and coalesce."""
    config = parse_config({
        "init_config": {"state_dir": str(tmp_path)},
        "instances": [
            {"name": "a", "warehouse": {"engine": "duckdb", "path": "a.duckdb"},
             "jobs": {"predictions": {"interval": "5m"}}},
            {"name": "b", "warehouse": {"engine": "duckdb", "path": "b.duckdb"},
             "tables": {"labels": None}, "jobs": {"training": {"enabled": False}}},
            {"name": "off", "warehouse": {"engine": "duckdb", "path": "c.duckdb"},
             "tables": {"predictions": None, "training_runs": None}},
        ],
    })
    scheduler = build_scheduler(Agent(config, RecordingSink()))
    jobs = {j.id: j for j in scheduler.get_jobs()}
    assert set(jobs) == {
        "a:predictions", "a:quality", "a:reproducibility", "a:training", "b:predictions", "b:reproducibility",
    }
    assert jobs["a:predictions"].trigger.interval.total_seconds() == 300
    assert jobs["b:predictions"].trigger.interval.total_seconds() == 600
    assert jobs["a:quality"].trigger.interval.total_seconds() == 3600
    assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
