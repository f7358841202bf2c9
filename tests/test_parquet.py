"""Parquet folders as tables of the embedded engine: the same rows as a DuckDB table and as a folder of
Parquet files (partitioned by day) give the same numbers through the agent; missing folders are errors
that name the config key and the path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests.helpers import DuckDBWarehouse
from tests.scenarios import write_every_table

from mlmon.config import ConfigError, parse_config
from mlmon.runner import Agent
from mlmon.testing import RecordingSink
from mlmon.warehouse.engines import DuckDBEngine, WarehouseError

TABLES = ("predictions", "labels", "replays", "training_runs", "training_features")
#: the scenario spans the 3 hours before the last matured hour: every job must look back past it
JOBS = {"predictions": {"initial_lookback": "5h"}, "quality": {"initial_lookback": "4h"},
        "reproducibility": {"initial_lookback": "4h"}, "training": {"features": ["age", "device", "bid_floor"]}}


def export_parquet(database: Path, lake: Path) -> dict[str, str]:
    """Every table of ``database`` as Parquet under ``lake``: predictions and labels as one folder each,
    hive-partitioned by day and hour (several files), the others as one file in a folder. Returns name ->
    folder."""
    lake.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database), read_only=True)
    try:
        for table in TABLES:
            folder = lake / table
            if table in ("predictions", "labels"):
                ts = "ts" if table == "predictions" else "COALESCE(label_ts, TIMESTAMP '1970-01-01')"
                con.execute(f'COPY (SELECT *, CAST({ts} AS DATE) AS "day", HOUR({ts}) AS "hour" FROM "{table}") '
                            f"TO '{folder}' (FORMAT parquet, PARTITION_BY (day, hour))")
            else:
                folder.mkdir(parents=True)
                con.execute(f'COPY "{table}" TO \'{folder / "part-0.parquet"}\' (FORMAT parquet)')
    finally:
        con.close()
    return {table: str(lake / table) for table in TABLES}


def run_agent(
    warehouse: dict[str, Any], now: float, state_dir: Path, schema: str | None = None
) -> dict[tuple[Any, ...], float]:
    """Every job once at ``now`` (tables in ``schema`` if given): (metric, tags, timestamp) -> value, without
    the agent's self-metrics."""
    tables = {t: f"{schema}.{t}" if schema else t for t in TABLES}
    config = parse_config({
        "init_config": {"env": "test", "state_dir": str(state_dir), "datadog": {"historical_ingestion": True}},
        "instances": [{"name": "ads", "warehouse": warehouse, "tables": tables,
                       "tags": ["team:ads"], "jobs": JOBS}],
    })
    sink = RecordingSink()
    reports = Agent(config, sink, clock=lambda: now).run_once()
    assert all(r.errors == 0 for r in reports), [m for r in reports for m in r.messages]
    out = {}
    for s in sink.samples:
        if not s.name.startswith("mlmon.agent."):
            key = (s.name, s.tags, s.timestamp)
            assert key not in out, f"duplicate point {key}"
            out[key] = s.value
    return out


def assert_same_numbers(want: dict[tuple[Any, ...], float], got: dict[tuple[Any, ...], float]) -> None:
    """Same metric names, tags and timestamps; values equal within 1e-9 relative."""
    families = {k[0].split(".")[1] for k in want}
    assert {"prediction", "online", "reproducibility", "training"} <= families
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), key


@pytest.fixture
def lake(tmp_path: Path) -> tuple[float, Path, dict[str, str]]:
    """A DuckDB file with every table, and the same tables as Parquet folders."""
    now = time.time()
    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    write_every_table(warehouse, now)
    return now, warehouse.path, export_parquet(warehouse.path, tmp_path / "lake")


def test_parquet_folders_give_the_numbers_of_the_duckdb_tables(tmp_path, lake) -> None:
    """Every job, metric by metric: DuckDB tables and hive-partitioned Parquet folders agree."""
    now, database, folders = lake
    assert len(list(Path(folders["predictions"]).rglob("hour=*/*.parquet"))) >= 3
    want = run_agent({"engine": "duckdb", "path": str(database)}, now, tmp_path / "state-table")
    got = run_agent({"engine": "duckdb", "parquet": folders}, now, tmp_path / "state-parquet")
    assert_same_numbers(want, got)


def test_parquet_views_beside_a_read_only_file(tmp_path, lake) -> None:
    """A Parquet view can sit beside the file's tables (the file stays read-only) and shadows nothing."""
    _, database, folders = lake
    engine = DuckDBEngine(str(database), {"lake_predictions": folders["predictions"]})
    try:
        from mlmon.warehouse.sql import exists_query, parse_template

        engine.fetch(exists_query("lake_predictions"), {})
        count = parse_template("SELECT COUNT(*) AS n FROM __source__ AS src")
        from mlmon.warehouse.sql import bind_source

        (n_lake,), = engine.fetch(bind_source(count, "lake_predictions", {}), {})
        (n_table,), = engine.fetch(bind_source(count, "predictions", {}), {})
        assert n_lake == n_table > 0
    finally:
        engine.close()


def test_hive_partition_columns_are_read(tmp_path) -> None:
    """``key=value`` folders become columns, as DuckDB and Spark read them."""
    folder = tmp_path / "lake" / "predictions"
    for day in ("2024-01-01", "2024-01-02"):
        (folder / f"day={day}").mkdir(parents=True)
        con = duckdb.connect()
        con.execute(f"COPY (SELECT 0.5 AS prediction) TO '{folder / f'day={day}' / 'x.parquet'}' (FORMAT parquet)")
        con.close()
    engine = DuckDBEngine(None, {"predictions": str(folder)})
    try:
        from mlmon.warehouse.sql import bind_source, parse_template

        days = parse_template("SELECT CAST(src.day AS VARCHAR) AS d FROM __source__ AS src ORDER BY 1")
        assert engine.fetch(bind_source(days, "predictions", {}), {}) == [("2024-01-01",), ("2024-01-02",)]
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("make", "location", "words"),
    [
        (lambda root: None, "missing", "does not exist"),
        (lambda root: (root / "empty").mkdir(), "empty", "no *.parquet file under"),
        (lambda root: (root / "csv").mkdir() or (root / "csv" / "a.csv").write_text("x\n1\n"), "csv",
         "no *.parquet file under"),
        (lambda root: None, "nothing-*/*.parquet", "matches no file"),
    ],
    ids=["missing-folder", "empty-folder", "no-parquet-files", "glob-matches-nothing"],
)
def test_missing_parquet_is_an_error_naming_key_and_path(tmp_path, make, location, words) -> None:
    """The error names ``warehouse -> parquet -> <view>`` and the configured path."""
    make(tmp_path)
    path = str(tmp_path / location)
    with pytest.raises(WarehouseError) as err:
        DuckDBEngine(None, {"predictions": path})
    assert "warehouse -> parquet -> predictions" in str(err.value)
    assert path in str(err.value) and words in str(err.value)


def test_agent_reports_a_missing_parquet_folder(tmp_path) -> None:
    """Through the agent: the job fails with the key and path, the agent keeps running."""
    config = parse_config({
        "init_config": {"state_dir": str(tmp_path / "state")},
        "instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "parquet": {"predictions": "nowhere/p"}},
                       "tables": {"predictions": "predictions", "labels": None, "replays": None,
                                  "training_runs": None, "training_features": None}}],
    })
    reports = Agent(config, RecordingSink(), clock=time.time).run_once()
    messages = [m for r in reports for m in r.messages]
    assert any("instance ads: warehouse -> parquet -> predictions: nowhere/p does not exist" in m
               for m in messages), messages


@pytest.mark.parametrize(
    ("warehouse", "words"),
    [
        ({"engine": "duckdb"}, "give path"),
        ({"engine": "duckdb", "parquet": {"lake.predictions": "lake/p"}}, "no dots"),
        ({"engine": "duckdb", "parquet": {"predictions": ""}}, "Parquet folder"),
    ],
    ids=["neither-path-nor-parquet", "dotted-view-name", "empty-location"],
)
def test_parquet_config_errors(warehouse, words) -> None:
    """Config errors name the warehouse path and what was expected."""
    with pytest.raises(ConfigError, match="instances -> 0 -> warehouse") as err:
        parse_config({"instances": [{"name": "ads", "warehouse": warehouse}]})
    assert words in str(err.value)
