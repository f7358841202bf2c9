"""``warehouse.query_timeout``: every engine cuts a statement that runs longer, as a QueryError naming the
setting; the connection stays usable; through the agent the job fails (``mlmon.job.can_run`` CRITICAL), the
other jobs deliver, and the next run delivers the windows left pending.

Real engines throughout: the local PostgreSQL (natively and through SQLAlchemy), DuckDB, and Spark in the
session tests/test_spark.py uses. The SQLAlchemy dialects with no server here (Snowflake, Trino,
Databricks, Redshift) are checked on the statements and session properties they are given.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlglot
from tests.helpers import PG_URL, PostgresWarehouse
from tests.scenarios import write_every_table
from tests.test_spark import CONF, spark_ready  # noqa: F401  (the module's Spark session fixture)

from mlmon.config import ConfigError, parse_config
from mlmon.runner import Agent, JobReport
from mlmon.samples import CheckStatus
from mlmon.testing import RecordingSink
from mlmon.warehouse.engines import QueryError, QueryTimeout, SparkEngine, open_engine
from mlmon.warehouse.engines.base import Watchdog, duration_text
from mlmon.warehouse.engines.postgres_engine import session_options
from mlmon.warehouse.engines.sqlalchemy_engine import (
    _with_session_properties,
    cut_by_timeout,
    timeout_session_properties,
    timeout_statements,
)

END = 1_795_183_380.0  # 2026-11-20 14:03 UTC, the agent's fixed clock
JOBS = ("predictions", "quality", "reproducibility", "training")
PREFIX = {"predictions": "mlmon.prediction.", "quality": "mlmon.online.",
          "reproducibility": "mlmon.reproducibility.", "training": "mlmon.training."}
PASSWORD = "pw-never-shown-0815"  # trust auth ignores it


def warehouse_config(warehouse: dict[str, Any]) -> Any:
    return parse_config({"instances": [{"name": "ads", "warehouse": warehouse}]}).instances[0].warehouse


def with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://postgres:{PASSWORD}@{rest.split('@', 1)[-1]}"


def sleeping_backends(marker: str) -> int:
    """Backends (other than this one) still running a statement whose text holds ``marker``."""
    with psycopg.connect(PG_URL, autocommit=True) as con:
        row = con.execute("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                          "AND state = 'active' AND position(%s in query) > 0", (marker,)).fetchone()
    assert row is not None
    return int(row[0])


# --- the agent on PostgreSQL: a labels table that hangs ------------------------------------------------


def pg_instance(pg: PostgresWarehouse, **warehouse: Any) -> dict[str, Any]:
    return {
        "name": "pg",
        "warehouse": {"engine": "postgres", "url": with_password(pg.url), **warehouse},
        "tables": {t: pg.table(t) for t in ("predictions", "labels", "replays", "training_runs", "training_features")},
        # the scenario's windows lie in the hours before the last matured one
        "jobs": {"predictions": {"initial_lookback": "5h"}, "quality": {"initial_lookback": "4h"},
                 "reproducibility": {"initial_lookback": "4h"},
                 "training": {"features": ["age", "device", "bid_floor"]}},
    }


def agent(state: Path, instance: dict[str, Any]) -> tuple[Agent, RecordingSink, list[float]]:
    config = parse_config({"init_config": {"env": "test", "state_dir": str(state)}, "instances": [instance]})
    sink, clock = RecordingSink(), [END]
    return Agent(config, sink, clock=lambda: clock[0]), sink, clock


def window_points(sink: RecordingSink, job: str) -> set[tuple[str, tuple[str, ...], float]]:
    """(metric, tags, timestamp) of the job's metrics (training: without the send-time timestamp)."""
    return {(s.name, tuple(sorted(s.tags)), 0.0 if job == "training" else s.timestamp)
            for s in sink.samples if s.name.startswith(PREFIX[job])}


def job_check(sink: RecordingSink, job: str) -> Any:
    (check,) = [c for c in sink.checks if c.name == "mlmon.job.can_run" and f"job:{job}" in c.tags]
    return check


def by_job(reports: list[JobReport]) -> dict[str, JobReport]:
    return {r.job: r for r in reports}


@pytest.mark.postgres
def test_a_hanging_statement_fails_its_job_only_and_is_retried(postgres_warehouse, tmp_path) -> None:
    """Labels behind a view that sleeps a minute, query_timeout 1s: the quality job fails with can_run CRITICAL
    naming query_timeout (never the password), predictions, reproducibility and training deliver in the same
    run, the run ends well before the sleep would, and no backend is left sleeping. With the real labels back,
    the same agent delivers the quality windows left pending: the points of a clean run."""
    pg = postgres_warehouse
    write_every_table(pg, END)
    instance = pg_instance(pg, query_timeout="1s")
    clean_run, clean, _ = agent(tmp_path / "clean", instance)
    assert all(r.errors == 0 for r in clean_run.run_once())
    assert all(window_points(clean, job) for job in JOBS)

    labels, real = f'"{pg.schema}"."labels"', f'"{pg.schema}"."real_labels"'
    with psycopg.connect(pg.url, autocommit=True) as con:
        con.execute(f'ALTER TABLE {labels} RENAME TO "real_labels"')
        con.execute(f"CREATE VIEW {labels} AS SELECT l.* FROM {real} AS l, (SELECT pg_sleep(60)) AS s")
    run, sink, clock = agent(tmp_path / "state", instance)
    started = time.monotonic()
    reports = by_job(run.run_once())
    took = time.monotonic() - started
    assert took < 20, f"the run took {took:.1f}s: the statement was not cut"
    assert sleeping_backends(pg.schema) == 0
    assert reports["quality"].errors >= 1 and reports["quality"].windows_processed == 0
    failed = job_check(sink, "quality")
    assert failed.status is CheckStatus.CRITICAL
    for words in ("instance pg", "job quality", "labels", "statement cut at warehouse -> query_timeout (1s)",
                  "statement timeout",
                  # four windows in one statement: how to let a slow catch-up through
                  "a statement over 4 windows: a smaller jobs -> quality -> max_windows_per_query"):
        assert words in failed.message, failed.message
    assert PASSWORD not in failed.message and all(PASSWORD not in m for r in reports.values() for m in r.messages)
    assert not window_points(sink, "quality")
    sink.assert_service_check("mlmon.warehouse.can_connect", CheckStatus.OK, ["instance:pg"])
    for job in ("predictions", "reproducibility", "training"):
        assert reports[job].errors == 0, reports[job].messages
        assert job_check(sink, job).status is CheckStatus.OK
        assert window_points(sink, job) == window_points(clean, job), job

    with psycopg.connect(pg.url, autocommit=True) as con:
        con.execute(f"DROP VIEW {labels}")
        con.execute(f'ALTER TABLE {real} RENAME TO "labels"')
    sink.reset()
    clock[0] = END + 60
    reports = by_job(run.run_once())
    assert reports["quality"].errors == 0 and reports["quality"].windows_processed > 0
    assert job_check(sink, "quality").status is CheckStatus.OK
    assert window_points(sink, "quality") == window_points(clean, "quality")


# --- each engine on its own ----------------------------------------------------------------------------


def fetch_timed(engine: Any, sql: str, dialect: str) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        engine.fetch(sqlglot.parse_one(sql, read=dialect), {})
    except QueryError as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


#: about 10^11 row pairs: minutes on any machine
DUCKDB_SLOW = ("SELECT COUNT(*) AS n FROM range(100000000) AS a(i), range(1000) AS b(j) "
               "WHERE (a.i * 7 + b.j) % 1000003 = 5")


def test_duckdb_interrupts_a_long_statement(tmp_path) -> None:
    """A statement running past query_timeout is interrupted: a QueryTimeout naming the setting; the same engine
    then answers; a fast statement after a deadline has passed is not interrupted."""
    import duckdb

    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    engine = open_engine(warehouse_config({"engine": "duckdb", "path": str(path), "query_timeout": "1s"}))
    try:
        err, took = fetch_timed(engine, DUCKDB_SLOW, "duckdb")
        assert isinstance(err, QueryTimeout), err
        assert str(err).startswith(f"duckdb file {path}: statement cut at warehouse -> query_timeout (1s): ")
        assert "Interrupted" in str(err)
        assert 0.9 <= took < 10
        for _ in range(3):
            time.sleep(0.4)  # a watchdog left over would interrupt one of these
            assert engine.fetch(sqlglot.parse_one("SELECT 42 AS answer"), {}) == [(42,)]
    finally:
        engine.close()


def test_duckdb_default_bound_leaves_normal_statements_alone(tmp_path) -> None:
    """With the default bound (10 minutes) statements run as before, column types included."""
    import duckdb

    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i FROM range(10)")
    engine = open_engine(warehouse_config({"engine": "duckdb", "path": str(path)}))
    try:
        assert engine.fetch(sqlglot.parse_one("SELECT SUM(i) AS s FROM t"), {}) == [(45,)]
        assert engine.column_types(sqlglot.parse_one("SELECT i FROM t WHERE 1 = 0"), {}) == [("i", "BIGINT")]
    finally:
        engine.close()


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["postgres", "sqlalchemy"])
def test_postgres_cuts_at_statement_timeout(postgres_warehouse, kind) -> None:
    """pg_sleep(5) with query_timeout 1s, natively (libpq options) and through SQLAlchemy (a session SET): a
    QueryTimeout naming the setting, never the password; no backend left sleeping; the connection answers next,
    in a session whose statement_timeout is the setting."""
    url = with_password(postgres_warehouse.url)
    if kind == "sqlalchemy":
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = open_engine(warehouse_config({"engine": kind, "url": url, "query_timeout": "1s"}))
    label = "postgres" if kind == "postgres" else "postgresql (sqlalchemy)"
    marker = f"mlmon-{kind}-{postgres_warehouse.schema}"
    try:
        err, took = fetch_timed(engine, f"SELECT pg_sleep(5), '{marker}' AS marker", "postgres")
        assert isinstance(err, QueryTimeout), err
        assert str(err) == (f"{label}: statement cut at warehouse -> query_timeout (1s): "
                            "canceling statement due to statement timeout")
        assert PASSWORD not in str(err)
        assert 0.9 <= took < 4
        assert sleeping_backends(marker) == 0
        query = sqlglot.parse_one("SELECT CAST(current_setting('statement_timeout') AS VARCHAR) AS t, "
                                  "CAST(current_setting('TimeZone') AS VARCHAR) AS tz", read="postgres")
        assert engine.fetch(query, {}) == [("1s", "UTC")]
    finally:
        engine.close()


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["postgres", "sqlalchemy"])
def test_postgres_sessions_get_the_default_bound(postgres_warehouse, kind) -> None:
    """Without query_timeout the session's statement_timeout is the default, 10 minutes."""
    url = postgres_warehouse.url if kind == "postgres" else "postgresql+psycopg://" + postgres_warehouse.url.split(
        "://", 1)[1]
    engine = open_engine(warehouse_config({"engine": kind, "url": url}))
    try:
        query = sqlglot.parse_one("SELECT CAST(current_setting('statement_timeout') AS VARCHAR) AS t",
                                  read="postgres")
        assert engine.fetch(query, {}) == [("10min",)]
    finally:
        engine.close()


@pytest.mark.postgres
def test_a_cancel_by_someone_else_is_a_query_error_not_a_timeout(postgres_warehouse) -> None:
    """pg_cancel_backend from another session: a plain QueryError (not the timeout, not a lost connection)."""
    engine = open_engine(warehouse_config({"engine": "postgres", "url": postgres_warehouse.url,
                                           "query_timeout": "1m"}))
    marker = f"mlmon-cancel-{postgres_warehouse.schema}"

    def cancel() -> None:
        with psycopg.connect(postgres_warehouse.url, autocommit=True) as con:
            for _ in range(50):
                row = con.execute("SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE "
                                  "pid <> pg_backend_pid() AND state = 'active' AND position(%s in query) > 0",
                                  (marker,)).fetchone()
                if row and row[0]:
                    return
                time.sleep(0.1)

    canceller = threading.Thread(target=cancel)
    canceller.start()
    try:
        err, _ = fetch_timed(engine, f"SELECT pg_sleep(10), '{marker}' AS marker", "postgres")
        canceller.join()
        assert isinstance(err, QueryError) and not isinstance(err, QueryTimeout), err
        assert "canceling statement due to user request" in str(err) and "query_timeout" not in str(err)
        assert engine.fetch(sqlglot.parse_one("SELECT 1 AS one"), {}) == [(1,)]
    finally:
        engine.close()


#: about 4 * 10^10 row pairs: over a minute on two cores
SPARK_SLOW = ("SELECT COUNT(*) AS n FROM range(200000) AS a CROSS JOIN range(200000) AS b "
              "WHERE (a.id * 7 + b.id) % 1000003 = 5")


@pytest.mark.spark
def test_spark_cancels_the_jobs_of_a_long_statement(spark_ready) -> None:  # noqa: F811
    """A statement running past query_timeout has its jobs cancelled: a QueryTimeout naming the setting; the same
    engine then answers (its jobs are not cancelled: the tag was this statement's only). 5s, not less: right
    after a cut even a tiny statement takes a second or two in local[2] while the cancelled tasks wind down."""
    engine = SparkEngine(warehouse_config({"engine": "spark", "master": "local[2]", "conf": CONF,
                                           "query_timeout": "5s"}))
    context = engine._session.sparkContext
    out: list[Any] = []

    def statement() -> None:
        out.append(fetch_timed(engine, SPARK_SLOW, "spark"))
        out.append(context.getJobTags())  # job tags are the thread's: the statement's is gone

    worker = threading.Thread(target=statement, daemon=True)
    worker.start()
    worker.join(120)
    if worker.is_alive():  # do not leave the JVM busy for the other tests
        context.cancelAllJobs()
        pytest.fail("the Spark statement was not cut within 2 minutes")
    (err, took), tags = out
    assert not [t for t in tags if t.startswith("mlmon-")], tags
    assert isinstance(err, QueryTimeout), err
    text = str(err)
    assert text.startswith("spark: statement cut at warehouse -> query_timeout (5s): ") and "\n" not in text
    assert "cancelled" in text
    assert 5 <= took < 60
    assert engine.fetch(sqlglot.parse_one("SELECT COUNT(*) AS n FROM range(1000)", read="spark"), {}) == [(1000,)]


# --- the watchdog --------------------------------------------------------------------------------------


def test_watchdog_fires_past_the_deadline_and_never_after_the_block() -> None:
    calls: list[float] = []
    with Watchdog(0.2, lambda: calls.append(time.monotonic()), repeat=0.1) as dog:
        time.sleep(0.55)
    assert dog.fired and len(calls) >= 3  # at the deadline, then again: a cancel may land between jobs
    seen = len(calls)
    time.sleep(0.3)
    assert len(calls) == seen
    with Watchdog(0.3, lambda: calls.append(0.0)) as quiet:
        pass
    time.sleep(0.4)
    assert not quiet.fired and len(calls) == seen
    with Watchdog(None, lambda: calls.append(0.0)) as unbounded:
        time.sleep(0.05)
    assert not unbounded.fired and len(calls) == seen


# --- the SQLAlchemy dialects without a server here ------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "seconds", "statements", "properties"),
    [
        ("postgres", 600.0, ["SET statement_timeout = 600000"], {}),
        ("redshift", 1.5, ["SET statement_timeout = 1500"], {}),
        ("snowflake", 600.0, ["ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = 600"], {}),
        ("snowflake", 0.2, ["ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = 1"], {}),  # whole seconds, not 0
        ("snowflake", 30 * 86400.0, ["ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = 604800"], {}),  # its max
        ("databricks", 90.5, ["SET STATEMENT_TIMEOUT = 91"], {}),
        ("spark", 7 * 86400.0, ["SET STATEMENT_TIMEOUT = 172800"], {}),
        ("trino", 600.0, [], {"query_max_run_time": "600000ms"}),
        ("bigquery", 600.0, [], {}),  # the client's default job config: job_timeout_ms
        ("duckdb", 600.0, [], {}),  # a watchdog interrupts the connection
    ],
)
def test_each_dialect_gets_its_own_bound(dialect, seconds, statements, properties) -> None:
    assert timeout_statements(dialect, seconds) == statements
    assert timeout_session_properties(dialect, seconds) == properties


def test_bound_numbers_come_from_the_validated_duration() -> None:
    """Only a number reaches a SET: text that is not a duration is refused by the config."""
    with pytest.raises(ConfigError, match="instances -> 0 -> warehouse -> query_timeout"):
        warehouse_config({"engine": "sqlalchemy", "url": "snowflake://u@acct/db",
                          "query_timeout": "1; ALTER USER x SET PASSWORD = 'y'"})
    w = warehouse_config({"engine": "sqlalchemy", "url": "snowflake://u@acct/db", "query_timeout": "2.5m"})
    assert timeout_statements(w.sql_dialect(), w.query_timeout) == [
        "ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = 150"]
    assert session_options(1.5) == "-c TimeZone=UTC -c statement_timeout=1500"
    assert session_options(0.0001) == "-c TimeZone=UTC -c statement_timeout=1"
    assert session_options(None) == "-c TimeZone=UTC"


def test_trino_keeps_the_urls_session_properties() -> None:
    """The do_connect listener adds query_max_run_time to what the URL gave (json session_properties)."""
    listener = _with_session_properties(timeout_session_properties("trino", 30.0))
    cparams: dict[str, Any] = {"host": "trino", "session_properties": {"query_priority": "2"}}
    listener(None, None, [], cparams)
    assert cparams["session_properties"] == {"query_priority": "2", "query_max_run_time": "30000ms"}
    bare: dict[str, Any] = {"host": "trino"}
    listener(None, None, [], bare)
    assert bare["session_properties"] == {"query_max_run_time": "30000ms"}


@pytest.mark.parametrize(
    ("message", "elapsed", "cut"),
    [
        ("canceling statement due to statement timeout", 0.1, True),  # PostgreSQL, Redshift
        ("000630 (57014): Statement reached its statement or warehouse timeout of 1 second(s) and was canceled.",
         1.0, True),  # Snowflake
        ('TrinoQueryError(type=INSUFFICIENT_RESOURCES, name=EXCEEDED_TIME_LIMIT, message="Query exceeded maximum '
         'time limit of 1.00s", query_id=20260101_000000_00001_abcde)', 1.0, True),  # Trino
        ("400 Job execution was cancelled: Job timed out after 1 sec", 1.0, True),  # BigQuery
        ("Query was cancelled", 1.2, True),  # a server with other words, after the timeout
        ("Query was cancelled", 0.3, False),  # cancelled before the timeout: someone else
        ('relation "x" does not exist', 5.0, False),
    ],
)
def test_timeout_messages(message, elapsed, cut) -> None:
    assert cut_by_timeout(message, elapsed, 1.0) is cut


# --- config --------------------------------------------------------------------------------------------


WAREHOUSES = [
    {"engine": "duckdb", "path": "w.duckdb"},
    {"engine": "postgres", "url": "postgresql://u@db/ads"},
    {"engine": "spark"},
    {"engine": "sqlalchemy", "url": "trino://u@trino:443/hive/ads"},
]


@pytest.mark.parametrize("warehouse", WAREHOUSES, ids=lambda w: w["engine"])
def test_query_timeout_default_and_durations(warehouse) -> None:
    assert warehouse_config(warehouse).query_timeout == 600.0
    for text, seconds in (("10m", 600.0), ("30s", 30.0), ("1h", 3600.0), (45, 45.0), ("0.5s", 0.5)):
        assert warehouse_config({**warehouse, "query_timeout": text}).query_timeout == seconds


@pytest.mark.parametrize("warehouse", WAREHOUSES, ids=lambda w: w["engine"])
@pytest.mark.parametrize("bad", [0, "0s", -5, "-1m", "soon"])
def test_query_timeout_must_be_positive(warehouse, bad) -> None:
    with pytest.raises(ConfigError, match=r"instances -> 0 -> warehouse -> query_timeout: "):
        warehouse_config({**warehouse, "query_timeout": bad})


def test_duration_text() -> None:
    assert [duration_text(s) for s in (1, 90, 600, 3600, 0.5, 5400)] == ["1s", "90s", "10m", "1h", "0.5s", "90m"]


@pytest.mark.postgres
def test_the_urls_own_libpq_options_are_kept(postgres_warehouse) -> None:
    """`?options=-c statement_timeout=...` in the URL used to be replaced by mlmon's own options: the URL's
    settings are kept (a statement_timeout of the user's wins over query_timeout), and the session is in UTC."""
    from mlmon.warehouse.engines import PostgresEngine

    url = f"{postgres_warehouse.url}?options=-c%20statement_timeout%3D1234%20-c%20application_name%3Dmine"
    engine = PostgresEngine(url, connect_timeout=5, query_timeout=600)
    try:
        rows = engine.fetch(sqlglot.parse_one("SELECT current_setting('statement_timeout'), "
                                              "current_setting('application_name'), current_setting('TimeZone')",
                                              read="postgres"), {})
    finally:
        engine.close()
    assert rows == [("1234ms", "mine", "UTC")]
