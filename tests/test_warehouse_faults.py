"""Warehouse faults: a missing DuckDB file, a PostgreSQL server refusing connections, a missing table, a
missing column, a failing query. Each gives the right service check with a message naming what failed,
the other jobs and instances still deliver, and the next run, on the same agent, recovers every window.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests.helpers import closed_port
from tests.scenarios import known_answers

from mlmon.config import parse_config
from mlmon.runner import Agent, JobReport
from mlmon.samples import CheckStatus
from mlmon.scenarios import DAY, HOUR, build_frames, write_duckdb
from mlmon.state import StateStore
from mlmon.testing import RecordingSink

END = 1_795_183_380.0  # 2026-11-20 14:03 UTC
JOBS = ("predictions", "quality", "reproducibility", "training")
PREFIX = {"predictions": "mlmon.prediction.", "quality": "mlmon.online.",
          "reproducibility": "mlmon.reproducibility.", "training": "mlmon.training."}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "healthy.duckdb"
    write_duckdb(path, build_frames(END, hours=30))
    return path


def instance(name: str, path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "warehouse": {"engine": "duckdb", "path": str(path)},
        "jobs": {
            "predictions": {"initial_lookback": "2h"},
            "quality": {"initial_lookback": "3h", "label_delay": "1h"},
            "reproducibility": {"initial_lookback": "3h"},
            "training": {"features": ["age", "device", "bid_floor"]},
        },
        **extra,
    }


def agent(state: Path, *instances: dict[str, Any]) -> tuple[Agent, RecordingSink, list[float]]:
    config = parse_config({"init_config": {"env": "test", "state_dir": str(state)}, "instances": list(instances)})
    sink, clock = RecordingSink(), [END]
    return Agent(config, sink, clock=lambda: clock[0]), sink, clock


def window_points(sink: RecordingSink, job: str, inst: str | None = None) -> set[tuple[str, tuple[str, ...], float]]:
    """(metric, tags, timestamp) of the job's metrics (training: without the send-time timestamp)."""
    return {(s.name, tuple(sorted(s.tags)), 0.0 if job == "training" else s.timestamp)
            for s in sink.samples if s.name.startswith(PREFIX[job])}


@pytest.fixture(scope="module")
def clean(healthy: Path, tmp_path_factory: pytest.TempPathFactory) -> RecordingSink:
    """A clean run over the healthy warehouse: the reference for recovered windows."""
    run, sink, _ = agent(tmp_path_factory.mktemp("clean"), instance("dw", healthy))
    reports = run.run_once()
    assert all(r.errors == 0 for r in reports)
    assert all(window_points(sink, job) for job in JOBS)
    return sink


def by_job(reports: list[JobReport]) -> dict[str, JobReport]:
    return {r.job: r for r in reports}


def job_check(sink: RecordingSink, job: str) -> Any:
    (check,) = [c for c in sink.checks if c.name == "mlmon.job.can_run" and f"job:{job}" in c.tags]
    return check


def test_missing_duckdb_file_then_created(healthy, tmp_path, clean) -> None:
    """No file: can_connect CRITICAL naming the instance and the file, nothing sent, nothing acknowledged;
    the file appears and the same agent delivers every window on its next run."""
    path = tmp_path / "late.duckdb"
    run, sink, clock = agent(tmp_path / "state", instance("dw", path))
    reports = by_job(run.run_once())
    assert all(r.errors == 1 and r.windows_processed == 0 for r in reports.values())
    checks = [c for c in sink.checks if c.name == "mlmon.warehouse.can_connect"]
    assert checks and all(c.status is CheckStatus.CRITICAL for c in checks)
    assert "instance dw" in checks[0].message and str(path) in checks[0].message
    assert not [c for c in sink.checks if c.name == "mlmon.job.can_run"]  # the job never got to its queries
    assert not [s for s in sink.samples if not s.name.startswith("mlmon.agent.")]
    shutil.copy(healthy, path)
    sink.reset()
    clock[0] = END + 60
    reports = by_job(run.run_once())
    assert all(r.errors == 0 for r in reports.values())
    sink.assert_service_check("mlmon.warehouse.can_connect", CheckStatus.OK, ["instance:dw"])
    for job in JOBS:
        assert window_points(sink, job) == window_points(clean, job), job
        assert job_check(sink, job).status is CheckStatus.OK


@pytest.mark.parametrize(
    ("job", "fault", "names"),
    [
        ("reproducibility", {"tables": {"replays": "replays_v2"}}, ["replays_v2"]),
        ("quality", {"columns": {"labels": {"label": "clicked"}}}, ["labels", "clicked"]),
        ("training", {"tables": {"training_features": "features_v2"}}, ["features_v2"]),
    ],
    ids=["missing-table", "missing-column", "missing-features-table"],
)
def test_missing_table_or_column_fails_one_job(healthy, tmp_path, clean, job, fault, names) -> None:
    """A table or column the config names is absent: that job's can_run is CRITICAL naming it, the other jobs
    deliver (training: the lineage without the feature breakdown); once it exists, the next run delivers
    the job's pending windows."""
    path = tmp_path / "dw.duckdb"
    shutil.copy(healthy, path)
    run, sink, clock = agent(tmp_path / "state", instance("dw", path, **fault))
    reports = by_job(run.run_once())
    assert reports[job].errors >= 1 and reports[job].windows_processed == 0
    failed = job_check(sink, job)
    assert failed.status is CheckStatus.CRITICAL
    assert all(n in failed.message for n in ["instance dw", f"job {job}", *names]), failed.message
    if job == "training":  # only the feature breakdown is lost; the lineage of each version is still sent
        assert not [s for s in sink.samples if s.name.startswith("mlmon.training.feature.")]
        assert sink.metrics("mlmon.training.rows")
    else:
        assert not window_points(sink, job)
    for other in set(JOBS) - {job}:
        assert reports[other].errors == 0, reports[other].messages
        assert job_check(sink, other).status is CheckStatus.OK
        assert window_points(sink, other) == window_points(clean, other), other
    sink.assert_service_check("mlmon.warehouse.can_connect", CheckStatus.OK, ["instance:dw"])
    # the table or column appears
    with duckdb.connect(str(path)) as con:
        if job == "reproducibility":
            con.execute("CREATE TABLE replays_v2 AS SELECT * FROM replays")
        elif job == "quality":
            con.execute("ALTER TABLE labels RENAME COLUMN label TO clicked")
        else:
            con.execute("CREATE TABLE features_v2 AS SELECT * FROM training_features")
    sink.reset()
    clock[0] = END + 60
    reports = by_job(run.run_once())
    assert reports[job].errors == 0 and job_check(sink, job).status is CheckStatus.OK
    assert window_points(sink, job) == window_points(clean, job)


def test_query_error_in_one_job(healthy, tmp_path, clean) -> None:
    """A statement the engine refuses (a migration turned the label time into text; a text label is read):
    only that job stops, with can_run CRITICAL and the engine's reason; once the type is back, the next run
    delivers its windows."""
    path = tmp_path / "dw.duckdb"
    shutil.copy(healthy, path)
    with duckdb.connect(str(path)) as con:
        (label_type,) = con.execute("SELECT data_type FROM information_schema.columns "
                                    "WHERE table_name = 'labels' AND column_name = 'label_ts'").fetchone()
        con.execute("ALTER TABLE labels ALTER COLUMN label_ts TYPE VARCHAR")
    run, sink, clock = agent(tmp_path / "state", instance("dw", path))
    reports = by_job(run.run_once())
    assert reports["quality"].errors >= 1 and reports["quality"].windows_processed == 0
    failed = job_check(sink, "quality")
    assert failed.status is CheckStatus.CRITICAL and "tables predictions, labels" in failed.message
    assert "VARCHAR" in failed.message  # the engine's own words
    for other in ("predictions", "reproducibility", "training"):
        assert reports[other].errors == 0
        assert window_points(sink, other) == window_points(clean, other)
    with duckdb.connect(str(path)) as con:
        con.execute(f"ALTER TABLE labels ALTER COLUMN label_ts TYPE {label_type}")
    sink.reset()
    clock[0] = END + 60
    reports = by_job(run.run_once())
    assert reports["quality"].errors == 0 and job_check(sink, "quality").status is CheckStatus.OK
    assert window_points(sink, "quality") == window_points(clean, "quality")


def test_predictions_table_lost_after_a_good_run(healthy, tmp_path) -> None:
    """The prediction log disappears (renamed by a migration): every model seen before is CRITICAL on
    predictions.available with the table named, and the jobs reading it are CRITICAL on can_run; training
    still delivers. The table comes back: the windows of the gap are delivered, in order."""
    path = tmp_path / "dw.duckdb"
    shutil.copy(healthy, path)
    run, sink, clock = agent(tmp_path / "state", instance("dw", path))
    clock[0] = END - 3600
    run.run_once()
    models = {t for s in sink.metrics("mlmon.prediction.count") for t in s.tags if t.startswith("model:")}
    with duckdb.connect(str(path)) as con:
        con.execute("ALTER TABLE predictions RENAME TO predictions_old")
    sink.reset()
    clock[0] = END
    reports = by_job(run.run_once())
    available = [c for c in sink.checks if c.name == "mlmon.predictions.available"]
    assert {t for c in available for t in c.tags if t.startswith("model:")} == models
    assert all(c.status is CheckStatus.CRITICAL and "table predictions" in c.message for c in available)
    for job in ("predictions", "quality", "reproducibility"):
        assert job_check(sink, job).status is CheckStatus.CRITICAL
    assert reports["training"].errors == 0 and job_check(sink, "training").status is CheckStatus.OK
    with duckdb.connect(str(path)) as con:
        con.execute("ALTER TABLE predictions_old RENAME TO predictions")
    sink.reset()
    clock[0] = END + 60
    reports = by_job(run.run_once())
    ends = [s.timestamp for s in sink.metrics("mlmon.prediction.count", tags=[sorted(models)[0]])]
    assert ends == sorted(ends) and len(ends) == 6  # the hour missed, 10-minute windows, each once
    assert all(c.status is CheckStatus.OK for c in sink.checks if c.name == "mlmon.predictions.available")


# --- PostgreSQL refusing connections ------------------------------------------------------------------


class Forwarder:
    """A TCP forwarder on a fixed loopback port to the real PostgreSQL server: the server 'comes up' when
    the forwarder starts."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", port))
        self.threads: list[threading.Thread] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


@pytest.fixture
def free_port() -> int:
    return closed_port()


@pytest.mark.postgres
def test_postgres_refusing_connections_then_up(postgres_warehouse, healthy, tmp_path, free_port) -> None:
    """PostgreSQL refuses connections: can_connect CRITICAL for that instance naming host and port (never the
    password), while a DuckDB instance in the same agent delivers; the server comes up and the same agent
    delivers every pending window on its next run."""
    now = END
    sc = known_answers(now)
    postgres_warehouse.write_predictions(sc.rows)
    from urllib.parse import urlsplit

    pg = urlsplit(postgres_warehouse.url)
    password = "pw-never-shown-4711"  # trust auth ignores it
    url = f"postgresql://postgres:{password}@127.0.0.1:{free_port}{pg.path}"
    pg_instance = {"name": "pg", "warehouse": {"engine": "postgres", "url": url, "connect_timeout": "2s"},
                   "tables": {"predictions": postgres_warehouse.table("predictions"), "labels": None,
                              "replays": None, "training_runs": None},
                   "jobs": {"predictions": {"initial_lookback": "2h"}}}
    dw = tmp_path / "dw.duckdb"
    shutil.copy(healthy, dw)
    run, sink, clock = agent(tmp_path / "state", pg_instance, instance("dw", dw))
    reports = run.run_once()
    down = [r for r in reports if r.instance == "pg"]
    assert down and all(r.errors == 1 and r.windows_processed == 0 for r in down)
    check = sink.assert_service_check("mlmon.warehouse.can_connect", CheckStatus.CRITICAL, ["instance:pg"])[0]
    assert "instance pg" in check.message and str(free_port) in check.message
    assert password not in check.message and all(password not in m for r in down for m in r.messages)
    sink.assert_service_check("mlmon.warehouse.can_connect", CheckStatus.OK, ["instance:dw"])
    assert all(r.errors == 0 and (r.windows_processed > 0 or r.job == "training")
               for r in reports if r.instance == "dw")
    forwarder = Forwarder(free_port, (pg.hostname or "127.0.0.1", pg.port or 5432))
    try:
        sink.reset()
        clock[0] = now + 60
        (up,) = [r for r in run.run_once() if r.instance == "pg"]
    finally:
        forwarder.close()
    assert up.errors == 0, up.messages
    sink.assert_service_check("mlmon.warehouse.can_connect", CheckStatus.OK, ["instance:pg"])
    delivered = {s.timestamp for s in sink.metrics("mlmon.prediction.count", tags=["model:ctr_a"])}
    assert set(sc.window_ends) <= delivered


def test_unreadable_state_file_stops_only_its_job(healthy, tmp_path, clean) -> None:
    """A corrupt state file fails its own job with a message naming the file and the remedy; the other jobs
    deliver; once the file is moved away the job starts again from its initial lookback."""
    state = tmp_path / "state"
    (state / "dw").mkdir(parents=True)
    broken = state / "dw" / "quality.json"
    broken.write_text('{"watermark": 17')
    run, sink, _ = agent(state, instance("dw", healthy))
    reports = by_job(run.run_once())
    assert reports["quality"].errors == 1
    assert str(broken) in reports["quality"].messages[0] and "move it away" in reports["quality"].messages[0]
    for other in ("predictions", "reproducibility", "training"):
        assert reports[other].errors == 0
        assert window_points(sink, other) == window_points(clean, other)
    broken.rename(tmp_path / "quality.json.bad")
    sink.reset()
    reports = by_job(run.run_once())
    assert reports["quality"].errors == 0
    assert window_points(sink, "quality") == window_points(clean, "quality")


class _MemoryBound:
    """A real DuckDB engine that, like an engine at its memory cap, refuses statements over more than
    ``max_windows`` windows (``OutOfMemory``) and runs the others."""

    def __init__(self, warehouse: Any, max_windows: int, calls: list[int]) -> None:
        from mlmon.warehouse.engines import open_engine

        self._engine = open_engine(warehouse)
        self.dialect = self._engine.dialect
        self.max_windows, self.calls = max_windows, calls

    def fetch(self, query: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        from mlmon.warehouse.engines import OutOfMemory

        if "window_seconds" in params:
            windows = round((params["end"] - params["start"]).total_seconds() / params["window_seconds"])
            self.calls.append(windows)
            if windows > self.max_windows:
                raise OutOfMemory("duckdb file x: Out of Memory Error: could not allocate block (warehouse -> "
                                  "memory_limit)")
        return self._engine.fetch(query, params)

    def column_types(self, query: Any, params: dict[str, Any]) -> list[tuple[str, str]]:
        return self._engine.column_types(query, params)

    def close(self) -> None:
        self._engine.close()


def test_out_of_memory_runs_the_windows_again_in_smaller_statements(healthy, tmp_path, clean, caplog) -> None:
    """A statement over too many windows for the engine's memory is run again over halves, down to
    single windows: every window delivered once, the numbers of a clean run, one warning per job."""
    run, sink, _ = agent(tmp_path, instance("dw", healthy))
    calls: list[int] = []
    run.engine_factory = lambda warehouse: _MemoryBound(warehouse, 1, calls)
    with caplog.at_level("WARNING", logger="mlmon.runner"):
        reports = by_job(run.run_once())
    assert all(r.errors == 0 for r in reports.values()), [r.messages for r in reports.values()]
    assert max(calls) > 1 and calls.count(1) >= 12  # 12 ten-minute windows at least, one statement each
    for job in JOBS:
        assert window_points(sink, job) == window_points(clean, job), job
    by_key = {(s.name, tuple(sorted(s.tags)), s.timestamp): s.value for s in clean.samples}
    for s in sink.samples:
        if s.name.startswith(("mlmon.prediction.", "mlmon.online.", "mlmon.reproducibility.")):
            assert s.value == pytest.approx(by_key[(s.name, tuple(sorted(s.tags)), s.timestamp)], rel=1e-12)
    warnings = [r.getMessage() for r in caplog.records if "ran out of the engine's memory" in r.getMessage()]
    assert len(warnings) == 3 and all("memory_limit" in w for w in warnings)  # one per window job


def test_out_of_memory_on_one_window_fails_the_job_only(healthy, tmp_path, clean) -> None:
    """When even one window does not fit, the job fails (can_run CRITICAL naming memory_limit), its
    windows stay pending, and training still delivers."""
    run, sink, _ = agent(tmp_path, instance("dw", healthy))
    run.engine_factory = lambda warehouse: _MemoryBound(warehouse, 0, [])
    reports = by_job(run.run_once())
    assert reports["predictions"].errors == 1 and reports["predictions"].windows_processed == 0
    assert "memory_limit" in reports["predictions"].messages[0]
    check = job_check(sink, "predictions")
    assert check.status == CheckStatus.CRITICAL and "memory_limit" in check.message
    assert window_points(sink, "training") == window_points(clean, "training")
    assert not window_points(sink, "predictions")


def test_duckdb_out_of_memory_is_reported_as_such(tmp_path) -> None:
    """DuckDB's own out-of-memory error (a holistic aggregate over a cap of 8 MB) becomes OutOfMemory."""
    from sqlglot import exp

    from mlmon.warehouse.engines import DuckDBEngine, OutOfMemory
    from mlmon.warehouse.sql import parse_template

    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    engine = DuckDBEngine(str(path), settings={"memory_limit": "8MB", "threads": 1})
    query: exp.Expression = parse_template("SELECT QUANTILE_CONT(CAST(range AS DOUBLE), 0.5) AS q FROM range(20000000)")
    try:
        with pytest.raises(OutOfMemory) as err:
            engine.fetch(query, {})
    finally:
        engine.close()
    assert "memory_limit" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("content", ['{"watermark": "yesterday"}', '{"watermark": 1795100000, "lanes": {"x": null}}',
                                     '{"models": {"ctr_banner": {"last_seen": "noon"}}}', "[1, 2]", '"state"'],
                         ids=["watermark-text", "lane-null", "last_seen-text", "array", "string"])
def test_a_wrong_typed_state_file_fails_its_job_only(healthy, tmp_path, clean, content) -> None:
    """A state file of the wrong shape (hand-edited, another program's) used to raise a TypeError that ended
    the run: now its job fails, with can_run CRITICAL naming the file and what is wrong, its self-metrics are
    still sent, and the other jobs deliver; moved away, the job starts over and delivers."""
    state_dir = tmp_path / "state"
    bad = state_dir / "dw" / "quality.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(content)
    run, sink, _ = agent(state_dir, instance("dw", healthy))
    reports = by_job(run.run_once())
    assert reports["quality"].errors == 1 and reports["quality"].windows_processed == 0
    failed = job_check(sink, "quality")
    assert failed.status is CheckStatus.CRITICAL
    assert str(bad) in failed.message and "not a state file mlmon wrote" in failed.message, failed.message
    assert "move it away to start over" in failed.message
    assert [s for s in sink.samples if s.name == "mlmon.agent.run.errors" and "job:quality" in s.tags]
    for job in ("predictions", "reproducibility", "training"):
        assert reports[job].errors == 0, reports[job].messages
        assert window_points(sink, job) == window_points(clean, job), job
    bad.unlink()
    sink.reset()
    reports = by_job(run.run_once())
    assert reports["quality"].errors == 0 and window_points(sink, "quality") == window_points(clean, "quality")


def test_a_clock_that_jumped_ahead_does_not_silence_the_jobs(tmp_path) -> None:
    """One run with the clock a day ahead (a bad NTP step) processes a day of windows before their data
    exists and used to leave the watermark there: nothing sent for a day, lag_seconds 0. Now the next run on
    a correct clock moves the watermark back to its latest due window, says so (a warning, can_run WARNING,
    a lag that is not 0), and the windows come again once their data is there, as a clean agent sends them."""
    early, late = tmp_path / "early.duckdb", tmp_path / "late.duckdb"
    write_duckdb(early, build_frames(END, hours=30))
    write_duckdb(late, build_frames(END + 2 * HOUR, hours=32))
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(early, path)
    run, sink, clock = agent(tmp_path / "state", instance("dw", path))
    run.run_once()
    clock[0] = END + DAY  # the clock jumps a day ahead: a day of empty windows "delivered"
    run.run_once()
    jumped = StateStore(tmp_path / "state").load("dw", "predictions").watermark
    assert jumped is not None and jumped > END + DAY - HOUR

    clock[0] = END + 600  # back on time
    sink.reset()
    reports = by_job(run.run_once())
    for job in ("predictions", "quality", "reproducibility"):
        check = job_check(sink, job)
        assert check.status is CheckStatus.WARNING, (job, check)
        assert "watermark ahead of the clock" in check.message and "processed again" in check.message
    assert StateStore(tmp_path / "state").load("dw", "predictions").watermark == 1_795_183_200  # 14:00
    (lag,) = [s for s in sink.samples if s.name == "mlmon.agent.lag_seconds" and "job:predictions" in s.tags]
    assert lag.value == pytest.approx(END + 600 - 1_795_183_200)
    assert reports["predictions"].errors == 0

    shutil.copy(late, path)  # the data of the hours after END arrives
    clock[0] = END + 2 * HOUR + 600
    sink.reset()
    run.run_once()
    clean_run, clean, clean_clock = agent(tmp_path / "clean", instance("dw", path))
    clean_clock[0] = clock[0]
    clean_run.run_once()  # a clean agent: from its initial lookback (2 h) to the same time
    after = {p for p in window_points(sink, "predictions") if p[2] > END}
    assert after == {p for p in window_points(clean, "predictions") if p[2] > END}
    assert {p[2] for p in after} == {1_795_183_200 + 600 * i for i in range(1, 13)}  # 14:10 ... 16:00
    counts = [s.value for s in sink.samples if s.name == "mlmon.prediction.count" and s.timestamp > END]
    assert counts and min(counts) > 0  # real rows, not the empty windows of the jump
