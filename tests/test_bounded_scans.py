"""A run's cost follows its windows, not the history in the tables: every statement bounds every table it
reads by time, and with ``partitions:`` by its date partition column too.

* DuckDB over hive-partitioned Parquet (``dt=YYYY-MM-DD/`` folders): the files each statement opens, read
  from DuckDB's own profile, are those of its window range (and, without ``partitions:``, every file: the
  test can fail);
* PostgreSQL: ``EXPLAIN`` of each statement shows the time predicate reaching the label and replay scans
  (only the range's partitions of a table partitioned by ``label_ts``; an index condition on ``replays.ts``
  and ``predictions.ts``);
* a catch-up longer than the drift reference reads each reference once (from the run's memo), with the
  numbers of runs that read every reference from the warehouse.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlglot import exp

from mlmon.config import Instance, parse_config
from mlmon.runner import Agent
from mlmon.testing import RecordingSink
from mlmon.warehouse.cardinality import fetch_pairs
from mlmon.warehouse.engines import DuckDBEngine, Engine, open_engine
from mlmon.warehouse.predictions import fetch_prediction_aggregates
from mlmon.warehouse.quality import fetch_label_balance, fetch_quality
from mlmon.warehouse.reproducibility import fetch_reproducibility
from mlmon.warehouse.sql import render

HOUR, DAY = 3600.0, 86400.0
DAY0 = 1_795_132_800.0  # 2026-11-20 00:00 UTC
DAYS = 5
DATES = [f"2026-11-{20 + d}" for d in range(DAYS)]
PARTITIONS = {"predictions": "dt", "labels": "dt", "replays": "dt"}


# --- DuckDB over hive-partitioned Parquet ------------------------------------------------------------


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five days of predictions (two models, one a minute each), a label 5 to 14 minutes after each and a
    replay of each, as Parquet in ``dt=YYYY-MM-DD/`` folders of the UTC date of their time column."""
    root = tmp_path_factory.mktemp("lake")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        """CREATE TABLE served AS
           SELECT 'r' || i AS request_id, to_timestamp($day0 + (i // 2) * 60)::TIMESTAMP AS ts,
                  CASE WHEN i % 2 = 0 THEN 'ctr' ELSE 'cvr' END AS model, 'v1' AS model_version,
                  ((i * 7919) % 997) / 997.0 AS prediction, i
           FROM range($n) AS t(i)""",
        {"day0": DAY0, "n": DAYS * 1440 * 2},
    )
    dt = "strftime({}, '%Y-%m-%d') AS dt"
    tables = {
        "predictions": f"SELECT request_id, ts, model, model_version, prediction, {dt.format('ts')} FROM served",
        "labels": f"""SELECT request_id, label, label_ts, {dt.format('label_ts')} FROM (
                        SELECT request_id, CAST((i * 31) % 7 < 2 AS INTEGER) AS label,
                               ts + INTERVAL (5 + i % 10) MINUTE AS label_ts FROM served)""",
        "replays": f"SELECT request_id, model_version, prediction, ts, {dt.format('ts')} FROM served",
    }
    for name, select in tables.items():
        con.execute(f"COPY ({select}) TO '{root / name}' (FORMAT parquet, PARTITION_BY (dt))")
    con.close()
    return root


def lake_instance(lake: Path, partitioned: bool = True) -> Instance:
    folders = {name: str(lake / name) for name in PARTITIONS}
    return parse_config({"instances": [{
        "name": "lake", "warehouse": {"engine": "duckdb", "parquet": folders},
        "partitions": PARTITIONS if partitioned else {},
    }]}).instances[0]


class ProfiledEngine:
    """The agent's DuckDB engine, with DuckDB's profiler on: the Parquet files each statement opened."""

    def __init__(self, instance: Instance, profile: Path) -> None:
        self.inner = open_engine(instance.warehouse)
        assert isinstance(self.inner, DuckDBEngine)
        self.dialect = self.inner.dialect
        self.profile = profile
        con = self.inner._con  # the test's only look inside: DuckDB profiles per connection
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute(f"SET profiling_output = '{profile}'")
        self.opened: list[dict[str, set[str]]] = []  # per statement: table -> dt folders opened

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        rows = self.inner.fetch(query, params)
        self.opened.append(files_opened(json.loads(self.profile.read_text())))
        return rows

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        return self.inner.column_types(query, params)

    def close(self) -> None:
        self.inner.close()


def files_opened(profile: dict[str, Any]) -> dict[str, set[str]]:
    """Table -> the ``dt`` folders of the Parquet files the profiled statement's scans read (``{"*"}``: DuckDB
    named the glob, not the files: every file, as many as it says it read)."""
    out: dict[str, set[str]] = {}

    def walk(node: dict[str, Any]) -> None:
        info = node.get("extra_info") or {}
        if "Total Files Read" in info:
            names = info.get("Filename(s)", "")
            table = next(t for t in PARTITIONS if f"/{t}/" in names)
            folders = set(re.findall(r"dt=(\d{4}-\d\d-\d\d)", names))
            if folders:
                assert len(folders) == int(info["Total Files Read"]), info  # one file per folder
            else:
                assert int(info["Total Files Read"]) >= DAYS, info
                folders = {"*"}
            out.setdefault(table, set()).update(folders)
        for child in node.get("children", []):
            walk(child)

    for top in profile.get("operator", [profile]) if "operator" in profile else [profile]:
        walk(top)
    return out


@pytest.mark.parametrize(
    ("hour", "dates"),
    [(2 * 24 + 5, {"predictions": DATES[2:3], "labels": DATES[2:3]}),
     # the window before midnight: its labels arrive until 01:00 the next day
     (2 * 24 + 23, {"predictions": DATES[2:3], "labels": DATES[2:4]}),
     # the first window of a day: labels stamped up to label_skew (1 h) before it still count
     (3 * 24, {"predictions": DATES[3:4], "labels": DATES[2:4]})],
)
def test_quality_reads_only_its_partitions(lake: Path, tmp_path: Path, hour: int, dates: dict[str, list[str]]) -> None:
    start = DAY0 + hour * HOUR
    instance = lake_instance(lake)
    engine = ProfiledEngine(instance, tmp_path / "profile.json")
    try:
        got = fetch_quality(engine, instance, start, start + HOUR, HOUR, HOUR)
        fetch_label_balance(engine, instance, start, start + HOUR, HOUR, HOUR)
    finally:
        engine.close()
    want = {table: set(days) for table, days in dates.items()}
    assert engine.opened == [want, want]
    # the same numbers as reading every file
    plain = lake_instance(lake, partitioned=False)
    everything = ProfiledEngine(plain, tmp_path / "plain.json")
    try:
        full = fetch_quality(everything, plain, start, start + HOUR, HOUR, HOUR).groups
        assert full.keys() == got.groups.keys()
        for key, agg in full.items():  # counts equal; sums up to the order of summation
            assert dataclasses.asdict(agg) == pytest.approx(dataclasses.asdict(got.groups[key]), rel=1e-12)
    finally:
        everything.close()
    assert everything.opened[0] == {"predictions": {"*"}, "labels": {"*"}}  # without partitions: every file
    assert {k.model for k in got.groups} == {"ctr", "cvr"} and all(a.labeled_count == 60 for a in got.groups.values())


@pytest.mark.parametrize(("hour", "days"), [(2 * 24 + 5, DATES[2:3]), (3 * 24, DATES[2:4])])
def test_reproducibility_reads_only_its_partitions(lake: Path, tmp_path: Path, hour: int, days: list[str]) -> None:
    start = DAY0 + hour * HOUR
    instance = lake_instance(lake)
    engine = ProfiledEngine(instance, tmp_path / "profile.json")
    try:
        got = fetch_reproducibility(engine, instance, start, start + HOUR, HOUR, 1e-6, 1e-4)
    finally:
        engine.close()
    # the probe for replays.ts reads no file; the statement: the window's day (and the one before, within
    # replay_skew of a window that starts at midnight)
    assert engine.opened[-1] == {"predictions": {DATES[hour // 24]}, "replays": set(days)}
    assert all(a.checked_count == 60 and a.reproduced_count == 60 for a in got.groups.values())


def test_predictions_and_plan_read_only_their_partitions(lake: Path, tmp_path: Path) -> None:
    """The predictions statement: the window's day and its drift reference's; plan's pairs: the period and
    the day before it."""
    start = DAY0 + (2 * 24 + 5) * HOUR
    instance = lake_instance(lake)
    engine = ProfiledEngine(instance, tmp_path / "profile.json")
    try:
        result = fetch_prediction_aggregates(engine, instance, start, start + HOUR, start - DAY, start + HOUR - DAY,
                                             600)
        fetch_pairs(engine, instance, start, start + HOUR, 600, day_start=start - DAY, ref_start=start - DAY,
                    ref_end=start + HOUR - DAY)
    finally:
        engine.close()
    assert engine.opened == [{"predictions": set(DATES[1:3])}, {"predictions": set(DATES[1:3])}]
    assert len(result.groups) == 2 * 12  # two models, six current and six reference windows


def test_an_hourly_run_reads_only_the_partitions_of_its_windows(lake: Path, tmp_path: Path) -> None:
    """``mlmon run --once``'s windowed jobs at 06:10 on the third day: no statement opens another day."""
    now = DAY0 + (2 * 24 + 6) * HOUR + 600
    config = parse_config({
        "init_config": {"state_dir": str(tmp_path / "state")},
        "instances": [{"name": "lake", "warehouse": {"engine": "duckdb",
                                                     "parquet": {n: str(lake / n) for n in PARTITIONS}},
                       "tables": {"training_runs": None, "training_features": None}, "partitions": PARTITIONS}],
    })
    engines: list[ProfiledEngine] = []

    def factory(warehouse: Any) -> Engine:
        engines.append(ProfiledEngine(config.instances[0], tmp_path / f"profile-{len(engines)}.json"))
        return engines[-1]

    sink = RecordingSink()
    reports = Agent(config, sink, clock=lambda: now, engine_factory=factory).run_once()
    assert {r.job: r.windows_processed for r in reports} == {"predictions": 6, "quality": 1, "reproducibility": 1}
    assert sink.metrics("mlmon.online.auc") and sink.metrics("mlmon.reproducibility.rate")
    opened: dict[str, set[str]] = {}
    for engine in engines:
        for statement in engine.opened:
            for table, days in statement.items():
                opened.setdefault(table, set()).update(days)
    # predictions: today and, for the drift reference, yesterday; labels and replays: today only
    assert opened == {"predictions": set(DATES[1:3]), "labels": {DATES[2]}, "replays": {DATES[2]}}


# --- PostgreSQL: EXPLAIN ---------------------------------------------------------------------------


def _explain(con: Any, query: exp.Expression, params: Mapping[str, Any]) -> str:
    from mlmon.warehouse.engines.base import naive_utc

    rows = con.execute("EXPLAIN " + render(query, "postgres"), naive_utc(params)).fetchall()
    return "\n".join(r[0] for r in rows)


@pytest.mark.postgres
def test_postgres_plans_bound_every_scan_by_time(postgres_warehouse: Any) -> None:
    """Thirty days of history: labels range-partitioned by label_ts per day, replays and predictions
    indexed on ts. Each statement's plan scans only the range's label partitions, and reaches replays and
    predictions through an index condition on ts."""
    import psycopg

    from mlmon.warehouse.predictions import build_query, query_params
    from mlmon.warehouse.quality import _quality_params, build_label_balance_query, build_quality_query
    from mlmon.warehouse.reproducibility import build_reproducibility_query

    schema = postgres_warehouse.schema
    first = DAY0 - 25 * DAY
    with psycopg.connect(postgres_warehouse.url, autocommit=True) as con:
        con.execute(f'SET search_path = "{schema}"')
        con.execute("CREATE TABLE predictions (request_id TEXT, ts TIMESTAMP, model TEXT, model_version TEXT, "
                    "prediction DOUBLE PRECISION)")
        con.execute("CREATE TABLE replays (request_id TEXT, model_version TEXT, prediction DOUBLE PRECISION, "
                    "ts TIMESTAMP)")
        con.execute("CREATE TABLE labels (request_id TEXT, label INTEGER, label_ts TIMESTAMP) "
                    "PARTITION BY RANGE (label_ts)")
        for d in range(31):
            low, high = (psycopg.sql.Literal(_utc(first + k * DAY)) for k in (d, d + 1))
            con.execute(psycopg.sql.SQL("CREATE TABLE {} PARTITION OF labels FOR VALUES FROM ({}) TO ({})").format(
                psycopg.sql.Identifier(f"labels_d{d:02d}"), low, high))
        con.execute("""INSERT INTO predictions
                       SELECT 'r' || i, to_timestamp(%(first)s + i * 60) AT TIME ZONE 'UTC',
                              CASE WHEN i %% 2 = 0 THEN 'ctr' ELSE 'cvr' END, 'v1', (i %% 997) / 997.0
                       FROM generate_series(0, 30 * 1440 - 1) AS i""", {"first": first})
        con.execute("INSERT INTO labels SELECT request_id, (length(request_id) %% 2), ts + interval '10 minutes' "
                    "FROM predictions WHERE ts + interval '10 minutes' < %(end)s",
                    {"end": _utc(first + 31 * DAY)})
        con.execute("INSERT INTO replays SELECT request_id, model_version, prediction, ts FROM predictions")
        con.execute("CREATE INDEX ON predictions (ts)")
        con.execute("CREATE INDEX ON replays (ts)")
        con.execute("CREATE INDEX ON labels (request_id)")
        con.execute("ANALYZE predictions; ANALYZE replays; ANALYZE labels")

        instance = parse_config({"instances": [{
            "name": "pg", "warehouse": postgres_warehouse.config(),
            "tables": {t: postgres_warehouse.table(t) for t in ("predictions", "labels", "replays")},
        }]}).instances[0]
        start = DAY0 + 5 * HOUR  # the window 05:00-06:00 of the 26th day: label partition d25 only
        quality = _quality_params(instance, start, start + HOUR, HOUR, HOUR, (), ())
        plans = {
            "quality": _explain(con, build_quality_query(instance), quality),
            "label balance": _explain(con, build_label_balance_query(instance), quality),
        }
        for name, plan in plans.items():
            scanned = sorted(set(re.findall(r"labels_d\d\d", plan)))
            assert scanned == ["labels_d25"], (name, plan)
            assert re.search(r"Index Cond: \(\(ts >= .*\) AND \(ts < .*\)\)", plan), (name, plan)
        repro = build_reproducibility_query(instance)
        repro_params = {"start": _utc(start), "end": _utc(start + HOUR), "window_seconds": 3600, "atol": 1e-6,
                        "rtol": 1e-4, "replay_start": _utc(start - HOUR), "replay_end": _utc(start + 2 * HOUR),
                        "replay_skew": 3600.0}
        plan = _explain(con, repro, repro_params)
        replay_scan = plan[plan.index("on replays"):]
        assert re.search(r"Index Cond: \(\(ts >= .*\) AND \(ts < .*\)\)", replay_scan), plan
        plan = _explain(con, build_query(instance), query_params(start, start + HOUR, start - DAY, start + HOUR - DAY,
                                                                  600))
        assert "Seq Scan on predictions" not in plan and "Index Cond" in plan, plan


def _utc(seconds: float) -> Any:
    from tests.helpers import utc

    return utc(seconds)


# --- no re-reads ---------------------------------------------------------------------------------------


class RangeRecorder:
    """An engine that records the time ranges of the predictions statements it runs."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.ranges: list[tuple[float, float]] = []

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        if "ref_start" in params and "drift_max" in params:  # the predictions statement
            spans = {(params["start"], params["end"]), (params["ref_start"], params["ref_end"])}
            self.ranges += [(a.timestamp(), b.timestamp()) for a, b in spans if a < b]
        return self.inner.fetch(query, params)

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        return self.inner.column_types(query, params)

    def close(self) -> None:
        self.inner.close()


def _overlap(ranges: Sequence[tuple[float, float]]) -> float:
    """Seconds of the time axis read by more than one of ``ranges`` (or twice by one run)."""
    ordered = sorted(ranges)
    return sum(max(0.0, min(prev[1], cur[1]) - cur[0]) for prev, cur in itertools.pairwise(ordered))


def test_a_catch_up_reads_each_drift_reference_once(tmp_path: Path) -> None:
    """A 40-hour catch-up of 10-minute windows (drift reference 1 day): every instant is read once (but the
    pooled windows before the first), and the predictions metrics are those of hourly runs that read every
    reference from the warehouse."""
    from mlmon.scenarios import build_frames, write_duckdb

    end = DAY0 + 3 * DAY + 10 * HOUR
    path = tmp_path / "warehouse.duckdb"
    write_duckdb(path, build_frames(end, hours=66))

    def config(state: str) -> Any:
        return parse_config({"init_config": {"state_dir": str(tmp_path / state)}, "instances": [{
            "name": "ads", "warehouse": {"engine": "duckdb", "path": str(path)},
            "jobs": {"quality": {"enabled": False}, "reproducibility": {"enabled": False},
                     "training": {"enabled": False}, "predictions": {"lateness": 0, "drift_reference": "1d"}},
        }]})

    def agent(state: str, clock: list[float], recorders: list[RangeRecorder]) -> tuple[Agent, RecordingSink]:
        def factory(warehouse: Any) -> Engine:
            recorders.append(RangeRecorder(open_engine(warehouse)))
            return recorders[-1]

        sink = RecordingSink()
        return Agent(config(state), sink, clock=lambda: clock[0], engine_factory=factory), sink

    first = end - 40 * HOUR
    # one catch-up from a watermark 40 hours back (statements of 36 windows)
    clock: list[float] = [first]
    recorded: list[RangeRecorder] = []
    catch_up, catch_up_sink = agent("catch-up", clock, recorded)
    catch_up.run_once()  # a first run: the window before `first`, and the watermark
    clock[0] = end
    recorded.clear()
    catch_up.run_once()
    ranges = [r for recorder in recorded for r in recorder.ranges]
    # cvr_app's night windows hold fewer than drift_min_rows: they pool up to the five windows before them, so
    # the first window's five before it, and before its reference, are read too, for that model only. The
    # first five are read again later, for every model, as references: the only instants read twice
    pool = 5 * 600.0
    assert _overlap(ranges) == pool, sorted(ranges)
    covered = sum(b - a for a, b in ranges)
    assert covered == pytest.approx(40 * HOUR + DAY + 2 * pool)  # the windows, the first day's references once

    # hourly runs over the same windows, each reading its references again
    hourly_clock: list[float] = [first]
    hourly, hourly_sink = agent("hourly", hourly_clock, [])
    hourly.run_once()
    while hourly_clock[0] < end:
        hourly_clock[0] = min(end, hourly_clock[0] + HOUR)
        hourly.run_once()

    def points(sink: RecordingSink) -> dict[tuple[str, tuple[str, ...], float], float]:
        return {(s.name, s.tags, s.timestamp): s.value for s in sink.samples
                if s.name.startswith("mlmon.prediction.") and s.timestamp > first}

    got, want = points(catch_up_sink), points(hourly_sink)
    assert got.keys() == want.keys()
    assert got == pytest.approx(want, rel=1e-12)  # means and deviations: up to the engine's summation order
    psi = {k: v for k, v in got.items() if k[0] == "mlmon.prediction.psi"}
    assert psi == {k: want[k] for k in psi}  # drift from the same histograms: exactly
    assert {m for m, *_ in got} >= {"mlmon.prediction.psi", "mlmon.prediction.ks_statistic"}
    psi_windows = {ts for _, _, ts in psi}
    assert max(psi_windows) - min(psi_windows) >= 30 * HOUR  # references from the run's memo among them


# --- label_skew -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("skew", "counted"), [(None, {"r0", "r1"}), ("30m", {"r0"}), ("0s", set())])
def test_labels_stamped_before_their_window_count_within_label_skew(duckdb_warehouse: Any, skew: str | None,
                                                                    counted: set[str]) -> None:
    """Clocks that disagree: a label stamped 20 or 40 minutes before its prediction's window counts within
    label_skew (default 1 h), and not beyond; the same through the agent's config."""
    from tests.helpers import utc
    from tests.scenarios import LABEL_COLUMNS, PREDICTION_COLUMNS
    from tests.tables import write_table

    start = DAY0 + 5 * HOUR
    write_table(duckdb_warehouse, "predictions", PREDICTION_COLUMNS,
                [(f"r{i}", utc(start + 60 * i), "ctr", "v1", 0.25) for i in range(3)])
    write_table(duckdb_warehouse, "labels", LABEL_COLUMNS,
                [("r0", 1, utc(start - 20 * 60)), ("r1", 1, utc(start - 40 * 60)), ("r2", 1, utc(start - 2 * HOUR))])
    jobs = {"quality": {"label_skew": skew}} if skew else {}
    instance = parse_config({"instances": [{"name": "a", "warehouse": duckdb_warehouse.config(),
                                            "jobs": jobs}]}).instances[0]
    engine = open_engine(instance.warehouse)
    try:
        (agg,) = fetch_quality(engine, instance, start, start + HOUR, HOUR, HOUR).groups.values()
    finally:
        engine.close()
    assert (agg.count, agg.labeled_count, agg.positives) == (3, len(counted), len(counted))
