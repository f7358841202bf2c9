"""A ``training_runs`` table left at its default name that does not exist (issue 21, item 5): the quality job
delivers every other metric, skips ``logloss_vs_offline`` and ``auc_vs_offline``, keeps ``mlmon.job.can_run``
OK and says so at debug level only, run after run, as the README promises. A ``training_runs`` the config names
that is missing, or a default-named one that exists but cannot be read, is still a problem (can_run CRITICAL
naming it), and the other metrics are still sent.

The real agent on DuckDB (the control), PostgreSQL through psycopg (``engine: postgres``) and PostgreSQL through
SQLAlchemy (``engine: sqlalchemy``). On PostgreSQL every table is left at its default name and found through
the URL's ``search_path`` (a setup as users have it; the schema is the test's own, so no other test's table is
seen). The quality job runs with one statement per run, and with two lanes (``label_delay_by_model``) and one
window per statement: several statements on the same connection after the failed offline one, the first of them
over windows without a row (no offline statement at all). Over SQLAlchemy the failed statement must not leave the
transaction aborted (PostgreSQL's "current transaction is aborted"): neither the probe that tells a missing table
from a broken one, nor any later statement of the run, may fail because of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from tests.helpers import DuckDBWarehouse, Warehouse
from tests.scenarios import HOUR, LABEL_COLUMNS, PREDICTION_COLUMNS, REPLAY_COLUMNS, RUN_COLUMNS, online_answers
from tests.tables import write_table

from mlmon.config import parse_config
from mlmon.runner import Agent, JobReport
from mlmon.samples import CheckStatus
from mlmon.testing import RecordingSink

NOW = 1_800_000_123.0
#: two runs in a row, each with labeled matured windows to deliver (the second with the state of the first): the
#: scenario's first window, then its two others (``online_answers``' windows end at ``LAST - 2h``, ``LAST - 1h``
#: and ``LAST``, and mature an hour later)
LAST = (NOW - HOUR) // HOUR * HOUR
CLOCKS = (LAST - 60, NOW)
OFFLINE = ("mlmon.online.logloss_vs_offline", "mlmon.online.auc_vs_offline")
#: the quality job: one statement per run; and two lanes with one window per statement, the first windows empty
QUALITY: dict[str, dict[str, Any]] = {
    "one-statement": {"initial_lookback": "4h"},
    "lanes-window-per-statement": {"initial_lookback": "10h", "max_windows_per_query": 1,
                                   "label_delay_by_model": {"cvr": "2h"}},
}
#: the checks no job may fail here (``mlmon.predictions.available`` is CRITICAL for the empty windows of the scenario)
RUN_CHECKS = ("mlmon.job.can_run", "mlmon.warehouse.can_connect")
MISSING_LINE = "table training_runs (default name) not found; logloss_vs_offline and auc_vs_offline not computed"


@dataclass
class Setup:
    """Where the test writes its tables, and the ``warehouse:`` that reads them with every name left default."""

    writer: Warehouse
    warehouse: dict[str, Any]


def with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-c search_path={schema}')}"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("sqlalchemy", marks=pytest.mark.postgres)])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    if request.param == "duckdb":
        duck = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
        yield Setup(duck, duck.config())
        return
    pg = request.getfixturevalue("postgres_warehouse")
    url = with_search_path(pg.url, pg.schema)
    if request.param == "sqlalchemy":
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    yield Setup(pg, {"engine": request.param, "url": url})


def write_scenario(setup: Setup) -> Any:
    """Predictions, labels and replays (every job but training has work); no training_runs table."""
    sc = online_answers(NOW)
    write_table(setup.writer, "predictions", PREDICTION_COLUMNS, sc.predictions)
    write_table(setup.writer, "labels", LABEL_COLUMNS, sc.labels)
    write_table(setup.writer, "replays", REPLAY_COLUMNS, sc.replays)
    return sc


@dataclass
class Run:
    sink: RecordingSink
    reports: dict[str, JobReport]

    def can_run(self, job: str) -> Any:
        (check,) = [c for c in self.sink.checks if c.name == "mlmon.job.can_run" and f"job:{job}" in c.tags]
        return check

    def online(self) -> dict[tuple[str, tuple[str, ...], float], float]:
        return {(s.name, tuple(sorted(s.tags)), s.timestamp): s.value
                for s in self.sink.samples if s.name.startswith("mlmon.online.")}


def run_twice(setup: Setup, state: Path, quality: dict[str, Any], tables: dict[str, Any] | None = None) -> list[Run]:
    """The agent of a config that leaves every table at its default name (but ``tables``), run at each of
    :data:`CLOCKS` (one agent, as ``mlmon run`` keeps it)."""
    instance: dict[str, Any] = {
        "name": "ads", "warehouse": setup.warehouse, "tags": ["team:ads"],
        "jobs": {"quality": quality, "predictions": {"initial_lookback": "5h"},
                 "reproducibility": {"initial_lookback": "4h"}},
    }
    if tables:
        instance["tables"] = tables
    config = parse_config({"init_config": {"env": "test", "state_dir": str(state)}, "instances": [instance]})
    clock = [CLOCKS[0]]
    agent = Agent(config, RecordingSink(), clock=lambda: clock[0])
    runs = []
    for t in CLOCKS:
        clock[0] = t
        sink = RecordingSink()
        agent.sink = sink
        runs.append(Run(sink, {r.job: r for r in agent.run_once()}))
    return runs


def mlmon_records(caplog: pytest.LogCaptureFixture, at_least: int) -> list[str]:
    return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records
            if r.name.startswith("mlmon") and r.levelno >= at_least]


@pytest.mark.parametrize("quality", list(QUALITY.values()), ids=list(QUALITY))
def test_a_missing_default_training_runs_skips_the_offline_metrics_only(
    setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture, quality: dict[str, Any]
) -> None:
    """Two runs in a row: quality delivers, can_run OK, no error, no warning, no _vs_offline metric, the
    debug line; every other mlmon.online point is the one a run with a training_runs table sends."""
    write_scenario(setup)
    caplog.set_level(logging.DEBUG, logger="mlmon")
    runs = run_twice(setup, tmp_path / "state", quality)
    for i, run in enumerate(runs):
        report = run.reports["quality"]
        assert report.errors == 0 and not report.messages, (i, report.messages)
        assert report.windows_processed > 0, i  # each run has matured windows: the offline statement runs
        assert run.can_run("quality").status is CheckStatus.OK, (i, run.can_run("quality").message)
        assert not [(c.name, c.tags, c.message) for c in run.sink.checks
                    if c.name in RUN_CHECKS and c.status is not CheckStatus.OK], i
        assert all(r.errors == 0 for r in run.reports.values()), {j: r.messages for j, r in run.reports.items()}
        assert run.sink.metrics("mlmon.online.labeled_count") and run.sink.metrics("mlmon.online.logloss"), i
        assert not any(run.sink.metrics(name) for name in OFFLINE), i
    assert not mlmon_records(caplog, logging.WARNING)
    debug = [r for r in caplog.records if r.name == "mlmon.jobs.quality" and MISSING_LINE in r.getMessage()]
    assert debug and all(r.levelno == logging.DEBUG for r in debug)

    # the same windows with a training_runs table: the same points, plus the _vs_offline ones
    sc = online_answers(NOW)
    write_table(setup.writer, "training_runs", RUN_COLUMNS, sc.runs)
    reference = run_twice(setup, tmp_path / "state-reference", quality)
    for i, (got, want) in enumerate(zip(runs, reference, strict=True)):
        assert want.reports["quality"].errors == 0, want.reports["quality"].messages
        with_offline = want.online()
        assert {k for k in with_offline if k[0] in OFFLINE}, i  # the scenario does produce them
        without = {k: v for k, v in with_offline.items() if k[0] not in OFFLINE}
        assert got.online().keys() == without.keys(), i
        # the engines' parallel sums may differ in the last bits between two runs
        assert got.online() == pytest.approx(without, rel=1e-9, abs=1e-12), i


@pytest.mark.parametrize("quality", list(QUALITY.values()), ids=list(QUALITY))
def test_a_named_training_runs_that_is_missing_is_still_a_problem(
    setup: Setup, tmp_path: Path, quality: dict[str, Any]
) -> None:
    """``tables: {training_runs: training_runs}`` (its default name, but named): can_run CRITICAL naming the
    table, on every run; the other quality metrics are still sent."""
    write_scenario(setup)
    for i, run in enumerate(run_twice(setup, tmp_path / "state", quality, {"training_runs": "training_runs"})):
        report = run.reports["quality"]
        check = run.can_run("quality")
        assert report.errors >= 1 and check.status is CheckStatus.CRITICAL, (i, report.messages)
        assert "training_runs" in check.message and "logloss_vs_offline and auc_vs_offline not computed" in (
            check.message), check.message
        assert report.windows_processed > 0 and run.sink.metrics("mlmon.online.logloss"), i
        assert not any(run.sink.metrics(name) for name in OFFLINE), i


def test_a_default_named_training_runs_that_cannot_be_read_is_still_a_problem(setup: Setup, tmp_path: Path) -> None:
    """A training_runs table at its default name that exists but lacks valid_logloss and valid_auc: its statement
    fails, and the probe that follows (on the same connection) finds the table, so the failure is told, not taken
    for a missing table; the other quality metrics are still sent."""
    write_scenario(setup)
    write_table(setup.writer, "training_runs", (("model", "text"), ("model_version", "text"),
                                                ("trained_at", "timestamp")), [])
    for i, run in enumerate(run_twice(setup, tmp_path / "state", QUALITY["lanes-window-per-statement"])):
        report = run.reports["quality"]
        check = run.can_run("quality")
        assert check.status is CheckStatus.CRITICAL, (i, report.messages)
        assert "table training_runs" in check.message and "not computed" in check.message, check.message
        assert not any("current transaction is aborted" in m for m in report.messages), report.messages
        assert report.windows_processed > 0 and run.sink.metrics("mlmon.online.logloss"), i
