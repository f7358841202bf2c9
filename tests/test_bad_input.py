"""Input the warehouse really holds: time zones, and a prediction logged twice. (Invalid predictions and
labels, NULLs, ties, duplicate labels and replays are covered where each metric is tested against its
reference: test_metrics, test_online, test_properties.)"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from tests.scenarios import write_every_table
from tests.tables import write_table

from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.state import StateStore
from mlmon.testing import RecordingSink

NOW = 1_800_000_123.0
TOKYO = dt.timezone(dt.timedelta(hours=9))
#: the timestamp column of each table
TS_COLUMNS = {"predictions": "ts", "labels": "label_ts", "training_runs": "trained_at"}


def read_table(warehouse, name: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    """Columns (name, portable type) and rows of a test table."""
    types = {"VARCHAR": "text", "TEXT": "text", "DOUBLE": "double", "DOUBLE PRECISION": "double",
             "BIGINT": "bigint", "INTEGER": "integer", "TIMESTAMP": "timestamp",
             "TIMESTAMP WITHOUT TIME ZONE": "timestamp", "BOOLEAN": "boolean"}
    sql = ("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s {} "
           "ORDER BY ordinal_position")
    if warehouse.engine == "duckdb":
        import duckdb

        with duckdb.connect(str(warehouse.path)) as con:
            cols = con.execute(sql.format("").replace("%s", "?"), [name]).fetchall()
            rows = con.execute(f'SELECT * FROM "{name}"').fetchall()
    else:
        import psycopg

        with psycopg.connect(warehouse.url) as con:
            cols = con.execute(sql.format("AND table_schema = %s"), [name, warehouse.schema]).fetchall()
            rows = con.execute(f'SELECT * FROM "{warehouse.schema}"."{name}"').fetchall()
    return [(c, types[t.upper()]) for c, t in cols], rows


def run(warehouse, state) -> RecordingSink:
    tables = {t: warehouse.table(t) for t in ("predictions", "labels", "replays", "training_runs",
                                              "training_features")}
    config = parse_config({
        "init_config": {"env": "test", "state_dir": str(state)},
        "instances": [{"name": "ads", "warehouse": warehouse.config(), "tables": tables,
                       "jobs": {"predictions": {"initial_lookback": "2h"}, "quality": {"initial_lookback": "6h"},
                                "reproducibility": {"initial_lookback": "6h"},
                                "training": {"features": ["age", "device", "bid_floor"]}}}],
    })
    sink = RecordingSink()
    reports = Agent(config, sink, clock=lambda: NOW, store=StateStore(state)).run_once()
    assert all(r.errors == 0 for r in reports), [r.messages for r in reports]
    return sink


def test_time_zones_are_normalised_to_utc(warehouse, tmp_path) -> None:
    """The same instants stored as TIMESTAMP (UTC) and as TIMESTAMPTZ written in Tokyo time give the same
    windows and the same numbers, on both engines."""
    write_every_table(warehouse, NOW)
    naive = run(warehouse, tmp_path / "naive")
    for table, column in TS_COLUMNS.items():
        columns, rows = read_table(warehouse, table)
        i = [c for c, _ in columns].index(column)
        assert any(r[i] is not None for r in rows)
        rows = [(*r[:i], None if r[i] is None else r[i].replace(tzinfo=dt.timezone.utc).astimezone(TOKYO),
                 *r[i + 1 :]) for r in rows]
        columns[i] = (column, "timestamptz")
        write_table(warehouse, table, columns, rows, replace=True)
    aware = run(warehouse, tmp_path / "aware")

    def points(sink: RecordingSink) -> dict[tuple[str, tuple[str, ...], float], float]:
        return {(s.name, s.tags, s.timestamp): s.value for s in sink.samples if not s.name.startswith("mlmon.agent.")}

    expected = points(naive)
    assert {name for name, _, _ in expected} >= {"mlmon.prediction.count", "mlmon.online.logloss",
                                                 "mlmon.reproducibility.rate", "mlmon.training.model_age_hours"}
    got = points(aware)
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - v) <= 1e-9 * max(1.0, abs(v)) for k, v in expected.items())


def test_a_prediction_logged_twice_counts_once_in_quality(duckdb_warehouse, tmp_path) -> None:
    """The documented rule for a duplicated log row: quality counts the request once (as sklearn on the
    distinct requests), the predictions job counts both rows."""
    from sklearn.metrics import log_loss
    from tests.helpers import utc
    from tests.scenarios import LABEL_COLUMNS, PREDICTION_COLUMNS

    end = (NOW - 2 * 3600) // 3600 * 3600  # an hourly window whose labels matured
    ts = utc(end - 1800)
    distinct = [("r1", 0.2, 1), ("r2", 0.4, 0), ("r3", 0.7, 1)]
    rows = [(r, ts, "ctr", "v1", p) for r, p, _ in distinct] + [("r1", ts, "ctr", "v1", 0.2)]
    write_table(duckdb_warehouse, "predictions", PREDICTION_COLUMNS, rows)
    write_table(duckdb_warehouse, "labels", LABEL_COLUMNS, [(r, y, ts) for r, _, y in distinct])
    config = parse_config({
        "init_config": {"state_dir": str(tmp_path / "state")},
        "instances": [{"name": "ads", "warehouse": duckdb_warehouse.config(),
                       "tables": {"replays": None, "training_runs": None},
                       "jobs": {"predictions": {"initial_lookback": "3h"}, "quality": {"initial_lookback": "3h"}}}],
    })
    sink = RecordingSink()
    Agent(config, sink, clock=lambda: NOW).run_once()
    sink.assert_metric("mlmon.online.labeled_count", 3.0, tags=["model:ctr"], timestamp=end)
    expected = log_loss([y for *_, y in distinct], [p for _, p, _ in distinct])
    (logloss,) = sink.metrics("mlmon.online.logloss", tags=["model:ctr"])
    assert logloss.value == pytest.approx(expected, rel=1e-12)
    assert sum(s.value for s in sink.metrics("mlmon.prediction.count", tags=["model:ctr"])) == 4.0
