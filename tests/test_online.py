"""The quality and reproducibility jobs on a real DuckDB file and PostgreSQL, against scikit-learn/NumPy."""

from __future__ import annotations

import pytest
from tests.reference import label_of, online_quality_reference, reproducibility_reference
from tests.scenarios import HOUR, online_answers

from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.state import StateStore
from mlmon.testing import RecordingSink

NOW = 1_800_000_123.0


def make_config(warehouse, tmp_path, **quality):
    return parse_config({
        "init_config": {"env": "test", "state_dir": str(tmp_path / "state")},
        "instances": [{
            "name": "ads", "warehouse": warehouse.config(), "tags": ["team:ads"],
            "tables": {t: warehouse.table(t) for t in ("predictions", "labels", "replays", "training_runs")}
            | {"training_features": None},
            "jobs": {"predictions": {"enabled": False}, "training": {"enabled": False},
                     "quality": {"initial_lookback": "4h", **quality},
                     "reproducibility": {"initial_lookback": "4h"}},
        }],
    })


def emitted(sink, prefix: str, model: str, version: str, end: float) -> dict[str, float]:
    tags = {f"model:{model}", f"model_version:{version}"}
    out = {}
    for s in sink.samples:
        if s.name.startswith(prefix) and s.timestamp == end and tags <= set(s.tags):
            name = s.name.removeprefix(prefix)
            assert name not in out, f"duplicate {s.name} for {model} {end}"
            out[name] = s.value
    return out


@pytest.fixture
def scenario_run(warehouse, tmp_path):
    sc = online_answers(NOW)
    sc.write(warehouse)
    sink = RecordingSink()
    reports = Agent(make_config(warehouse, tmp_path), sink, clock=lambda: NOW).run_once()
    return sc, sink, {r.job: r for r in reports}


def test_quality_matches_sklearn_per_window(scenario_run) -> None:
    """Ties, several label rows, late labels, labels of 2, invalid and one-class windows: as sklearn."""
    sc, sink, reports = scenario_run
    assert reports["quality"].errors == 0, reports["quality"].messages
    for (model, version, end), rows in sc.windows.items():
        labels = [label_of(lab, end + sc.label_delay, end - 2 * HOUR) for _, lab, _ in rows]
        want = online_quality_reference([p for p, _, _ in rows], labels, sc.offline.get((model, version)))
        got = emitted(sink, "mlmon.online.", model, version, end)
        assert got.keys() == want.keys(), (model, end)
        for name, value in want.items():
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (model, end, name)


def test_quality_scenario_covers_the_edge_cases(scenario_run) -> None:
    """The data really has late, invalid, one-class and unlabeled windows (so the test above means something)."""
    sc, sink, _ = scenario_run
    a, b, c = sorted({end for (m, _, end) in sc.windows if m == "ctr"})
    window_a = emitted(sink, "mlmon.online.", "ctr", "v2", a)
    assert window_a["invalid_label_count"] > 0 and window_a["invalid_prediction_count"] == 3
    assert 0.8 < window_a["label_coverage"] < 0.95  # labels after maturity do not count
    window_b = emitted(sink, "mlmon.online.", "ctr", "v2", b)
    assert window_b["positive_rate"] == 0.0 and "auc" not in window_b and "normalized_entropy" not in window_b
    assert emitted(sink, "mlmon.online.", "ctr", "v2", c) == {
        "labeled_count": 0.0, "invalid_prediction_count": 0.0, "invalid_label_count": 0.0, "label_coverage": 0.0,
    }


def test_reproducibility_matches_numpy_per_window(scenario_run) -> None:
    """Equal, off, missing, NULL, duplicated and other-version replays: as a numpy.isclose reference."""
    sc, sink, reports = scenario_run
    assert reports["reproducibility"].errors == 0, reports["reproducibility"].messages
    for (model, version, end), rows in sc.windows.items():
        want = reproducibility_reference([p for p, _, _ in rows], [r for _, _, r in rows], atol=1e-6, rtol=1e-4)
        got = emitted(sink, "mlmon.reproducibility.", model, version, end)
        assert got.keys() == want.keys(), (model, end)
        for name, value in want.items():
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (model, end, name)
    a = min(end for (m, _, end) in sc.windows if m == "ctr")
    window_a = emitted(sink, "mlmon.reproducibility.", "ctr", "v2", a)
    assert 0.5 < window_a["rate"] < 0.9 and window_a["missing_count"] > 0


def test_windows_wait_for_label_delay(duckdb_warehouse, tmp_path) -> None:
    """A window is processed once end + label_delay has passed, per model with label_delay_by_model."""
    sc = online_answers(NOW)
    sc.write(duckdb_warehouse)
    a = min(end for (m, _, end) in sc.windows if m == "cvr")
    config = make_config(duckdb_warehouse, tmp_path, label_delay_by_model={"cvr": "6h"})
    sink = RecordingSink()
    Agent(config, sink, clock=lambda: NOW).run_once()
    assert emitted(sink, "mlmon.online.", "ctr", "v2", a)
    assert not emitted(sink, "mlmon.online.", "cvr", "v9", a)  # 6 h have not passed yet
    state = StateStore(tmp_path / "state").load("ads", "quality")
    assert state.watermark == (NOW - HOUR) // HOUR * HOUR + HOUR - HOUR  # end of the last matured window
    later = NOW + 6 * HOUR
    Agent(config, sink, clock=lambda: later).run_once()
    got = emitted(sink, "mlmon.online.", "cvr", "v9", a)
    rows = sc.windows[("cvr", "v9", a)]
    # the cvr lane uses its own delay for the label cutoff, too
    labels = [label_of(lab, a + 6 * HOUR, a - 2 * HOUR) for _, lab, _ in rows]
    want = online_quality_reference([p for p, _, _ in rows], labels, sc.offline[("cvr", "v9")])
    assert got == pytest.approx(want, rel=1e-9)
    assert StateStore(tmp_path / "state").load("ads", "quality").lanes == {"label_delay:21600": (later - 6 * HOUR)
                                                                          // HOUR * HOUR}


@pytest.mark.parametrize("job", ["quality", "reproducibility"])
def test_rows_fetched_bounded_when_predictions_grow(duckdb_warehouse, tmp_path, job) -> None:
    """One result row per (model, version, window) whatever the prediction count (AUC pulls no rows)."""
    fetched = []
    for scale in (1, 10):
        d = tmp_path / str(scale)
        d.mkdir()
        from tests.helpers import DuckDBWarehouse

        wh = DuckDBWarehouse(d / "w.duckdb")
        sc = online_answers(NOW, scale=scale)
        sc.write(wh)
        report = next(r for r in Agent(make_config(wh, d), RecordingSink(), clock=lambda: NOW).run_once()
                      if r.job == job)
        fetched.append(report.rows_fetched)
    groups = 4  # ctr A, B, C and cvr A
    offline = 2 if job == "quality" else 0  # one training_runs row per version seen
    assert fetched[0] == fetched[1] == groups + offline


def test_one_class_window_logs_why_at_debug(duckdb_warehouse, tmp_path, caplog) -> None:
    """The skipped AUC/calibration/NE of a one-class window are explained in a debug line."""
    import logging

    sc = online_answers(NOW)
    sc.write(duckdb_warehouse)
    caplog.set_level(logging.DEBUG, logger="mlmon.jobs.quality")
    Agent(make_config(duckdb_warehouse, tmp_path), RecordingSink(), clock=lambda: NOW).run_once()
    b = sorted({end for (m, _, end) in sc.windows if m == "ctr"})[1]
    lines = [r.getMessage() for r in caplog.records if r.name == "mlmon.jobs.quality"]
    from mlmon.times import iso

    assert any("one class only" in line and "model ctr" in line and iso(b) in line for line in lines), lines


@pytest.mark.parametrize("named", [False, True], ids=["default-name", "named"])
def test_missing_training_runs_is_an_error_only_when_named(duckdb_warehouse, tmp_path, monkeypatch, named) -> None:
    """Without a training_runs table at its default name the quality job delivers, without the _vs_offline
    metrics and without an error; a training_runs table the config names that is missing is an error."""
    from tests.test_label_values import NOWS, Clicks

    monkeypatch.chdir(tmp_path)
    Clicks().write(duckdb_warehouse)
    instance = {"name": "ads", "warehouse": duckdb_warehouse.config(), **({"tables": {"training_runs": "runs"}}
                                                                          if named else {})}
    sink = RecordingSink()
    reports = {r.job: r for r in Agent(parse_config({"instances": [instance]}), sink, clock=lambda: NOWS[0]).run_once()}
    assert reports["quality"].windows_processed == 1 and sink.metrics("mlmon.online.logloss")
    assert not sink.metrics("mlmon.online.logloss_vs_offline")
    assert reports["quality"].errors == (1 if named else 0), reports["quality"].messages
