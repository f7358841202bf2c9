"""The agent with an injected clock and a recording sink: windows, watermarks, checks, timestamps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from tests.helpers import utc
from tests.reference import prediction_stats
from tests.scenarios import WIDTH, known_answers

from mlmon.config import parse_config
from mlmon.jobs.windows import Window, due_windows, first_run_horizon
from mlmon.runner import Agent, stamp
from mlmon.samples import CheckStatus, Sample
from mlmon.state import StateStore
from mlmon.testing import RecordingSink

NOW = 1_800_000_123.0


def make_config(warehouse, tmp_path, **predictions):
    return parse_config({
        "init_config": {"env": "test", "state_dir": str(tmp_path / "state")},
        "instances": [{"name": "ads", "warehouse": warehouse.config(),
                       "tables": {"predictions": warehouse.table("predictions")},
                       "tags": ["team:ads"],
                       "jobs": {"predictions": {"initial_lookback": "1h", **predictions}}}],
    })


def test_due_windows_first_run_and_catch_up() -> None:
    """A first run takes the latest due windows covering initial_lookback; later runs resume at the watermark."""
    now = 10_000.0
    first = due_windows(now, None, 600, 300, 3600)
    # due once end + 300 <= 10000: the last complete end is 9600; 3600 s back from it is 6 windows
    assert first == [Window(s, s + 600) for s in range(6000, 9600, 600)]
    assert due_windows(now, first[-1].end, 600, 300, 3600) == []
    later = due_windows(now + 1800, first[-1].end, 600, 300, 3600)
    assert [w.start for w in later] == [first[-1].end + 600 * i for i in range(3)]


HOUR = 3600.0


@pytest.mark.parametrize(("width", "delay", "lookback"), [
    pytest.param(HOUR, HOUR, HOUR, id="quality-defaults"),
    pytest.param(600.0, 300.0, HOUR, id="predictions-defaults"),
    pytest.param(HOUR, HOUR, 1800.0, id="lookback-shorter-than-a-window"),
    pytest.param(HOUR, HOUR, 0.0, id="no-lookback"),
    pytest.param(HOUR, 86400.0, 5400.0, id="lookback-not-whole-windows"),
])
@pytest.mark.parametrize("offset", [0.0, 1.0, 599.0, 1234.5, 2999.0, 3599.999])
def test_first_run_delivers_at_any_time(width, delay, lookback, offset) -> None:
    """At any wall-clock time, a first run processes the latest matured window and as many before it as cover
    initial_lookback (whole windows, rounded up): never zero windows."""
    now = 1_800_000_000.0 // HOUR * HOUR + offset
    windows = due_windows(now, None, width, delay, lookback)
    assert len(windows) == max(1, -(-lookback // width))
    last = windows[-1]
    assert last.end + delay <= now < last.end + width + delay  # the latest matured window
    assert all(b.start == a.end and a.end - a.start == width for a, b in itertools.pairwise(windows))
    assert windows[0].start % width == 0


@pytest.mark.parametrize(("offset", "kept"), [(300.0, 5), (599.0, 4), (600.0, 4), (899.0, 4)])
def test_first_run_leaves_out_windows_the_destination_would_drop(offset, kept) -> None:
    """With a 50-minute horizon, a first run of 10-minute windows under window_end keeps those ending at most
    49 minutes ago (a minute left to query and send)."""
    now = 1_800_000_000.0 + offset
    horizon = first_run_horizon("window_end", 3000)
    assert horizon == 2940
    windows = due_windows(now, None, 600, 300, 3600, horizon=horizon)
    assert len(windows) == kept
    assert all(now - w.end <= 2940 for w in windows)
    assert now - windows[0].start > 2940  # one more window back would be too old
    # a watermark is never moved by the horizon: a catch-up resends what it must
    resumed = windows[0].start - 6000
    assert due_windows(now, resumed, 600, 300, 3600, horizon=horizon)[0].start == resumed
    assert first_run_horizon("send_time", 3000) is None  # re-stamped, never dropped: nothing to leave out


def test_first_run_keeps_the_latest_window_past_the_horizon() -> None:
    """A delay longer than the horizon still gives one window: the agent re-stamps or counts it, never waits forever."""
    assert len(due_windows(1_800_000_000.0, None, 600, 7200, 3600, horizon=3000)) == 1


def test_stamp_policies() -> None:
    """Old points: kept with historical ingestion, re-stamped under send_time, else skipped and counted."""
    old, fresh = Sample("m", 1.0, (), 1000.0), Sample("m", 2.0, (), 9000.0)
    assert stamp([old, fresh], 10_000.0, None, "window_end") == ([old, fresh], 0)
    assert stamp([old, fresh], 10_000.0, 3000.0, "window_end") == ([fresh], 1)
    assert stamp([old, fresh], 10_000.0, 3000.0, "send_time") == ([old._replace(timestamp=10_000.0), fresh], 0)


def test_windows_processed_once_and_in_order(duckdb_warehouse, tmp_path) -> None:
    """Every due window is delivered once, stamped at its end, and the watermark is its last end."""
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    sink = RecordingSink()
    agent = Agent(make_config(duckdb_warehouse, tmp_path), sink, clock=lambda: NOW)
    report = agent.run_once()[0]
    assert report.errors == 0
    ends = sorted({s.timestamp for s in sink.metrics("mlmon.prediction.count")})
    assert set(sc.window_ends) <= set(ends)
    assert StateStore(tmp_path / "state").load("ads", "predictions").watermark == max(ends)
    for (model, version, end), values in sc.values.items():
        want = prediction_stats(values)
        for name, value in want.items():
            sink.assert_metric(f"mlmon.prediction.{name}", value, tags=[f"model:{model}", f"model_version:{version}",
                               "env:test", "team:ads"], count=1, timestamp=end)


def test_available_check_per_model(duckdb_warehouse, tmp_path) -> None:
    """The check is OK for a model with rows in the latest window, CRITICAL for one that went silent."""
    sc = known_answers(NOW)
    last = sc.window_ends[-1]
    rows = sc.rows + [("late", utc(last + WIDTH * k + 1), "ctr_a", "v1", 0.2) for k in range(2)]
    duckdb_warehouse.write_predictions(rows)
    sink = RecordingSink()
    Agent(make_config(duckdb_warehouse, tmp_path), sink, clock=lambda: NOW).run_once()
    final_ok = sink.checks[-10:]
    status = {dict(t.split(":", 1) for t in c.tags)["model"]: c.status
              for c in final_ok if c.name == "mlmon.predictions.available"}
    assert status == {"ctr_a": CheckStatus.OK, "const": CheckStatus.CRITICAL}
    critical = sink.assert_service_check("mlmon.predictions.available", CheckStatus.CRITICAL, ["model:const"])
    assert "instance ads" in critical[0].message and "predictions" in critical[0].message


def test_sink_failure_keeps_window_pending(duckdb_warehouse, tmp_path) -> None:
    """A refused submission leaves the watermark; the next run delivers the same windows."""
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    sink = RecordingSink()
    sink.fail_next = 1
    agent = Agent(make_config(duckdb_warehouse, tmp_path), sink, clock=lambda: NOW)
    report = agent.run_once()[0]
    assert report.errors == 1 and report.windows_processed == 0
    # the first run only fixed where the job starts: no window acknowledged
    assert StateStore(tmp_path / "state").load("ads", "predictions").watermark < min(sc.window_ends)
    sink.assert_metric("mlmon.agent.run.errors", 1.0)
    assert not sink.metrics("mlmon.prediction.count")
    report = agent.run_once()[0]
    assert report.errors == 0 and report.windows_processed > 0
    for end in sc.window_ends:
        sink.assert_metric("mlmon.prediction.count", tags=["model:ctr_a"], timestamp=end, count=1)


def test_old_windows_skipped_under_window_end_policy(duckdb_warehouse, tmp_path) -> None:
    """With a 50-minute horizon, windows of a catch-up older than it are counted as skipped, not sent."""
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    store = StateStore(tmp_path / "state")
    state = store.load("ads", "predictions")
    state.advance("", (NOW - 3 * 3600) // 600 * 600)  # the agent was down for three hours
    store.save("ads", "predictions", state)
    sink = RecordingSink(horizon=50 * 60)
    report = Agent(make_config(duckdb_warehouse, tmp_path), sink, clock=lambda: NOW).run_once()[0]
    assert report.points_skipped > 0
    assert all(NOW - s.timestamp <= 3000 for s in sink.samples)
    sink.assert_metric("mlmon.agent.points_skipped", float(report.points_skipped))


def test_send_time_policy_restamps(duckdb_warehouse, tmp_path) -> None:
    """Under send_time, old windows are delivered stamped at send time."""
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    sink = RecordingSink(horizon=60.0)
    Agent(make_config(duckdb_warehouse, tmp_path, timestamp_policy="send_time"), sink, clock=lambda: NOW).run_once()
    assert {s.timestamp for s in sink.metrics("mlmon.prediction.count")} == {NOW}


def test_missing_warehouse_file_is_critical_not_fatal(tmp_path) -> None:
    """No DuckDB file: can_connect CRITICAL naming the instance and file; run_once returns."""
    config = parse_config({"init_config": {"state_dir": str(tmp_path / "s")},
                           "instances": [{"name": "ads", "warehouse": {"engine": "duckdb",
                                                                       "path": str(tmp_path / "nope.duckdb")}}]})
    sink = RecordingSink()
    report = Agent(config, sink, clock=lambda: NOW).run_once()[0]
    assert report.errors == 1
    check = sink.assert_service_check("mlmon.warehouse.can_connect", CheckStatus.CRITICAL, ["instance:ads"])[0]
    assert "nope.duckdb" in check.message and "instance ads" in check.message


def test_missing_column_names_the_table(duckdb_warehouse, tmp_path) -> None:
    """A renamed column that does not exist: one clear error naming the table and column."""
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    config = parse_config({
        "init_config": {"state_dir": str(tmp_path / "s")},
        "instances": [{"name": "ads", "warehouse": duckdb_warehouse.config(), "models": ["ctr_a"],
                       "columns": {"predictions": {"ts": "served_at"}}}],
    })
    sink = RecordingSink()
    report = Agent(config, sink, clock=lambda: NOW).run_once()[0]
    assert report.errors == 1
    assert "served_at" in report.messages[0] and "table predictions" in report.messages[0]
    sink.assert_service_check("mlmon.predictions.available", CheckStatus.CRITICAL, ["model:ctr_a"])


@pytest.mark.parametrize("growth", [1, 10])
def test_rows_fetched_bounded_per_window(duckdb_warehouse, tmp_path, growth) -> None:
    """Rows fetched per (model, window) stay under a constant when the prediction count grows 10x."""
    rng = np.random.default_rng(growth)
    end = (NOW - 300) // WIDTH * WIDTH
    n = 2000 * growth
    rows = [(f"r{i}", utc(end - WIDTH + (i % 599)), "m", "v", float(p)) for i, p in enumerate(rng.beta(2, 30, n))]
    duckdb_warehouse.write_predictions(rows)
    report = Agent(make_config(duckdb_warehouse, tmp_path, initial_lookback="20m"), RecordingSink(),
                   clock=lambda: NOW).run_once()[0]
    # at most 12 order statistics + one row per occupied drift bucket (1000 at most)
    assert 0 < report.rows_fetched <= 1012


def test_available_check_recorded_per_window_at_its_end(duckdb_warehouse, tmp_path) -> None:
    """A file-like sink gets one availability check per model and window, stamped at the window end."""
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    sink = RecordingSink()
    Agent(make_config(duckdb_warehouse, tmp_path), sink, clock=lambda: NOW).run_once()
    const = [(c.timestamp, c.status) for c in sink.checks
             if c.name == "mlmon.predictions.available" and "model:const" in c.tags]
    a, b, _ = sc.window_ends
    windows = due_windows(NOW, None, WIDTH, 300, 3600)
    # const served in windows a and b, then went silent while still expected
    expected = [(w.end, CheckStatus.OK if w.end in (a, b) else CheckStatus.CRITICAL)
                for w in windows if w.end >= a]
    assert const == expected


@pytest.mark.parametrize(("min_rows", "sent"), [(400, True), (401, False)])
def test_drift_needs_min_rows_on_both_sides(duckdb_warehouse, tmp_path, min_rows, sent) -> None:
    """PSI and KS are sent only when the window (500 rows) and its reference (400) reach drift_min_rows."""
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)
    sink = RecordingSink()
    Agent(make_config(duckdb_warehouse, tmp_path, drift_min_rows=min_rows), sink, clock=lambda: NOW).run_once()
    last = sc.window_ends[-1]
    for name in ("mlmon.prediction.psi", "mlmon.prediction.ks_statistic"):
        found = [s for s in sink.metrics(name, ["model:ctr_a"]) if s.timestamp == last]
        assert len(found) == int(sent), name


def test_batching_does_not_change_what_is_sent(tmp_path) -> None:
    """The same windows give the same points whether one statement covers 36 windows or 7 (a catch-up,
    a resumed backfill and a clean run cut a range differently), the silent windows of a model that
    stopped serving included: their count 0 carries the version the model served last before them."""
    from mlmon.demo import DEMO_INCIDENTS
    from mlmon.scenarios import build_frames, write_duckdb

    # ctr_video serves nothing from 04:00 to 05:00 on the 19th, two hours after its daily version took
    # over (02:00); in 6-hour statements from 20:00 the one holding the silent hour starts at 02:00
    end = 1_795_161_600.0  # 2026-11-20 08:00 UTC
    path = tmp_path / "w.duckdb"
    write_duckdb(path, build_frames(end, DEMO_INCIDENTS, hours=48))
    sent = []
    for size in (36, 7):
        config = parse_config({
            "init_config": {"state_dir": str(tmp_path / f"state-{size}")},
            "instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": str(path)},
                           "jobs": {"predictions": {"initial_lookback": "36h", "max_windows_per_query": size,
                                                    "lateness": "0s"},
                                    "quality": {"enabled": False}, "reproducibility": {"enabled": False},
                                    "training": {"enabled": False}}}],
        })
        sink = RecordingSink()
        Agent(config, sink, clock=lambda: end).run_once()
        sent.append({(s.name, s.tags, s.timestamp): s.value for s in sink.samples if s.name.startswith("mlmon.pred")})
    assert sent[0].keys() == sent[1].keys()
    assert all(sent[1][k] == pytest.approx(v, rel=1e-12, nan_ok=True) for k, v in sent[0].items())
    silent = sorted((ts, tags) for (name, tags, ts), v in sent[0].items()
                    if name == "mlmon.prediction.count" and v == 0 and "model:ctr_video" in tags)
    assert len(silent) == 6  # the hour ctr_video served nothing
    served = sorted((ts, tags) for (name, tags, ts), v in sent[0].items()
                    if name == "mlmon.prediction.count" and v > 0 and "model:ctr_video" in tags)
    last_before = max((ts, tags) for ts, tags in served if ts < silent[0][0])
    assert {tags for _, tags in silent} == {last_before[1]}
