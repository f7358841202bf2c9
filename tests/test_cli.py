"""The command line: demo, check, the single-agent lock, and secrets kept out of logs."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from mlmon.cli import main
from mlmon.logs import SecretFilter
from mlmon.state import AgentLock, JobState, LockError, StateStore


def test_demo_prints_summary_with_planted_incidents(tmp_path, capsys) -> None:
    """The demo builds its warehouse, runs, and its summary flags the planted incidents per model."""
    assert main(["demo", "--dir", str(tmp_path / "demo"), "--days", "3"]) == 0
    out = capsys.readouterr().out
    sections = out.split("\n\n")
    tables = {}
    for title in ("Predictions", "Online quality", "Segments", "Training lineage", "Serving inputs"):
        section = next(s for s in sections if s.startswith(title))
        tables[title] = {line.split()[0]: line for line in section.splitlines() if line.startswith(("ctr_", "cvr_"))}
        assert set(tables[title]) == {"ctr_banner", "ctr_video", "cvr_app"}, title
    lines = tables["Predictions"]
    assert "UNAVAILABLE" in lines["ctr_video"]
    assert "STUCK" in lines["cvr_app"]
    assert "SHIFTED" in lines["ctr_banner"] and "invalid" in lines["ctr_banner"]
    online = tables["Online quality"]
    assert "NOT REPRODUCIBLE" in online["cvr_app"] and "MISCALIBRATED" in online["ctr_banner"]
    assert online["ctr_video"].endswith("ok")  # no false alarm on the healthy model
    segments = tables["Segments"]
    assert "SEGMENT placement:search RANKED WORSE than the model" in segments["ctr_banner"]
    assert segments["ctr_video"].endswith("ok") and segments["cvr_app"].endswith("ok")
    training = tables["Training lineage"]
    assert "TRAINING ROWS DROPPED" in training["ctr_video"] and "OFFLINE REGRESSION" in training["cvr_app"]
    assert "FEATURE bid_floor STUCK" in training["ctr_banner"]
    assert "DROPPED" not in training["ctr_banner"] + training["cvr_app"]  # no false alarms
    assert "REGRESSION" not in training["ctr_banner"] + training["ctr_video"]
    serving = tables["Serving inputs"]
    assert "FEATURE age NULL" in serving["ctr_video"] and "SKEWED" not in serving["ctr_video"]
    assert "FEATURE bid_floor SKEWED vs training" in serving["cvr_app"] and "NULL" not in serving["cvr_app"]
    assert "NULL" not in serving["ctr_banner"] and "STUCK" not in "".join(serving.values())
    # the shipped monitors, replayed over the demo, fire on each planted incident and nowhere else
    monitors = next(s for s in sections if s.startswith("Monitors that would have fired"))
    fired = {tuple(line.split()[:2]) for line in monitors.splitlines()[2:-1]}
    # the shift's logloss cost sits near the threshold (1.2-1.3x): it may alert or only warn. The stuck hours
    # shift cvr_app's predictions a day later too, when they are the drift reference; the stuck value is about
    # 1/1.5 of cvr_app's mean prediction, at predictions_mean_shifted's threshold: it may fire on them or not.
    # ctr_banner trained its latest version on a constant bid_floor: its healthy serving values are skewed
    # against that version's training data once it served two hourly windows (not between 02:00 and 04:10 UTC).
    # The shift over-predicts every placement of ctr_banner alike: the segment monitors, which compare a slice with
    # its model, stay quiet. The stuck hours cost cvr_app online logloss too (a constant prediction ranks nothing:
    # 1.15-1.5x offline in those windows, 1.15-1.3x over the monitor's 3 hours): it may alert or only warn
    maybe = {("online_quality_degraded", "model:ctr_banner"), ("predictions_shifted", "model:cvr_app"),
             ("predictions_mean_shifted", "model:cvr_app"), ("online_quality_degraded", "model:cvr_app"),
             ("training_serving_skew", "model:ctr_banner,feature:bid_floor"),
             # the planted slice itself (labels drawn independently of the score): segment_miscalibrated fired on it
             # in one CI run (2026-12-01, end time not recorded); allowed there only, never on another slice
             ("segment_miscalibrated", "model:ctr_banner,segment:placement,segment_value:search")}
    assert fired - maybe == {
        ("same_value_ratio_high", "model:cvr_app"),
        ("predictions_unavailable", "model:ctr_video"), ("reproducibility_low", "model:cvr_app"),
        ("predictions_shifted", "model:ctr_banner"), ("predictions_mean_shifted", "model:ctr_banner"),
        ("online_miscalibrated", "model:ctr_banner"),
        ("feature_collapsed", "model:ctr_banner,feature:bid_floor"), ("offline_quality_regression", "model:cvr_app"),
        ("training_rows_drop_prev", "model:ctr_video"), ("training_rows_drop_30d", "model:ctr_video"),
        ("serving_feature_nulls", "model:ctr_video,feature:age"),
        ("training_serving_skew", "model:cvr_app,feature:bid_floor"),
        ("segment_quality_gap", "model:ctr_banner,segment:placement,segment_value:search"),
    }
    metrics = (tmp_path / "demo" / "metrics.jsonl").read_text().splitlines()
    series = [json.loads(line) for line in metrics if '"metric"' in line]
    assert {"metric", "type", "points", "tags"} == set(series[0])
    assert any(s["metric"] == "mlmon.prediction.same_value_ratio" and s["points"][0][1] == 1.0 for s in series)


def test_check_reports_every_problem(tmp_path, capsys, duckdb_warehouse, monkeypatch) -> None:
    """mlmon check lists a missing table and a missing API key, not only the first problem."""
    monkeypatch.delenv("DD_API_KEY", raising=False)
    monkeypatch.delenv("DATADOG_API_KEY", raising=False)
    duckdb_warehouse.write_predictions([("r", None, "m", "v", 0.5)])
    cfg = tmp_path / "conf.yaml"
    cfg.write_text(yaml.safe_dump({
        "instances": [
            {"name": "good", "warehouse": duckdb_warehouse.config()},
            {"name": "bad", "warehouse": duckdb_warehouse.config(), "tables": {"predictions": "nope"}},
        ]}))
    assert main(["check", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "instance good: table predictions has the columns" in out
    assert "PROBLEM instance bad, table nope" in out
    assert "PROBLEM datadog: no API key" in out


def test_second_agent_refuses_the_same_state_dir(tmp_path) -> None:
    """The lock is exclusive; the message names the directory."""
    with AgentLock(tmp_path), pytest.raises(LockError, match=str(tmp_path)):
        AgentLock(tmp_path).acquire()
    again = AgentLock(tmp_path)
    again.acquire()  # free again once released
    again.release()


def test_state_round_trip_is_atomic(tmp_path) -> None:
    """A saved state loads back; no temporary files are left behind."""
    store = StateStore(tmp_path)
    store.save("ads", "predictions", JobState(1234.0, {"m": {"last_seen": 1200.0, "version": "v1"}}))
    assert store.load("ads", "predictions") == JobState(1234.0, {"m": {"last_seen": 1200.0, "version": "v1"}})
    assert [p.name for p in (tmp_path / "ads").iterdir()] == ["predictions.json"]


def test_secret_filter_scrubs_keys_and_url_passwords() -> None:
    """Known secrets and URL passwords are replaced in messages and tracebacks."""
    f = SecretFilter(["abcd1234secret"])
    try:
        raise RuntimeError("boom abcd1234secret postgresql://me:hunter22@db/x")
    except RuntimeError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "key=%s", ("abcd1234secret",), sys.exc_info())
    f.filter(record)
    text = record.getMessage()
    assert "abcd1234secret" not in text and "hunter22" not in text and "***" in text
    assert "RuntimeError" in text


def test_demo_send_pushes_through_the_datadog_client(tmp_path, capsys, intake, monkeypatch) -> None:
    """--send uses the HTTP API (DD_API_KEY, DATADOG_HOST); windows Datadog would drop are not sent."""
    from tests.helpers import API_KEY

    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DATADOG_HOST", intake.url)
    assert main(["demo", "--dir", str(tmp_path / "demo"), "--days", "1", "--send"]) == 0
    out = capsys.readouterr().out
    assert "sent to Datadog" in out
    series = intake.series()
    counts = [s for s in series if s["metric"] == "mlmon.prediction.count"]
    assert counts, "no window delivered"
    import time

    assert all(time.time() - s["points"][0][0] <= 50 * 60 + 5 for s in counts)  # nothing Datadog would drop
    # the week's older windows are left out of the first run, not sent to be dropped nor skipped one by one
    skipped = [s for s in series if s["metric"] == "mlmon.agent.points_skipped" and "job:predictions" in s["tags"]]
    assert [s["points"][0][1] for s in skipped] == [0]
    line = next(line for line in out.splitlines() if line.startswith("job predictions:"))
    assert 4 <= int(line.split()[2]) <= 5, line  # the 10-minute windows of the last 49 minutes
    assert all("host" not in s for s in series)
    assert not (tmp_path / "demo" / "metrics.jsonl").exists()


def test_check_reports_every_kind_of_problem(tmp_path, capsys, duckdb_warehouse, intake) -> None:
    """One run of mlmon check: a missing file, a missing table, a missing column and a rejected key are all
    reported, each naming what is wrong, and the healthy instance is confirmed."""
    duckdb_warehouse.write_predictions([("r", None, "m", "v", 0.5)])
    cfg = tmp_path / "conf.yaml"
    cfg.write_text(yaml.safe_dump({
        "init_config": {"datadog": {"api_key": "rejected-key-0000", "api_host": intake.url}},
        "instances": [
            {"name": "good", "warehouse": duckdb_warehouse.config()},
            {"name": "nofile", "warehouse": {"engine": "duckdb", "path": str(tmp_path / "gone.duckdb")}},
            {"name": "notable", "warehouse": duckdb_warehouse.config(), "tables": {"predictions": "preds_v2"}},
            {"name": "nocolumn", "warehouse": duckdb_warehouse.config(),
             "columns": {"predictions": {"prediction": "score"}}},
        ]}))
    assert main(["check", "--config", str(cfg)]) == 1
    captured = capsys.readouterr()
    problems = [line for line in captured.out.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 4, problems
    assert any("instance nofile" in p and "gone.duckdb" in p for p in problems)
    assert any("instance notable, table preds_v2" in p for p in problems)
    assert any("instance nocolumn, table predictions" in p and "score" in p for p in problems)
    assert any(p.startswith("PROBLEM datadog: API key rejected") and "403" in p for p in problems)
    assert "instance good: table predictions has the columns" in captured.out
    assert "4 problem(s) found" in captured.err
    assert "rejected-key-0000" not in captured.out + captured.err
