"""Warehouse file/server -> mlmon run --once -> the real datadog client -> a loopback intake."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.helpers import API_KEY, Warehouse
from tests.reference import drift_reference_values, prediction_stats
from tests.scenarios import HOUR, known_answers, write_every_table

from mlmon.cli import main
from mlmon.metrics.drift import DRIFT_METRICS


def write_config(path: Path, warehouse: Warehouse, api_host: str, state_dir: Path) -> Path:
    config = {
        "init_config": {
            "env": "test",
            "state_dir": str(state_dir),
            "datadog": {"api_key": API_KEY, "api_host": api_host, "historical_ingestion": True,
                        "retry_backoff": "0s", "max_retries": 1},
        },
        "instances": [{
            "name": "ads",
            "warehouse": warehouse.config(),
            "tables": {"predictions": warehouse.table("predictions")},
            "tags": ["team:ads"],
            "jobs": {"predictions": {"initial_lookback": "2h"}},
        }],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def series_by_key(intake) -> dict[tuple[Any, ...], dict[str, Any]]:
    """(metric, model, model_version, timestamp[, job/feature/value tags]) -> series; fails on a duplicate."""
    out = {}
    for s in intake.series():
        tags = dict(t.split(":", 1) for t in s["tags"])
        key: tuple[Any, ...] = (s["metric"], tags.get("model", ""), tags.get("model_version", ""), s["points"][0][0])
        key += tuple(f"{t}:{tags[t]}" for t in ("job", "feature", "value") if t in tags)
        assert key not in out, f"duplicate point {key}"
        out[key] = s
    return out


def run_once(tmp_path: Path, warehouse: Warehouse, intake) -> tuple[int, Any]:
    sc = known_answers(time.time())
    warehouse.write_predictions(sc.rows)
    cfg = write_config(tmp_path / "conf.yaml", warehouse, intake.url, tmp_path / "state")
    return main(["run", "--once", "--config", str(cfg)]), sc


def test_run_once_delivers_exact_prediction_metrics(tmp_path, warehouse, intake) -> None:
    """Names, values (vs NumPy/SciPy), tags, window-end timestamps, no host: on DuckDB and PostgreSQL."""
    code, sc = run_once(tmp_path, warehouse, intake)
    assert code == 0
    got = series_by_key(intake)
    for (model, version, end), values in sc.values.items():
        want = prediction_stats(values)
        ref = sc.references.get((model, end))
        if ref is not None:  # 500 rows against 400 the day before: one window a side, no pooling
            want.update(drift_reference_values(ref, values), drift_span=600.0)
        emitted = {k[0].removeprefix("mlmon.prediction."): s for k, s in got.items()
                   if k[1:] == (model, version, int(end)) and k[0].startswith("mlmon.prediction.")}
        assert emitted.keys() == want.keys(), (model, end)
        for name, value in want.items():
            series = emitted[name]
            assert series["points"][0][1] == pytest.approx(value, rel=1e-9, abs=1e-12), (model, end, name)
            assert series["type"] == "gauge"
            assert "host" not in series
            drift = ["drift_reference:1d"] if name in (*DRIFT_METRICS, "drift_span") else []
            assert sorted(series["tags"]) == sorted(
                ["env:test", "team:ads", f"model:{model}", f"model_version:{version}", *drift]
            )


def test_silent_model_reports_zero_and_critical(tmp_path, warehouse, intake) -> None:
    """A model seen earlier with no rows in a window: count 0 and predictions.available CRITICAL."""
    code, sc = run_once(tmp_path, warehouse, intake)
    assert code == 0
    last = int(sc.window_ends[-1])
    zero = [s for s in intake.series() if s["metric"] == "mlmon.prediction.count" and "model:const" in s["tags"]
            and s["points"][0][0] == last]
    assert [s["points"][0][1] for s in zero] == [0.0]
    checks = {(c["check"], c["status"], tuple(sorted(c["tags"]))) for c in intake.service_checks()}
    assert ("mlmon.predictions.available", 2, ("env:test", "model:const", "team:ads")) in checks
    assert ("mlmon.warehouse.can_connect", 0, ("env:test", "instance:ads", "team:ads")) in checks
    assert all(c["host_name"] == "" for c in intake.service_checks())


def test_second_run_sends_nothing_new(tmp_path, warehouse, intake) -> None:
    """The watermark advanced: a second run has no window to send (only self-metrics)."""
    run_once(tmp_path, warehouse, intake)
    before = len(intake.series())
    assert main(["run", "--once", "--config", str(tmp_path / "conf.yaml")]) == 0
    new = intake.series()[before:]
    assert new and all(s["metric"].startswith("mlmon.agent.") for s in new)


@pytest.mark.postgres
def test_duckdb_and_postgres_agree(tmp_path, duckdb_warehouse, postgres_warehouse) -> None:
    """The same rows give the same numbers on both engines."""
    from mlmon.testing import IntakeServer

    results = []
    for name, wh in (("duck", duckdb_warehouse), ("pg", postgres_warehouse)):
        with IntakeServer() as intake:
            d = tmp_path / name
            d.mkdir()
            sc = known_answers(time.time(), seed=11)
            wh.write_predictions(sc.rows)
            cfg = write_config(d / "conf.yaml", wh, intake.url, d / "state")
            assert main(["run", "--once", "--config", str(cfg)]) == 0
            results.append({k: s["points"][0][1] for k, s in series_by_key(intake).items()
                             if k[0].startswith("mlmon.prediction.")})
    duck, pg = results
    assert duck.keys() == pg.keys() and len(duck) > 30
    for key in duck:
        assert duck[key] == pytest.approx(pg[key], rel=1e-12, abs=1e-15), key


def write_all_jobs_config(path: Path, warehouse: Warehouse, api_host: str, state_dir: Path) -> Path:
    config = yaml.safe_load(write_config(path, warehouse, api_host, state_dir).read_text())
    instance = config["instances"][0]
    instance["tables"] = {t: warehouse.table(t) for t in
                          ("predictions", "labels", "replays", "training_runs", "training_features")}
    # the scenario spans the 3 hours before the last matured hour: every job must look back past it
    instance["jobs"] = {"predictions": {"initial_lookback": "5h"}, "quality": {"initial_lookback": "4h"},
                        "reproducibility": {"initial_lookback": "4h"},
                        "training": {"features": ["age", "device", "bid_floor"]}}
    path.write_text(yaml.safe_dump(config))
    return path


def test_all_jobs_deliver_through_the_datadog_client(tmp_path, warehouse, intake) -> None:
    """run --once with every table: online, reproducibility and training metrics reach the intake."""
    from tests.reference import label_of, online_quality_reference

    sc = write_every_table(warehouse, time.time())
    cfg = write_all_jobs_config(tmp_path / "conf.yaml", warehouse, intake.url, tmp_path / "state")
    assert main(["run", "--once", "--config", str(cfg)]) == 0
    got = series_by_key(intake)
    names = {k[0] for k in got}
    assert {"mlmon.online.auc", "mlmon.reproducibility.rate", "mlmon.training.rows_change_prev",
            "mlmon.training.feature.same_value_ratio", "mlmon.training.feature.value_share"} <= names
    (model, version, end), rows = next((k, v) for k, v in sc.windows.items() if k[0] == "cvr")
    labels = [label_of(lab, end + sc.label_delay, end - 2 * HOUR) for _, lab, _ in rows]
    want = online_quality_reference([p for p, _, _ in rows], labels, sc.offline[(model, version)])
    for name, value in want.items():
        assert got[(f"mlmon.online.{name}", model, version, int(end))]["points"][0][1] == pytest.approx(value, rel=1e-9)


@pytest.mark.postgres
def test_every_job_gives_identical_numbers_on_duckdb_and_postgres(
    tmp_path, duckdb_warehouse, postgres_warehouse
) -> None:
    """The same rows give the same numbers, metric by metric, for all four jobs on both engines."""
    from mlmon.testing import IntakeServer

    now = time.time()
    results = []
    for name, wh in (("duck", duckdb_warehouse), ("pg", postgres_warehouse)):
        with IntakeServer() as intake:
            d = tmp_path / name
            d.mkdir()
            write_every_table(wh, now)
            cfg = write_all_jobs_config(d / "conf.yaml", wh, intake.url, d / "state")
            assert main(["run", "--once", "--config", str(cfg)]) == 0
            by_tags = {}
            for s in intake.series():
                if s["metric"].startswith("mlmon.agent."):
                    continue
                ts = s["points"][0][0]
                if s["metric"].startswith("mlmon.training."):
                    ts = 0  # snapshots are stamped at send time
                by_tags[(s["metric"], tuple(sorted(s["tags"])), ts)] = s["points"][0][1]
            results.append(by_tags)
    duck, pg = results
    families = {k[0].split(".")[1] for k in duck}
    assert {"prediction", "online", "reproducibility", "training"} <= families
    assert duck.keys() == pg.keys()
    for key in duck:
        if key[0] == "mlmon.training.model_age_hours":
            assert duck[key] == pytest.approx(pg[key], abs=0.01), key  # two runs, seconds apart
        else:
            assert duck[key] == pytest.approx(pg[key], rel=1e-9, abs=1e-12), key
