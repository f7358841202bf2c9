"""Delivery through the real datadog client to a loopback intake that fails on command."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from tests.helpers import API_KEY, closed_port
from tests.scenarios import known_answers

from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.sinks.base import SinkError
from mlmon.sinks.datadog_api import DatadogApiSink, chunk_series
from mlmon.state import StateStore
from mlmon.testing import Reply

NOW = 1_800_000_123.0


def make_agent(warehouse, tmp_path: Path, intake, sleeps: list[float], retries: int = 2) -> Agent:
    config = parse_config({
        "init_config": {"env": "test", "state_dir": str(tmp_path / "state")},
        "instances": [{"name": "ads", "warehouse": warehouse.config(),
                       "jobs": {"predictions": {"initial_lookback": "1h"}}}],
    })
    sink = DatadogApiSink(api_key=API_KEY, api_host=intake.url, max_retries=retries, retry_backoff=0.5,
                          horizon=None, sleep=sleeps.append, timeout=2.0)
    return Agent(config, sink, clock=lambda: NOW)


def delivered_windows(intake) -> set[int]:
    return {s["points"][0][0] for s in intake.series() if s["metric"] == "mlmon.prediction.count"}


@pytest.mark.parametrize(
    "failure",
    [
        Reply(500, {"errors": ["Internal Server Error"]}),
        Reply(429, {"errors": ["Too many requests"]}, {"Retry-After": "7"}),
        Reply(403, {"errors": ["Forbidden"]}),
    ],
    ids=["500", "429", "403"],
)
def test_failed_window_is_delivered_by_next_run(duckdb_warehouse, tmp_path, intake, failure, caplog) -> None:
    """Intake answering 500/429/403: watermark unchanged, nothing lost; the next run delivers every window."""
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    sleeps: list[float] = []
    agent = make_agent(duckdb_warehouse, tmp_path, intake, sleeps)
    intake.fail_next(*[failure] * (1 if failure.status == 403 else 3))  # every attempt of the first submit
    with caplog.at_level(logging.DEBUG):
        first = agent.run_once()[0]
    assert first.errors >= 1 and first.windows_processed == 0
    assert StateStore(tmp_path / "state").load("ads", "predictions").watermark < min(sc.window_ends)
    assert not delivered_windows(intake)
    if failure.status == 403:
        assert sleeps == []  # a rejected key is not retried within the run
    elif failure.status == 429:
        assert len(sleeps) == 2 and all(7.0 <= s <= 7.0 * 1.25 for s in sleeps)  # Retry-After honoured
    else:
        assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 0.625 and 1.0 <= sleeps[1] <= 1.25  # backoff
    second = agent.run_once()[0]
    assert second.errors == 0
    assert set(map(int, sc.window_ends)) <= delivered_windows(intake)
    assert StateStore(tmp_path / "state").load("ads", "predictions").watermark == max(delivered_windows(intake))
    # the key travels only in the header; never in logs or state files
    assert all(r.headers.get("dd-api-key") == API_KEY for r in intake.requests)
    assert API_KEY not in caplog.text
    for f in (tmp_path / "state").rglob("*"):
        if f.is_file():
            assert API_KEY not in f.read_text()


def test_retry_then_success_within_one_run(duckdb_warehouse, tmp_path, intake) -> None:
    """One 503 then success: delivered in the same run after one backoff."""
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    sleeps: list[float] = []
    agent = make_agent(duckdb_warehouse, tmp_path, intake, sleeps)
    intake.fail_next(Reply(503, {"errors": ["unavailable"]}))
    report = agent.run_once()[0]
    assert report.errors == 0 and len(sleeps) == 1
    assert set(map(int, sc.window_ends)) <= delivered_windows(intake)


def test_errors_key_in_2xx_is_a_failure(intake) -> None:
    """datadogpy hands back bodies with an ``errors`` key; the sink treats them as failures."""
    sink = DatadogApiSink(api_key=API_KEY, api_host=intake.url, max_retries=0, sleep=lambda s: None)
    intake.fail_next(Reply(200, {"errors": ["partially rejected"]}))
    from mlmon.samples import Sample

    with pytest.raises(SinkError, match="partially rejected"):
        sink.submit([Sample("mlmon.prediction.count", 1.0, ("model:a",), NOW)])


def test_connection_refused_is_a_sink_error() -> None:
    """Nothing listening: SinkError after the bounded retries, no exception escapes otherwise."""
    sleeps: list[float] = []
    sink = DatadogApiSink(api_key=API_KEY, api_host=f"http://127.0.0.1:{closed_port()}", max_retries=2,
                          retry_backoff=0.1, sleep=sleeps.append, timeout=1.0)
    from mlmon.samples import Sample

    with pytest.raises(SinkError) as err:
        sink.submit([Sample("mlmon.prediction.count", 1.0, (), NOW)])
    assert len(sleeps) == 2
    assert API_KEY not in str(err.value)


def test_series_are_chunked_under_the_payload_limit(intake) -> None:
    """A large submission is split into requests whose JSON stays under max_payload_bytes."""
    from mlmon.samples import Sample

    samples = [Sample("mlmon.prediction.mean", i / 7, (f"model:m{i % 50}", "model_version:v1"), NOW)
               for i in range(3000)]
    sink = DatadogApiSink(api_key=API_KEY, api_host=intake.url, max_payload_bytes=20_000)
    sink.submit(samples)
    requests = intake.accepted("/series")
    assert len(requests) > 1
    assert sum(len(r.body["series"]) for r in requests) == 3000
    import json

    assert all(len(json.dumps(r.body)) <= 20_000 for r in requests)
    assert chunk_series([], 1000) == []


def test_validate_reports_bad_key(intake) -> None:
    """/api/v1/validate: None for the valid key, a reason for another."""
    assert DatadogApiSink(api_key=API_KEY, api_host=intake.url).validate() is None
    problem = DatadogApiSink(api_key="wrong-key-000000", api_host=intake.url).validate()
    assert problem is not None and "403" in problem and "wrong-key" not in problem


def test_api_sink_sends_the_latest_check_of_each_series(intake) -> None:
    """Several statuses of one series in a submission become one check_run request: the last one."""
    from mlmon.samples import CheckStatus, ServiceCheck

    sink = DatadogApiSink(api_key=API_KEY, api_host=intake.url, horizon=None)
    tags_a, tags_b = ("model:a",), ("model:b",)
    sink.submit([
        ServiceCheck("mlmon.predictions.available", CheckStatus.OK, tags_a, NOW - 1200),
        ServiceCheck("mlmon.predictions.available", CheckStatus.CRITICAL, tags_b, NOW - 1200),
        ServiceCheck("mlmon.predictions.available", CheckStatus.CRITICAL, tags_a, NOW - 600, "silent"),
        ServiceCheck("mlmon.predictions.available", CheckStatus.OK, tags_b, NOW - 600),
    ])
    assert intake.service_checks() == []  # held until the job's run ends
    sink.flush()
    sent = sorted((c["tags"][0], c["status"], c["timestamp"]) for c in intake.service_checks())
    assert sent == [("model:a", 2, int(NOW - 600)), ("model:b", 0, int(NOW - 600))]
    sink.flush()  # sent once
    assert len(intake.service_checks()) == 2


def test_a_catch_up_sends_each_check_series_once(tmp_path) -> None:
    """A catch-up of many windows delivered in many submissions (200 models: one window a submission) sends one
    check_run request per check series and run, its latest status, not one per window (28 600 requests once)."""
    from mlmon.config import parse_config
    from mlmon.runner import Agent
    from mlmon.scenarios import build_frames, write_duckdb
    from mlmon.testing import IntakeServer

    warehouse = tmp_path / "w.duckdb"
    write_duckdb(warehouse, build_frames(NOW, hours=8))
    config = parse_config({
        "init_config": {"env": "test", "state_dir": str(tmp_path / "state"),
                        "datadog": {"api_key": API_KEY, "historical_ingestion": True}},
        "instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": str(warehouse)},
                       "jobs": {"predictions": {"initial_lookback": "6h", "max_windows_per_query": 6},
                                "quality": {"enabled": False}, "reproducibility": {"enabled": False},
                                "training": {"enabled": False}}}],
    })
    with IntakeServer() as intake:
        sink = DatadogApiSink(api_key=API_KEY, api_host=intake.url, horizon=None)
        (report,) = [r for r in Agent(config, sink, clock=lambda: NOW).run_once() if r.job == "predictions"]
        assert report.errors == 0 and report.windows_processed == 36
        checks = intake.service_checks()
        series = [(c["check"], tuple(sorted(c["tags"]))) for c in checks]
        assert len(series) == len(set(series))  # each series once
        available = [c for c in checks if c["check"] == "mlmon.predictions.available"]
        assert len(available) == 3  # the scenario's three models, not 36 windows x 3
        assert all(c["timestamp"] == max(a["timestamp"] for a in available) for c in available)


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "-inf", "Wed, 21 Oct 2026 07:28:00 GMT", "soon"])
def test_an_unusable_retry_after_is_no_hint(duckdb_warehouse, tmp_path, intake, value) -> None:
    """429 with a Retry-After of -5, NaN, infinity or an HTTP date used to crash the job (time.sleep of a
    negative or NaN delay): it is no hint, the backoff's own delays apply, and the next run delivers."""
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    sleeps: list[float] = []
    agent = make_agent(duckdb_warehouse, tmp_path, intake, sleeps)
    intake.fail_next(*[Reply(429, {"errors": ["Too many requests"]}, {"Retry-After": value})] * 3)
    first = agent.run_once()[0]
    assert first.errors >= 1 and first.windows_processed == 0
    assert all("Too many requests" in m or "429" in m for m in first.messages), first.messages
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 0.625 and 1.0 <= sleeps[1] <= 1.25  # the backoff's
    second = agent.run_once()[0]
    assert second.errors == 0 and set(map(int, sc.window_ends)) <= delivered_windows(intake)


def test_the_application_key_is_not_sent_with_metrics(duckdb_warehouse, tmp_path, intake, monkeypatch) -> None:
    """With DD_APP_KEY set (it is for `assets sync`), `mlmon run --once` and `mlmon check` used to send it on
    every series, check_run and validate request: they carry the API key only."""
    from mlmon.cli import main

    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", "app-key-0123456789abcdef")
    monkeypatch.setenv("DATADOG_HOST", intake.url)
    config = tmp_path / "conf.yaml"
    config.write_text(yaml.safe_dump({"init_config": {"state_dir": str(tmp_path / "state")},
                                      "instances": [{"name": "ads", "warehouse": duckdb_warehouse.config()}]}))
    assert main(["check", "--config", str(config)]) == 0
    assert main(["run", "--once", "--config", str(config)]) == 0
    paths = {r.path for r in intake.requests}
    assert {"/api/v1/validate", "/api/v1/series", "/api/v1/check_run"} <= paths, paths
    for request in intake.requests:
        assert request.headers.get("dd-api-key") == API_KEY, request.path
        assert "dd-application-key" not in request.headers and "application_key" not in request.query, request
