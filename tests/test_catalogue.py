"""metadata.csv is the catalogue: every metric the agent emits is in it, with its type."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import numpy as np
from tests.helpers import DuckDBWarehouse, utc
from tests.scenarios import write_every_table

from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.testing import RecordingSink

ROOT = Path(__file__).resolve().parents[1]
HEADER = [
    "metric_name", "metric_type", "interval", "unit_name", "per_unit_name", "description", "orientation",
    "integration", "short_name", "curated_metric", "sample_tags",
]


def catalogue() -> dict[str, dict[str, str]]:
    with (ROOT / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == HEADER
        return {row["metric_name"]: row for row in reader}


def test_catalogue_rows_are_well_formed() -> None:
    """Each row has a Datadog metric type, an orientation and the mlmon integration name."""
    for name, row in catalogue().items():
        assert name.startswith("mlmon."), name
        assert row["metric_type"] in {"gauge", "count", "rate", "distribution"}, name
        assert row["orientation"] in {"-1", "0", "1"}, name
        assert row["integration"] == "mlmon", name
        assert row["description"], name


def test_every_emitted_metric_is_catalogued(duckdb_warehouse, tmp_path) -> None:
    """Run every job over data that triggers every code path and hold each sample to metadata.csv."""
    width, now = 600.0, 1_800_000_000.0
    end = (now - 300) // width * width
    rng = np.random.default_rng(3)
    rows = []
    for w in range(6):  # today's windows and the day-earlier references
        for offset in (0.0, 86400.0):
            start = end - (w + 1) * width - offset
            for i, p in enumerate(rng.beta(2, 20, 30)):
                rows.append((f"r{w}-{offset}-{i}", utc(start + i), "m1", "v1", float(p)))
    rows.append(("bad", utc(end - 10), "m1", "v1", float("nan")))
    rows.append(("old", utc(end - 86400 - 6 * width - 5), "gone", "v0", 0.5))  # expected, then silent
    duckdb_warehouse.write_predictions(rows)
    config = parse_config({
        "init_config": {"env": "test", "state_dir": str(tmp_path / "state")},
        "instances": [{"name": "ads", "warehouse": duckdb_warehouse.config(),
                       "jobs": {"predictions": {"initial_lookback": "1h", "drift_min_rows": 1}}}],
    })
    sink = RecordingSink()
    Agent(config, sink, clock=lambda: now).run_once()
    # and a warehouse with every table, for the quality, reproducibility and training jobs
    full = DuckDBWarehouse(tmp_path / "full.duckdb")
    write_every_table(full, now)
    # a placement for the segments, and the same rows one and two days earlier: the days whose traffic chooses
    # the segment values of the windows' days
    con = duckdb.connect(str(full.path))
    con.execute("ALTER TABLE predictions ADD COLUMN placement VARCHAR")
    con.execute("UPDATE predictions SET placement = CASE WHEN hash(request_id) % 5 = 0 THEN NULL "
                "WHEN hash(request_id) % 5 = 1 THEN 'search' ELSE 'feed' END")
    for days in (1, 2):
        con.execute(f"INSERT INTO predictions SELECT request_id || '-{days}d', ts - INTERVAL {days} DAY, model, "
                    "model_version, prediction, placement FROM predictions WHERE NOT contains(request_id, 'd')")
    con.close()
    config = parse_config({
        "init_config": {"env": "test", "state_dir": str(tmp_path / "state-full")},
        "instances": [{"name": "full", "warehouse": full.config(), "tables": {"serving_features": "serving_features"},
                       "jobs": {"quality": {"initial_lookback": "4h", "segment_by": ["placement"],
                                            "segment_min_labeled": 1},
                                "predictions": {"segment_by": ["placement"], "initial_lookback": "4h"},
                                "reproducibility": {"initial_lookback": "4h"},
                                "training": {"features": ["age", "device", "bid_floor"]},
                                "serving_features": {"features": ["age", "device", "bid_floor"], "top_k": 3,
                                                     "psi_min_rows": 1, "initial_lookback": "4h"}}}],
    })
    reports = Agent(config, sink, clock=lambda: now).run_once()
    assert {r.job for r in reports} == {"predictions", "quality", "reproducibility", "training", "serving_features"}
    assert not [m for r in reports for m in r.messages]
    cat = catalogue()
    emitted = {s.name: s.type for s in sink.samples}
    assert {"mlmon.prediction.psi", "mlmon.prediction.invalid_count", "mlmon.agent.lag_seconds"} <= emitted.keys()
    missing = sorted(set(emitted) - set(cat))
    assert not missing, f"emitted but not in metadata.csv: {missing}"
    for name, mtype in emitted.items():
        assert cat[name]["metric_type"] == mtype.value, name
    # and nothing catalogued is dead
    assert set(cat) <= set(emitted), sorted(set(cat) - set(emitted))
