"""Fault injection between the agent and Datadog: the real ``datadog`` client against a loopback intake
that fails on command.

Every case runs the four jobs over the same warehouse twice: once while the intake misbehaves (500s,
429 with ``Retry-After``, 403, connection refused, answers slower than the client's timeout, a
submission cut in the middle), then again, a minute later, once it has recovered. A clean agent on a
healthy intake is the reference: after recovery every window point it delivered has been delivered,
and no point (metric, tags, timestamp) was ever accepted twice with different values.

Values are compared to 1e-9 relative: a window re-queried in another batch may sum its floats in
another order.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import API_KEY, closed_port

from mlmon.config import parse_config
from mlmon.jobs.windows import due_windows, first_run_horizon
from mlmon.runner import Agent, JobReport
from mlmon.scenarios import HOUR, build_frames, write_duckdb
from mlmon.sinks.datadog_api import DatadogApiSink
from mlmon.state import StateStore
from mlmon.testing import IntakeServer, Reply

END = 1_795_183_380.0  # 2026-11-20 14:03 UTC, 3 minutes past a window boundary
INSTANCE = "ads"
WINDOW_JOBS = ("predictions", "quality", "reproducibility")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "warehouse.duckdb"
    write_duckdb(path, build_frames(END, hours=30))
    return path


def make_config(warehouse: Path, state: Path, lookback: str = "3h") -> Any:
    return parse_config({
        "init_config": {"env": "test", "state_dir": str(state)},
        "instances": [{
            "name": INSTANCE,
            "warehouse": {"engine": "duckdb", "path": str(warehouse)},
            "jobs": {
                "predictions": {"initial_lookback": lookback},
                "quality": {"initial_lookback": "4h", "label_delay": "1h"},
                "reproducibility": {"initial_lookback": "4h"},
                "training": {"features": ["age", "device", "bid_floor"]},
            },
        }],
    })


def make_agent(warehouse: Path, state: Path, api_host: str, sleeps: list[float], clock: list[float], *,
               horizon: float | None = None, timeout: float = 2.0, max_bytes: int = 450_000,
               lookback: str = "3h") -> Agent:
    sink = DatadogApiSink(api_key=API_KEY, api_host=api_host, max_retries=2, retry_backoff=0.5, timeout=timeout,
                          horizon=horizon, sleep=sleeps.append, max_payload_bytes=max_bytes)
    return Agent(make_config(warehouse, state, lookback), sink, clock=lambda: clock[0])


def points(intake: IntakeServer) -> list[tuple[str, tuple[str, ...], int, float]]:
    """Every accepted point as (metric, tags, timestamp, value)."""
    return [(s["metric"], tuple(sorted(s["tags"])), int(ts), float(v))
            for s in intake.series() for ts, v in s["points"]]


def window_points(intake: IntakeServer) -> dict[tuple[str, tuple[str, ...], int], float]:
    """Points stamped at their window end: every metric but the agent's own and the training snapshots."""
    return {(m, t, ts): v for m, t, ts, v in points(intake) if not m.startswith(("mlmon.agent.", "mlmon.training."))}


def training_values(intake: IntakeServer) -> dict[tuple[str, tuple[str, ...]], float]:
    """The last training snapshot (re-sent at send time every run), without its timestamp; the model's
    age is taken back to ``END``."""
    out = {}
    for m, t, ts, v in sorted(points(intake), key=lambda p: p[2]):
        if m.startswith("mlmon.training."):
            out[(m, t)] = v - (ts - END) / HOUR if m == "mlmon.training.model_age_hours" else v
    return out


def conflicts(intakes: Iterable[IntakeServer]) -> list[tuple[tuple[str, tuple[str, ...], int], list[float]]]:
    """Points accepted more than once with different values."""
    seen: dict[tuple[str, tuple[str, ...], int], list[float]] = defaultdict(list)
    for intake in intakes:
        for m, t, ts, v in points(intake):
            seen[(m, t, ts)].append(v)
    return [(k, vs) for k, vs in seen.items() if any(not math.isclose(v, vs[0], rel_tol=1e-9) for v in vs)]


def last_checks(intakes: Iterable[IntakeServer]) -> dict[tuple[str, tuple[str, ...]], int]:
    """The last accepted status of each service check series."""
    out: dict[tuple[str, tuple[str, ...]], int] = {}
    for intake in intakes:
        for c in sorted(intake.service_checks(), key=lambda c: c["timestamp"]):
            out[(c["check"], tuple(sorted(c["tags"])))] = c["status"]
    return out


@pytest.fixture(scope="module")
def clean(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> IntakeServer:
    """What a run on a healthy intake delivers."""
    state = tmp_path_factory.mktemp("clean-state")
    with IntakeServer(valid_keys=(API_KEY,)) as intake:
        reports = make_agent(warehouse, state, intake.url, [], [END]).run_once()
    assert [r.job for r in reports] == ["predictions", "quality", "reproducibility", "training"]
    assert all(r.errors == 0 for r in reports), [r.messages for r in reports]
    assert all(r.windows_processed > 0 for r in reports if r.job in WINDOW_JOBS)
    return intake


def watermarks(state: Path) -> dict[str, float | None]:
    store = StateStore(state)
    return {job: store.load(INSTANCE, job).watermark for job in WINDOW_JOBS}


def first_starts(clean: IntakeServer) -> dict[str, float]:
    """Where each windowed job starts: its first run records the start of its first window, nothing more,
    until a window is accepted."""
    prefixes = {"predictions": "mlmon.prediction.", "quality": "mlmon.online.",
                "reproducibility": "mlmon.reproducibility."}
    widths = {"predictions": 600, "quality": HOUR, "reproducibility": HOUR}
    return {job: min(ts for m, _, ts in window_points(clean) if m.startswith(prefixes[job])) - widths[job]
            for job in WINDOW_JOBS}


def assert_recovered(clean: IntakeServer, intakes: list[IntakeServer], reports: list[JobReport]) -> None:
    """After the recovery run: every clean window point delivered, nothing contradicting, the same checks."""
    assert all(r.errors == 0 for r in reports), [r.messages for r in reports]
    expected = window_points(clean)
    delivered: dict[tuple[str, tuple[str, ...], int], float] = {}
    for intake in intakes:
        delivered.update(window_points(intake))
    missing = set(expected) - set(delivered)
    assert not missing, sorted(missing)[:5]
    assert set(delivered) == set(expected)  # nothing invented either
    assert all(math.isclose(delivered[k], v, rel_tol=1e-9) for k, v in expected.items())
    assert training_values(intakes[-1]) == pytest.approx(training_values(clean), rel=1e-9)
    assert conflicts(intakes) == []
    assert last_checks(intakes) == last_checks([clean])


OUTAGES = {
    "500": Reply(500, {"errors": ["Internal Server Error"]}),
    "429": Reply(429, {"errors": ["Too many requests"]}, {"Retry-After": "7"}),
    "403": Reply(403, {"errors": ["Forbidden"]}),
}


@pytest.mark.parametrize("kind", list(OUTAGES))
def test_outage_then_recovery_delivers_every_window(kind, warehouse, tmp_path, clean, caplog) -> None:
    """Datadog answering 500/429/403 to everything: nothing acknowledged, watermarks unchanged, backoff as
    the answer asks; the next run delivers exactly what a clean run does."""
    state, sleeps, clock = tmp_path / "state", [], [END]
    with IntakeServer(valid_keys=(API_KEY,)) as intake:
        agent = make_agent(warehouse, state, intake.url, sleeps, clock)
        intake.go_down(OUTAGES[kind])
        with caplog.at_level(logging.WARNING):
            down = agent.run_once()
        assert all(r.errors >= 1 and r.windows_processed == 0 and r.points_sent == 0 for r in down)
        assert watermarks(state) == first_starts(clean)
        assert not intake.accepted("/series") and not intake.accepted("/check_run")
        if kind == "403":
            assert sleeps == []  # a refused key is not retried within the run
            assert "HTTP 403" in caplog.text
        elif kind == "429":
            assert sleeps and all(7.0 <= s <= 7.0 * 1.25 for s in sleeps)  # Retry-After, with jitter
        else:
            assert sleeps[:2] == pytest.approx([0.5, 1.0], rel=0.25)  # exponential backoff
        # bounded: (windowed lanes + training + self-metrics per job) x (1 + max_retries) requests at most
        assert len(intake.requests) <= (len(down) * 2 + 2) * 3
        intake.recover()
        clock[0] = END + 60
        up = agent.run_once()
        assert_recovered(clean, [intake], up)
        assert all(r.windows_processed > 0 for r in up if r.job in WINDOW_JOBS)
        assert watermarks(state) == {r.job: r.watermark for r in up if r.job in WINDOW_JOBS}


def test_connection_refused_then_intake_comes_up(warehouse, tmp_path, clean) -> None:
    """Nothing listening: bounded retries, nothing lost; the intake then starts on that port and the next run
    delivers everything."""
    port = closed_port()
    state, sleeps, clock = tmp_path / "state", [], [END]
    agent = make_agent(warehouse, state, f"http://127.0.0.1:{port}", sleeps, clock)
    down = agent.run_once()
    assert all(r.errors >= 1 and r.windows_processed == 0 for r in down)
    assert watermarks(state) == first_starts(clean)
    assert any("ConnectionError" in m or "refused" in m.lower() for r in down for m in r.messages)
    with IntakeServer(valid_keys=(API_KEY,), port=port) as intake:
        clock[0] = END + 60
        assert_recovered(clean, [intake], agent.run_once())


def test_answers_slower_than_the_timeout_are_resent_with_the_same_values(warehouse, tmp_path, clean) -> None:
    """An intake that takes longer than the client's timeout may still have kept the points: the agent
    resends them (same values), and nothing is lost or contradicted."""
    state, sleeps, clock = tmp_path / "state", [], [END]
    with IntakeServer(valid_keys=(API_KEY,)) as intake:
        agent = make_agent(warehouse, state, intake.url, sleeps, clock, timeout=0.3)
        # the first submission's three attempts all time out; then a later one times out once
        intake.fail_next(*[Reply(delay=0.6)] * 3, path="/series")
        first = agent.run_once()
        assert first[0].errors >= 1 and first[0].windows_processed == 0
        assert len([r for r in intake.requests if r.path.endswith("/series")]) >= 3
        intake.fail_next(Reply(delay=0.6), path="/series")
        clock[0] = END + 60
        second = agent.run_once()
        assert_recovered(clean, [intake], second)
        # the timed-out bodies reached the intake: some points were accepted twice, with equal values
        keys = [(m, t, ts) for m, t, ts, _ in points(intake) if not m.startswith("mlmon.agent.")]
        assert len(keys) > len(set(keys))


def test_submission_cut_in_the_middle_is_resent_whole(warehouse, tmp_path, clean) -> None:
    """Series split into chunks: the first chunks accepted, a later one refused. The windows stay pending
    and are resent whole; the chunks accepted twice carry the same values."""
    state, sleeps, clock = tmp_path / "state", [], [END]
    with IntakeServer(valid_keys=(API_KEY,)) as intake:
        agent = make_agent(warehouse, state, intake.url, sleeps, clock, max_bytes=8_000)
        intake.fail_next(Reply(), Reply(), *[Reply(500, {"errors": ["boom"]})] * 3, path="/series")
        first = agent.run_once()
        assert first[0].job == "predictions" and first[0].errors >= 1 and first[0].windows_processed == 0
        assert len(intake.accepted("/series")) >= 2  # partly delivered ...
        assert watermarks(state)["predictions"] == first_starts(clean)["predictions"]  # ... so not acknowledged
        assert all(r.windows_processed > 0 for r in first if r.job in ("quality", "reproducibility"))
        clock[0] = END + 60
        assert_recovered(clean, [intake], agent.run_once())


def test_flaky_intake_over_several_runs(warehouse, tmp_path, clean) -> None:
    """Every third request fails for three runs: whatever got through stays acknowledged, the rest follows."""
    state, sleeps, clock = tmp_path / "state", [], [END]
    with IntakeServer(valid_keys=(API_KEY,)) as intake:
        agent = make_agent(warehouse, state, intake.url, sleeps, clock, max_bytes=20_000)
        for run in range(3):
            intake.fail_next(*[r for _ in range(200) for r in (Reply(), Reply(), Reply(503, {"errors": ["x"]}))])
            clock[0] = END + run
            agent.run_once()
            intake.recover()
        assert any(r.status == 503 for r in intake.requests)
        marks, starts = watermarks(state), first_starts(clean)
        assert any(marks[job] > starts[job] for job in WINDOW_JOBS)  # some windows got through ...
        clock[0] = END + 60
        assert_recovered(clean, [intake], agent.run_once())


def test_outage_past_the_ingestion_horizon(warehouse, tmp_path, caplog) -> None:
    """Datadog down for two hours without Historical Metrics Ingestion: window-end points older than the
    horizon are skipped and counted (never sent to be dropped), send-time jobs re-stamp theirs, and one
    warning names the remedy."""
    state, sleeps, clock = tmp_path / "state", [], [END - 2 * HOUR]
    horizon = 50 * 60
    with IntakeServer(valid_keys=(API_KEY,)) as intake, caplog.at_level(logging.WARNING):
        agent = make_agent(warehouse, state, intake.url, sleeps, clock, horizon=horizon)
        intake.go_down(Reply(503, {"errors": ["unavailable"]}))
        agent.run_once()
        clock[0] = END - HOUR
        agent.run_once()
        intake.recover()
        clock[0] = END
        reports = {r.job: r for r in agent.run_once()}
    # what the same windows hold: a run with historical ingestion over the same span
    with IntakeServer(valid_keys=(API_KEY,)) as reference:
        make_agent(warehouse, tmp_path / "ref-state", reference.url, [], [END], lookback="5h").run_once()
    # the first run (at END - 2 h) started at the oldest window its destination still kept then
    (first, *_) = due_windows(END - 2 * HOUR, None, 600, 300, 3 * HOUR, first_run_horizon("window_end", horizon))
    expected = {k: v for k, v in window_points(reference).items()
                if k[0].startswith("mlmon.prediction.") and k[2] > first.start}
    sent = {k: v for k, v in window_points(intake).items() if k[0].startswith("mlmon.prediction.")}
    assert sent and all(END - ts <= horizon for _, _, ts in sent)  # nothing Datadog would drop
    old = {k for k in expected if END - k[2] > horizon}
    assert set(sent) == set(expected) - old
    assert reports["predictions"].points_skipped == len(old) > 0
    skipped = [p for p in points(intake) if p[0] == "mlmon.agent.points_skipped" and "job:predictions" in p[1]]
    assert [v for *_, v in skipped] == [len(old)]
    # quality is stamped at send time: its matured windows arrive now, none skipped
    assert reports["quality"].points_skipped == 0 and reports["quality"].windows_processed > 0
    assert {ts for m, _, ts in window_points(intake) if m.startswith("mlmon.online.")} >= {int(END)}
    warnings = [r.getMessage() for r in caplog.records if "Historical Metrics Ingestion" in r.getMessage()]
    assert len(warnings) == 1 and "predictions" in warnings[0]
