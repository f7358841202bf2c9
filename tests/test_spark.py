"""Apache Spark (PySpark, local master) reading Parquet: the same numbers as DuckDB on the same rows.

Skipped with a message when PySpark or Java is missing, unless ``MLMON_REQUIRE_SPARK=1`` (CI), which
makes them failures. One Spark session serves the module (and the agent reuses it across its jobs).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import DuckDBWarehouse
from tests.scenarios import write_every_table
from tests.test_parquet import assert_same_numbers, export_parquet, run_agent

from mlmon.config import parse_config
from mlmon.warehouse.engines import SPARK, QueryError, SparkEngine, WarehouseError, is_numeric_type
from mlmon.warehouse.sql import bind_source, parse_template

pytestmark = pytest.mark.spark

#: small shuffles: the test data is a few thousand rows
CONF = {"spark.sql.shuffle.partitions": 2, "spark.default.parallelism": 2}


def _missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark not installed (pip install -e '.[test,spark]')"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "no Java runtime for Spark (JAVA_HOME or java on PATH)"
    return None


@pytest.fixture(scope="module")
def spark_ready() -> Iterator[None]:
    """Spark can start here; stopped after the module (the agent itself stops it at exit)."""
    missing = _missing()
    if missing:
        if os.environ.get("MLMON_REQUIRE_SPARK"):
            pytest.fail(f"Spark required (MLMON_REQUIRE_SPARK) but unavailable: {missing}")
        pytest.skip(missing)
    yield
    SPARK.stop()


@pytest.fixture(scope="module")
def lake(spark_ready, tmp_path_factory) -> tuple[float, Path, dict[str, str]]:
    """Every table in a DuckDB file and, the same rows, as Parquet folders."""
    root = tmp_path_factory.mktemp("spark")
    now = time.time()
    warehouse = DuckDBWarehouse(root / "warehouse.duckdb")
    write_every_table(warehouse, now)
    return now, warehouse.path, export_parquet(warehouse.path, root / "lake")


def spark_warehouse(folders: dict[str, str]) -> dict[str, Any]:
    return {"engine": "spark", "master": "local[2]", "conf": CONF, "parquet": folders}


def test_spark_gives_the_numbers_of_duckdb(tmp_path, lake) -> None:
    """Every job, metric by metric (names, tags, timestamps, values within 1e-9): Spark on Parquet = DuckDB."""
    now, database, folders = lake
    want = run_agent({"engine": "duckdb", "path": str(database)}, now, tmp_path / "state-duckdb")
    got = run_agent(spark_warehouse(folders), now, tmp_path / "state-spark")
    assert_same_numbers(want, got)


def engine(folders: dict[str, str]) -> SparkEngine:
    config = parse_config({"instances": [{"name": "ads", "warehouse": spark_warehouse(folders)}]})
    return SparkEngine(config.instances[0].warehouse)  # type: ignore[arg-type]


def test_timestamps_are_utc_both_ways(lake, monkeypatch) -> None:
    """A bound naive timestamp means UTC and a TIMESTAMP result comes back as naive UTC, whatever TZ is."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        e = engine(lake[2])
        query = parse_template("SELECT CAST($t AS TIMESTAMP) AS t, EPOCH(CAST($t AS TIMESTAMP)) AS s "
                               "FROM __source__ AS src LIMIT 1")
        t = dt.datetime(2024, 3, 10, 7, 30, 0, 250000)  # read as New York time it would be 4 hours off
        [(back, seconds)] = e.fetch(bind_source(query, "training_runs", {}), {"t": t})
        assert back == t
        assert seconds == t.replace(tzinfo=dt.timezone.utc).timestamp()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_values_are_bound_not_spliced(lake) -> None:
    """A model name with quotes and SQL is a value: it matches nothing and breaks nothing."""
    e = engine(lake[2])
    query = parse_template("SELECT COUNT(*) AS n FROM __source__ AS src WHERE src.model = $model_0")
    assert e.fetch(bind_source(query, "predictions", {}), {"model_0": "ctr' OR '1'='1"}) == [(0,)]
    assert e.fetch(bind_source(query, "predictions", {}), {"model_0": "ctr"})[0][0] > 0


def test_column_types_are_numeric_where_numbers(lake) -> None:
    """Spark's type names pass :func:`is_numeric_type` for numbers only."""
    e = engine(lake[2])
    query = parse_template("SELECT src.age, src.device, src.bid_floor, CAST(1 AS INT) AS i, src.model "
                           "FROM __source__ AS src WHERE 1 = 0")
    types = dict(e.column_types(bind_source(query, "training_features", {}), {}))
    assert {name: is_numeric_type(t) for name, t in types.items()} == {
        "age": True, "device": False, "bid_floor": True, "i": True, "model": False}


@pytest.mark.parametrize(
    ("table", "columns", "words"),
    [("nowhere", {}, "`nowhere` cannot be found"),
     ("predictions", {"prediction": "score"}, "`score` cannot be resolved")],
    ids=["missing-table", "missing-column"],
)
def test_errors_name_engine_and_table_or_column(lake, table, columns, words) -> None:
    """Spark's analysis errors become one-line QueryErrors naming the engine and the table or column."""
    e = engine(lake[2])
    query = parse_template("SELECT src.prediction FROM __source__ AS src")
    with pytest.raises(QueryError) as err:
        e.fetch(bind_source(query, table, columns), {})
    text = str(err.value)
    assert text.startswith("spark: ") and words in text and "\n" not in text


def test_files_gone_after_registration_is_a_one_line_query_error(lake, tmp_path) -> None:
    """A failure while running (files deleted under a view) is a QueryError too, without the JVM trace."""
    folder = tmp_path / "replays"
    shutil.copytree(lake[2]["replays"], folder)
    e = engine({"replays": str(folder)})
    shutil.rmtree(folder)
    with pytest.raises(QueryError) as err:
        e.fetch(bind_source(parse_template("SELECT COUNT(*) AS n FROM __source__ AS src"), "replays", {}), {})
    text = str(err.value)
    assert text.startswith("spark: ") and "\n" not in text and "at org.apache" not in text
    assert "part-0.parquet" in text or "does not exist" in text, text


def test_missing_parquet_folder_names_key_and_path(spark_ready, tmp_path) -> None:
    """A Parquet folder that is not there: WarehouseError naming the config key and the path."""
    with pytest.raises(WarehouseError, match=r"warehouse -> parquet -> predictions: .*nowhere does not exist"):
        engine({"predictions": str(tmp_path / "nowhere")})


def test_one_session_per_process(lake) -> None:
    """Engines share the process's Spark; closing one does not stop it for the next."""
    first = engine(lake[2])
    first.close()
    second = engine(lake[2])
    query = parse_template("SELECT COUNT(*) AS n FROM __source__ AS src")
    assert second.fetch(bind_source(query, "replays", {}), {})[0][0] > 0
    assert first._session.sparkContext is second._session.sparkContext


def test_another_master_in_the_same_process_is_an_error(lake) -> None:
    """One JVM runs one master: a second master is a WarehouseError naming the key."""
    engine(lake[2])
    config = parse_config({"instances": [{"name": "b", "warehouse": {"engine": "spark", "master": "local[1]"}}]})
    with pytest.raises(WarehouseError, match=r"warehouse -> master: .*local\[2\]"):
        SparkEngine(config.instances[0].warehouse)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("warehouse", "words"),
    [
        ({"engine": "spark", "conf": {"executor.memory": "2g"}}, "expected Spark settings (spark.*)"),
        ({"engine": "spark", "parquet": {"lake.predictions": "lake/p"}}, "no dots"),
        ({"engine": "spark", "remote": "sc://host"}, "not permitted"),
    ],
    ids=["conf-not-spark", "dotted-view-name", "unknown-key"],
)
def test_spark_config_errors(warehouse, words) -> None:
    """Config errors (no Spark needed) name the warehouse path and what was expected."""
    from mlmon.config import ConfigError

    with pytest.raises(ConfigError, match="instances -> 0 -> warehouse") as err:
        parse_config({"instances": [{"name": "ads", "warehouse": warehouse}]})
    assert words in str(err.value)


def test_spark_config_defaults() -> None:
    """A bare ``engine: spark`` runs local[2] with no settings and catalog tables only."""
    config = parse_config({"instances": [{"name": "ads", "warehouse": {"engine": "spark"}}]})
    w = config.instances[0].warehouse
    assert (w.master, w.conf, w.parquet) == ("local[2]", {}, {})  # type: ignore[union-attr]


def test_label_types_and_missing_label_read_as_on_duckdb(spark_ready, tmp_path) -> None:
    """INTEGER, BOOLEAN, DOUBLE and text labels, and BOOLEAN clicks with missing_label: negative, from Parquet:
    Spark's aggregates equal DuckDB's on the same rows, and its metrics scikit-learn's."""
    from dataclasses import asdict

    import duckdb
    from tests.reference import online_quality_reference
    from tests.scenarios import HOUR, PREDICTION_COLUMNS
    from tests.tables import write_table
    from tests.test_label_values import LABEL_TYPES, A, Clicks, encode, label_rows, reference_label

    from mlmon.metrics.quality import online_quality
    from mlmon.warehouse.engines import open_engine, type_kind
    from mlmon.warehouse.quality import fetch_quality

    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    predictions, labels, windows = label_rows()
    write_table(warehouse, "predictions", PREDICTION_COLUMNS, predictions)
    for name, (column_type, spellings) in LABEL_TYPES.items():
        columns = (("request_id", "text"), ("label", column_type), ("label_ts", "timestamp"))
        write_table(warehouse, "labels_" + name.replace("-", "_"), columns, encode(labels, spellings))
    clicks = Clicks()
    write_table(warehouse, "click_predictions", PREDICTION_COLUMNS, clicks.predictions)
    write_table(warehouse, "clicks", (("request_id", "text"), ("clicked", "boolean"), ("clicked_at", "timestamp")),
                clicks.clicks)
    con = duckdb.connect(str(warehouse.path), read_only=True)
    folders = {}
    for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
        (tmp_path / "lake" / table).mkdir(parents=True)
        con.execute(f"COPY \"{table}\" TO '{tmp_path / 'lake' / table / 'part-0.parquet'}' (FORMAT parquet)")
        folders[table] = str(tmp_path / "lake" / table)
    con.close()

    def both(instance: dict[str, Any], end: float) -> tuple[dict[Any, Any], dict[Any, Any]]:
        out = []
        for wh in ({"engine": "duckdb", "path": str(warehouse.path)}, spark_warehouse(folders)):
            config = parse_config({"instances": [{"name": "ads", "warehouse": wh, **instance}]})
            e = open_engine(config.instances[0].warehouse)
            try:
                out.append(fetch_quality(e, config.instances[0], A, end, HOUR, HOUR).groups)
            finally:
                e.close()
        return out[0], out[1]

    def assert_same(want: dict[Any, Any], got: dict[Any, Any]) -> None:
        assert got.keys() == want.keys()
        for key, agg in want.items():
            assert asdict(got[key]) == pytest.approx(asdict(agg), rel=1e-12), key

    for name in LABEL_TYPES:
        table = "labels_" + name.replace("-", "_")
        duck, spark = both({"tables": {"labels": table}}, A + HOUR)
        assert_same(duck, spark)
        for (model, _), rows in windows.items():
            want = online_quality_reference([p for p, _ in rows], [reference_label(r) for _, r in rows])
            got = online_quality(next(a for k, a in spark.items() if k.model == model)).values()
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (name, model)
    duck, spark = both({"tables": {"predictions": "click_predictions", "labels": "clicks"},
                        "columns": {"labels": {"label": "clicked", "label_ts": "clicked_at"}},
                        "jobs": {"quality": {"missing_label": "negative"}}}, A + 4 * HOUR)
    assert_same(duck, spark)
    assert len(spark) == len(clicks.windows)
    for key, agg in spark.items():
        rows = clicks.windows[(key.model, (key.window_index + 1) * HOUR)]
        want = online_quality_reference([p for p, _ in rows], [y for _, y in rows])
        assert online_quality(agg).values() == pytest.approx(want, rel=1e-9, abs=1e-12), key
    e = engine(folders)
    kinds = {}
    for name in ("integer", "boolean", "double", "text_01"):
        query = parse_template("SELECT src.label FROM __source__ AS src WHERE 1 = 0")
        [(_, type_name)] = e.column_types(bind_source(query, f"labels_{name}", {}), {})
        kinds[name] = type_kind(type_name)
    assert kinds == {"integer": "number", "boolean": "boolean", "double": "number", "text_01": "text"}
