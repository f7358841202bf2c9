"""The first hour with the config a user writes: an instance with just ``name`` and ``warehouse``.

Every default is left alone (hourly ``quality`` and ``reproducibility`` windows, ``initial_lookback``
1 h, ``label_delay`` 1 h, ``transport: api``), and the agent runs at instants that are not on a window
boundary: in process with a clock, as ``mlmon run --once``, and as the ``mlmon run`` daemon. The Datadog
connection comes from the environment only (``DD_API_KEY``, ``DATADOG_HOST``), as in a CronJob.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import log_loss, roc_auc_score
from tests.helpers import API_KEY

from mlmon.cli import main
from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.scenarios import build_frames, write_duckdb
from mlmon.testing import RecordingSink

HOUR = 3600.0
FAMILIES = ("mlmon.prediction.", "mlmon.online.", "mlmon.reproducibility.", "mlmon.training.")


def defaults_only(warehouse: Path) -> dict:
    return {"instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": str(warehouse)}}]}


def seconds(column: pd.Series) -> pd.Series:
    """Unix seconds of a datetime column, whatever its unit."""
    return (column - pd.Timestamp(0)) / pd.Timedelta(seconds=1)


def online_reference(frames: dict[str, pd.DataFrame], start: float, end: float) -> dict[str, tuple[int, float, float]]:
    """Per model: (labeled rows, logloss, AUC) of the hourly window [start, end) by the README's label rules
    with the default label_delay (1 h), from the raw frames with pandas and scikit-learn."""
    preds = frames["predictions"]
    ts = seconds(preds["ts"])
    window = preds[(ts >= start) & (ts < end) & preds["prediction"].between(0, 1)]
    labels = frames["labels"]
    matured = labels[seconds(labels["label_ts"]) < end + HOUR]
    y = matured[matured["label"].isin([0, 1])].groupby("request_id")["label"].max()
    joined = window.join(y, on="request_id", how="inner")
    out = {}
    for model, rows in joined.groupby("model"):
        truth, p = rows["label"].to_numpy(), rows["prediction"].to_numpy()
        out[str(model)] = (len(rows), log_loss(truth, p, labels=[0, 1]), roc_auc_score(truth, p))
    return out


@pytest.mark.parametrize("offset", [1.0, 754.3, 1799.0, 3599.5])
def test_defaults_only_first_run_sends_every_family(tmp_path, monkeypatch, offset) -> None:
    """At an instant off the hour, one first run sends predictions, online quality of the latest matured
    hour (equal to scikit-learn), reproducibility and training; every job saves a watermark."""
    monkeypatch.chdir(tmp_path)  # the default state_dir, .mlmon/state, is relative to it
    now = 1_800_000_000.0 // HOUR * HOUR + offset
    frames = build_frames(now, hours=4)
    write_duckdb(tmp_path / "warehouse.duckdb", frames)
    config = parse_config(defaults_only(tmp_path / "warehouse.duckdb"))
    sink = RecordingSink(horizon=config.init_config.datadog.horizon)  # the default transport's: 50 min
    reports = Agent(config, sink, clock=lambda: now).run_once()

    assert {r.job: r.errors for r in reports} == dict.fromkeys(("predictions", "quality", "reproducibility",
                                                                "training"), 0)
    assert sum(r.points_skipped for r in reports) == 0  # a first run sends nothing the destination would drop
    names = {s.name for s in sink.samples}
    for family in FAMILIES:
        assert any(n.startswith(family) for n in names), f"no {family}* point"
    # the hourly jobs processed exactly the latest matured hour: end + label_delay <= now
    matured_end = math.floor((now - HOUR) / HOUR) * HOUR
    for job in ("quality", "reproducibility"):
        (report,) = (r for r in reports if r.job == job)
        assert [o.window.end for o in report.outputs] == [matured_end]
        assert report.watermark == matured_end
    expected = online_reference(frames, matured_end - HOUR, matured_end)
    assert expected  # the scenario serves every model in that hour
    for model, (labeled, logloss, auc) in expected.items():
        got = {n: [s.value for s in sink.metrics(f"mlmon.online.{n}", [f"model:{model}"])]
               for n in ("labeled_count", "logloss", "auc")}
        # 05:00-06:00 UTC: one serving version (the scenario retrains at 02:00)
        assert got["labeled_count"] == [labeled]
        assert got["logloss"][0] == pytest.approx(logloss, rel=1e-9)
        assert got["auc"][0] == pytest.approx(auc, abs=1e-9)
    assert (tmp_path / ".mlmon" / "state" / "ads").is_dir()


@pytest.mark.parametrize("offset", [1.0, 1799.0])
def test_plan_shows_the_windows_the_first_run_processes(tmp_path, monkeypatch, offset) -> None:
    """``mlmon plan`` at the same instant: each window job's period is exactly the windows the run processed."""
    from mlmon.plan import plan_config

    monkeypatch.chdir(tmp_path)
    now = 1_800_000_000.0 // HOUR * HOUR + offset
    write_duckdb(tmp_path / "warehouse.duckdb", build_frames(now, hours=4))
    config = parse_config(defaults_only(tmp_path / "warehouse.duckdb"))
    (plan,) = plan_config(config, now)
    sink = RecordingSink(horizon=config.init_config.datadog.horizon)
    reports = {r.job: r for r in Agent(config, sink, clock=lambda: now).run_once()}
    for job in plan.jobs:
        if job.job == "training" or job.status == "skipped":  # a snapshot; a job with nothing to watch
            continue
        (period,) = job.periods
        ends = [o.window.end for o in reports[job.job].outputs]
        assert period.windows == len(ends) >= 1, job.job
        width = 600.0 if job.job == "predictions" else HOUR  # the default windows
        assert (period.start, period.end) == (ends[0] - width, ends[-1])


def test_second_run_in_the_same_hour_sends_no_window_twice(tmp_path, monkeypatch) -> None:
    """After a first run off the hour, a run 20 minutes later has nothing new for the hourly jobs; the
    next hour's run takes the next window only."""
    monkeypatch.chdir(tmp_path)
    now = 1_800_000_000.0 // HOUR * HOUR + 1234.0
    write_duckdb(tmp_path / "warehouse.duckdb", build_frames(now + HOUR, hours=5))
    config = parse_config(defaults_only(tmp_path / "warehouse.duckdb"))

    def quality_ends(at: float) -> list[float]:
        (report,) = (r for r in Agent(config, RecordingSink(), clock=lambda: at).run_once() if r.job == "quality")
        return [o.window.end for o in report.outputs]

    first = quality_ends(now)
    assert len(first) == 1
    assert quality_ends(now + 1200) == []
    assert quality_ends(now + HOUR) == [first[0] + HOUR]


def environment(intake) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "DATADOG_"))}
    return env | {"DD_API_KEY": API_KEY, "DATADOG_HOST": intake.url}


def families_sent(intake) -> set[str]:
    return {f for s in intake.series() for f in FAMILIES if s["metric"].startswith(f)}


def test_run_once_from_defaults_and_environment(tmp_path, monkeypatch, intake, capsys) -> None:
    """``mlmon run --once --format json`` at the wall-clock time: every family reaches the intake named by
    DATADOG_HOST, and the JSON report says one window or more per window job."""
    monkeypatch.chdir(tmp_path)
    write_duckdb(tmp_path / "warehouse.duckdb", build_frames(time.time(), hours=4))
    config = tmp_path / "conf.yaml"
    config.write_text(yaml.safe_dump(defaults_only(Path("warehouse.duckdb"))))
    for name, value in environment(intake).items():
        if name.startswith(("DD_", "DATADOG_")):
            monkeypatch.setenv(name, value)
    assert main(["run", "--once", "--format", "json", "--config", str(config)]) == 0
    out = capsys.readouterr()
    reports = {r["job"]: r for r in json.loads(out.out)}
    assert set(reports) == {"predictions", "quality", "reproducibility", "training"}
    assert all(reports[j]["windows_processed"] >= 1 for j in ("predictions", "quality", "reproducibility"))
    assert all(r["errors"] == 0 and r["points_sent"] > 0 and r["points_skipped"] == 0 for r in reports.values())
    assert families_sent(intake) == set(FAMILIES)
    assert API_KEY not in out.out + out.err


def test_run_format_json_needs_once(tmp_path, capsys) -> None:
    """The daemon has no report to print: --format json without --once is a usage error."""
    assert main(["run", "--format", "json", "--config", str(tmp_path / "absent.yaml")]) == 2
    assert "--once" in capsys.readouterr().err


def test_daemon_first_tick_sends_every_family_and_logs_each_run(tmp_path, intake) -> None:
    """``mlmon run`` (the scheduler) from the defaults-only config: within its first tick every family
    reaches the intake, and each job run logs its summary line; SIGTERM then stops it with exit 0."""
    write_duckdb(tmp_path / "warehouse.duckdb", build_frames(time.time(), hours=4))
    config = tmp_path / "conf.yaml"
    config.write_text(yaml.safe_dump(defaults_only(Path("warehouse.duckdb"))))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from mlmon.cli import main; sys.exit(main(sys.argv[1:]))",
         "run", "--config", str(config)],
        cwd=tmp_path, env=environment(intake), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while families_sent(intake) != set(FAMILIES) or len(summaries(intake)) < 4:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"sent only {families_sent(intake)}"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    for job in ("predictions", "quality", "reproducibility", "training"):
        lines = [line for line in err.splitlines() if f"instance ads job {job}: " in line and "point(s) sent" in line]
        assert lines, f"no summary line for {job}:\n{err}"
        windows = int(lines[0].split(f"job {job}: ")[1].split(" window(s)")[0])
        assert job == "training" or windows >= 1, lines[0]
        assert "0 error(s)" in lines[0]
    assert API_KEY not in err
    assert "older than the ingestion horizon" not in err  # no skip warning on a first run


def summaries(intake) -> list[dict]:
    """The agent's windows_processed points: one per job run that finished."""
    return [s for s in intake.series() if s["metric"] == "mlmon.agent.windows_processed"]


def test_online_reference_applies_the_label_delay() -> None:
    """The reference above leaves out a label logged after window end + 1 h, as the README's rule says."""
    base = 1_800_000_000.0
    frames = {
        "predictions": pd.DataFrame({"request_id": ["a", "b", "c"], "ts": pd.to_datetime([base + 10] * 3, unit="s"),
                                     "model": ["m"] * 3, "model_version": ["v"] * 3,
                                     "prediction": [0.2, 0.7, 0.4]}),
        "labels": pd.DataFrame({"request_id": ["a", "b", "c"], "label": [0, 1, 1],
                                "label_ts": pd.to_datetime([base + 20, base + 30, base + 2 * HOUR], unit="s")}),
    }
    (labeled, logloss, _), = online_reference(frames, base, base + HOUR).values()
    assert labeled == 2
    assert logloss == pytest.approx(-(np.log(0.8) + np.log(0.7)) / 2)
