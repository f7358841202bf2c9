"""The predictions job has two statements: the portable one (ROW_NUMBER order statistics, histogram
rows) that every other engine runs, and DuckDB's (QUANTILE_CONT, histogram lists). Run both on the
same DuckDB file: every group's statistics and histogram must agree, and both must equal NumPy's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.helpers import PREDICTION_COLUMNS, utc
from tests.tables import write_table

from mlmon.config import parse_config
from mlmon.metrics.descriptive import QUANTILES, describe
from mlmon.warehouse.engines import DuckDBEngine
from mlmon.warehouse.predictions import build_query, parse_grouped_rows, parse_rows, query_params

START = 1_700_000_400.0  # a multiple of 600
WIDTH = 600.0


def _rows() -> tuple[list[tuple], dict[tuple[str, int], np.ndarray]]:
    rng = np.random.default_rng(7)
    rows: list[tuple] = []
    values: dict[tuple[str, int], list[float]] = {}
    cases = {
        0: rng.uniform(0, 1, 500),                                   # plain
        1: np.round(rng.uniform(0, 1, 400), 2),                      # heavy ties
        2: np.concatenate([rng.uniform(0, 1, 50), [np.nan, -0.1, 1.5, np.inf, 0.0, 1.0]]),  # invalid + ends
        3: np.array([0.25]),                                         # one row
        4: np.array([np.nan, 2.0]),                                  # no valid row
        5: np.full(30, 0.3),                                         # one value
    }
    for w, preds in cases.items():
        for model in ("a", "b"):
            for i, p in enumerate(preds):
                ts = utc(START + w * WIDTH + (i % 599))
                rows.append((f"{model}-{w}-{i}", ts, model, "v1", None if np.isnan(p) else float(p)))
            values[(model, w)] = preds
    return rows, values


def _run(engine: DuckDBEngine, instance, dialect: str):
    end = START + 7 * WIDTH  # window 6 is empty
    query = build_query(instance, (), dialect)
    rows = engine.fetch(query, query_params(START, end, START - 86400, end - 86400, WIDTH))
    return (parse_grouped_rows(rows) if dialect == "duckdb" else parse_rows(rows)).groups


def test_duckdb_statement_equals_portable_statement_and_numpy(duckdb_warehouse) -> None:
    rows, values = _rows()
    write_table(duckdb_warehouse, "predictions", list(zip(PREDICTION_COLUMNS, (
        "text", "timestamp", "text", "text", "double"), strict=True)), rows)
    config = parse_config({"instances": [{"name": "t", "warehouse": duckdb_warehouse.config()}]})
    engine = DuckDBEngine(str(duckdb_warehouse.path))
    try:
        fast = _run(engine, config.instances[0], "duckdb")
        portable = _run(engine, config.instances[0], "")
    finally:
        engine.close()
    assert fast.keys() == portable.keys()
    assert {(k.model, k.window_index - round(START / WIDTH)) for k in fast} == set(values)
    for key, agg in fast.items():
        other = portable[key]
        a, b = describe(agg), describe(other)
        assert (a.count, a.invalid_count, a.same_value_ratio) == (b.count, b.invalid_count, b.same_value_ratio)
        assert np.array_equal(agg.histogram.bucket, other.histogram.bucket)
        assert np.array_equal(agg.histogram.count, other.histogram.count)
        assert a.quantiles.keys() == b.quantiles.keys()
        for name in a.quantiles:
            assert a.quantiles[name] == pytest.approx(b.quantiles[name], abs=1e-12)
        preds = values[(key.model, key.window_index - round(START / WIDTH))]
        valid = preds[(preds >= 0) & (preds <= 1)]
        assert a.count == len(preds)
        if len(valid) == 0:
            assert a.quantiles == {} and a.mean is None
            continue
        for name, q in QUANTILES:
            assert a.quantiles[name] == pytest.approx(float(np.quantile(valid, q)), abs=1e-12)
        assert a.mean == pytest.approx(float(valid.mean()), abs=1e-12)
        if len(valid) > 1:
            assert a.stddev == pytest.approx(float(valid.std(ddof=1)), abs=1e-12)
        _, counts = np.unique(valid, return_counts=True)
        assert math.isclose(a.same_value_ratio, counts.max() / len(valid))
        assert agg.histogram.total == len(valid)
