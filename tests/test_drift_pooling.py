"""Drift against references that exist, pooled until the sample is large enough (``drift_reference`` as a list,
``training``, ``drift_max_pool``), checked against NumPy/SciPy on the pooled samples, on DuckDB and PostgreSQL.

The config sets only the warehouse: the default references (``[7d, 1d, training]``), ``drift_min_rows`` (300),
``drift_max_pool`` (1h) and ``initial_lookback`` (1h: the six windows before the clock) are what a user gets.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from tests.helpers import Warehouse, utc
from tests.reference import drift_reference_values
from tests.scenarios import PREDICTION_COLUMNS
from tests.tables import write_table

from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.testing import RecordingSink

WIDTH = 600.0
DAY = 86400.0
#: an arbitrary wall-clock time: 47 minutes 12 seconds past the hour
NOW = dt.datetime(2026, 11, 18, 13, 47, 12, tzinfo=dt.timezone.utc).timestamp()
LAST_END = (NOW - 300) // WIDTH * WIDTH  # the last window due (lateness 5 min)
WINDOWS = [LAST_END - WIDTH * k for k in range(6, 0, -1)]  # window starts of the default hour of lookback


def _sigmoid(x: np.ndarray) -> list[float]:
    return [float(v) for v in 1 / (1 + np.exp(-x))]


@dataclass
class Data:
    """Rows written, and the values per (model, version, window start) to build the references from."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    values: dict[tuple[str, str, float], list[float]] = field(default_factory=lambda: defaultdict(list))
    validation: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, model: str, version: str, start: float, values: list[float]) -> None:
        for i, p in enumerate(values):
            ts = start + (i + 0.5) * WIDTH / len(values)
            self.rows.append((f"{model}-{version}-{start:.0f}-{i}", utc(ts), model, version, p))
        self.values[(model, version, start)].extend(values)

    def pooled(self, model: str, version: str | None, starts: list[float]) -> list[float]:
        """The values of ``model`` (``version``, or every version) in the windows starting at ``starts``."""
        return [p for (m, v, s), ps in self.values.items() if m == model and (version is None or v == version)
                and s in starts for p in ps]


def build(seed: int = 3) -> Data:
    rng = np.random.default_rng(seed)
    data = Data()
    # low: 70 rows a window, some invalid and tied, so a comparison pools five windows (350 valid) a side; its
    # last two windows are a new version, which pools only its own windows (140 rows: never enough)
    for k in range(-12, 6):
        start = WINDOWS[0] + k * WIDTH
        for day, shift in ((DAY, -3.3), (0.0, -3.0)):
            values = _sigmoid(rng.normal(shift, 0.8, 70))
            values[:4] = [float("nan"), -0.5, 1.5, values[5]]  # invalid, and a tie
            version = "v2" if day == 0 and k >= 4 else "v1"
            data.add("low", version if day == 0 else "v0", start - day, values)
    # young: three hours old, 100 rows a window: no 7d nor 1d reference, its validation predictions instead
    for k in range(-12, 6):
        data.add("young", "y1", WINDOWS[0] + k * WIDTH, _sigmoid(rng.normal(-2.0, 0.7, 100)))
    data.validation[("young", "y1")] = _sigmoid(rng.normal(-2.2, 0.7, 2000))
    # weekly: 400 rows a window; yesterday differs, the same hour last week does not: the first reference wins
    for k in range(6):
        start = WINDOWS[k]
        for day, shift in ((7 * DAY, -2.0), (DAY, -1.0), (0.0, -2.05)):
            data.add("weekly", "w1", start - day, _sigmoid(rng.normal(shift, 0.8, 400)))
    # sparse: 20 rows a window, 120 an hour: under drift_min_rows however pooled, so no drift point
    for k in range(6):
        for day in (DAY, 0.0):
            data.add("sparse", "s1", WINDOWS[k] - day, _sigmoid(rng.normal(-2.0, 0.8, 20)))
    return data


def run(warehouse: Warehouse, data: Data, tmp_path) -> RecordingSink:
    write_table(warehouse, "predictions", PREDICTION_COLUMNS, data.rows)
    write_table(warehouse, "validation_predictions", (("model", "text"), ("model_version", "text"),
                                                      ("prediction", "double")),
                [(m, v, p) for (m, v), ps in data.validation.items() for p in ps])
    instance: dict[str, Any] = {"name": "ads", "warehouse": warehouse.config(),
                                "jobs": {"quality": {"enabled": False}, "reproducibility": {"enabled": False},
                                         "training": {"enabled": False}}}
    if warehouse.engine == "postgres":
        instance["tables"] = {t: warehouse.table(t) for t in ("predictions", "validation_predictions")}  # type: ignore[attr-defined]
    config = parse_config({"init_config": {"state_dir": str(tmp_path / "state")}, "instances": [instance]})
    sink = RecordingSink()
    Agent(config, sink, clock=lambda: NOW).run_once()
    return sink


def drift_points(sink: RecordingSink) -> dict[tuple[str, str, float], dict[str, Any]]:
    """(model, version, window start) -> drift metric -> value, plus the reference tag."""
    out: dict[tuple[str, str, float], dict[str, Any]] = defaultdict(dict)
    names = ("psi", "ks_statistic", "mean_ratio", "p50_ratio", "p95_ratio", "drift_span")
    for s in sink.samples:
        name = s.name.removeprefix("mlmon.prediction.")
        if name in names:
            tags = dict(t.split(":", 1) for t in s.tags)
            key = (tags["model"], tags["model_version"], s.timestamp - WIDTH)
            out[key][name] = s.value
            out[key].setdefault("reference", tags["drift_reference"])
            assert out[key]["reference"] == tags["drift_reference"]
    return out


def expected(current: list[float], reference: list[float], span: float, label: str) -> dict[str, Any]:
    return {**drift_reference_values(reference, current), "drift_span": span, "reference": label}


def check(got: dict[str, Any], want: dict[str, Any], where: Any) -> None:
    assert got.keys() == want.keys(), where
    assert got["reference"] == want["reference"], where
    for name, value in want.items():
        if name != "reference":
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (where, name)


def test_pooled_and_fallback_references_match_numpy(warehouse: Warehouse, tmp_path) -> None:
    data = build()
    points = drift_points(run(warehouse, data, tmp_path))
    seen = set()
    for start in WINDOWS:
        index = WINDOWS.index(start)
        # low v1: 70 valid-and-invalid rows a window, 66 valid: five windows pooled (330 a side) against yesterday
        if index < 4:
            span = [start - k * WIDTH for k in range(5)]
            want = expected(data.pooled("low", "v1", span), data.pooled("low", None, [s - DAY for s in span]),
                            5 * WIDTH, "1d")
            check(points[("low", "v1", start)], want, ("low", start))
            seen.add(("low", "v1", start))
        # young: 100 a window, pooled three windows against its version's validation predictions
        span = [start - k * WIDTH for k in range(3)]
        want = expected(data.pooled("young", "y1", span), data.validation[("young", "y1")], 3 * WIDTH, "training")
        check(points[("young", "y1", start)], want, ("young", start))
        # weekly: 400 a window, no pooling, the same window a week earlier
        want = expected(data.pooled("weekly", "w1", [start]), data.pooled("weekly", None, [start - 7 * DAY]),
                        WIDTH, "7d")
        check(points[("weekly", "w1", start)], want, ("weekly", start))
        seen |= {("young", "y1", start), ("weekly", "w1", start)}
    # low's new version (two windows of its own) and the sparse model have no drift point at all
    assert set(points) == seen


def test_ratios_are_within_a_grid_bucket_of_the_exact_ones(duckdb_warehouse: Warehouse, tmp_path) -> None:
    """The quantile ratios come from the drift grid: within two buckets (about 4 % of the odds) of NumPy's exact
    linear quantiles; the mean ratio is exact."""
    data = build()
    points = drift_points(run(duckdb_warehouse, data, tmp_path))
    start = WINDOWS[-1]
    current = [v for v in data.pooled("weekly", "w1", [start]) if 0 <= v <= 1]
    reference = [v for v in data.pooled("weekly", None, [start - 7 * DAY]) if 0 <= v <= 1]
    got = points[("weekly", "w1", start)]
    for q, name in ((0.5, "p50_ratio"), (0.95, "p95_ratio")):
        exact = float(np.quantile(current, q) / np.quantile(reference, q))
        assert abs(math.log(got[name] / exact)) < 0.04, name
    assert got["mean_ratio"] == pytest.approx(np.mean(current) / np.mean(reference), rel=1e-12)


@pytest.mark.postgres
def test_duckdb_and_postgres_agree(tmp_path, duckdb_warehouse, postgres_warehouse) -> None:
    data = build(seed=8)
    duck = drift_points(run(duckdb_warehouse, data, tmp_path / "duck"))
    pg = drift_points(run(postgres_warehouse, data, tmp_path / "pg"))
    assert duck.keys() == pg.keys() and duck
    for key, values in duck.items():
        assert values["reference"] == pg[key]["reference"]
        for name, value in values.items():
            if name != "reference":
                assert pg[key][name] == pytest.approx(value, rel=1e-12, abs=1e-15), (key, name)


# --- config, and a missing validation table ---------------------------------------------------------------------


def predictions_config(**settings: Any) -> Any:
    return parse_config({"instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": "w.duckdb"},
                                        "jobs": {"predictions": settings}}]}).instances[0].jobs.predictions


def test_drift_reference_takes_one_duration_a_list_or_training() -> None:
    assert predictions_config().drift_reference == (7 * DAY, DAY, "training")
    assert predictions_config(drift_reference="1d").drift_reference == (DAY,)
    assert predictions_config(drift_reference=["1d", "training"]).drift_reference == (DAY, "training")
    assert predictions_config(drift_reference=["training"]).drift_offsets == ()
    assert predictions_config().drift_max_pool == 3600


@pytest.mark.parametrize(("settings", "message"), [
    ({"drift_reference": []}, "lists no reference"),
    ({"drift_reference": ["1d", "1d"]}, "more than once"),
    ({"drift_reference": ["1d", "yesterday"]}, "or 'training'"),
    ({"drift_reference": "25m"}, "not a multiple of window"),
    ({"drift_reference": 0}, "positive duration"),
    ({"drift_max_pool": "25m"}, "drift_max_pool must be a multiple of window"),
    ({"drift_max_pool": 0}, "greater than 0"),
])
def test_bad_drift_settings_are_refused_by_name(settings: dict[str, Any], message: str) -> None:
    from mlmon.config import ConfigError

    with pytest.raises((ConfigError, ValueError), match=message):
        predictions_config(**settings)


def young_only(data: Data) -> Data:
    out = Data()
    out.rows = [r for r in data.rows if r[2] == "young"]
    return out


def test_a_missing_default_validation_table_skips_the_training_reference(duckdb_warehouse: Warehouse,
                                                                           tmp_path) -> None:
    """Left at its default name and absent: no drift point for the young model, no error, and ``mlmon check`` says
    the entry is skipped."""
    from mlmon.preflight import check_instance

    data = young_only(build())
    write_table(duckdb_warehouse, "predictions", PREDICTION_COLUMNS, data.rows)
    config = parse_config({"init_config": {"state_dir": str(tmp_path / "state")}, "instances": [
        {"name": "ads", "warehouse": duckdb_warehouse.config(), "jobs": {
            "quality": {"enabled": False}, "reproducibility": {"enabled": False}, "training": {"enabled": False}}}]})
    sink = RecordingSink()
    (report, *_) = Agent(config, sink, clock=lambda: NOW).run_once()
    assert report.job == "predictions" and report.errors == 0 and report.windows_processed == 6, report.messages
    assert sink.metrics("mlmon.prediction.mean") and not drift_points(sink)
    said: list[str] = []
    assert check_instance(config.instances[0], said.append, now=NOW) == []
    assert any("validation_predictions (default name, optional) not found; the predictions job's training drift "
               "reference skipped" in line for line in said), said


def test_a_named_validation_table_that_is_missing_is_a_problem(duckdb_warehouse: Warehouse, tmp_path) -> None:
    """Named in the config and absent: the run reports it, naming the table, and sends the other metrics."""
    data = young_only(build())
    write_table(duckdb_warehouse, "predictions", PREDICTION_COLUMNS, data.rows)
    config = parse_config({"init_config": {"state_dir": str(tmp_path / "state")}, "instances": [
        {"name": "ads", "warehouse": duckdb_warehouse.config(), "tables": {"validation_predictions": "offline_scores"},
         "jobs": {"quality": {"enabled": False}, "reproducibility": {"enabled": False},
                  "training": {"enabled": False}}}]})
    sink = RecordingSink()
    (report, *_) = Agent(config, sink, clock=lambda: NOW).run_once()
    assert report.errors >= 1 and any("offline_scores" in m and "training drift reference not used" in m
                                      for m in report.messages), report.messages
    assert report.windows_processed == 6 and sink.metrics("mlmon.prediction.mean")
