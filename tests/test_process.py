"""The agent as a process: SIGTERM in the middle of a catch-up, and two agents on one state directory.

The agent runs as ``mlmon run`` (its scheduler) or ``mlmon run --once`` in a subprocess, on real time,
over a DuckDB warehouse holding the last 30 hours, with one window per statement so that 18 hours of
catch-up take long enough to be interrupted.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlmon.scenarios import build_frames, write_duckdb
from mlmon.state import StateStore

WIDTH = 600.0


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("process") / "warehouse.duckdb"
    write_duckdb(path, build_frames(time.time(), hours=30))
    return path


def write_config(directory: Path, warehouse: Path) -> Path:
    config = {
        "init_config": {"env": "test", "state_dir": str(directory / "state"),
                        "datadog": {"transport": "jsonl", "jsonl_path": str(directory / "metrics.jsonl")}},
        "instances": [{
            "name": "ads",
            "warehouse": {"engine": "duckdb", "path": str(warehouse)},
            "tables": {"labels": None, "replays": None, "training_runs": None},
            "jobs": {"predictions": {"initial_lookback": "18h", "max_windows_per_query": 1}},
        }],
    }
    path = directory / "conf.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def mlmon(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from mlmon.cli import main; sys.exit(main(sys.argv[1:]))", *args]


def counts(jsonl: Path) -> list[tuple[str, tuple[str, ...], int]]:
    """(metric, tags, timestamp) of every prediction metric line written."""
    out = []
    if jsonl.exists():
        for line in jsonl.read_text().splitlines():
            obj: dict[str, Any] = json.loads(line)
            if obj.get("metric", "").startswith("mlmon.prediction."):
                out.append((obj["metric"], tuple(obj["tags"]), obj["points"][0][0]))
    return out


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def expected(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, tuple[str, ...], int]]:
    """What an uninterrupted run delivers."""
    clean_dir = tmp_path_factory.mktemp("clean")
    clean = subprocess.run(mlmon("run", "--once", "--config", str(write_config(clean_dir, warehouse))),
                           capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    out = counts(clean_dir / "metrics.jsonl")
    assert len(out) == len(set(out)) and out
    return out


@pytest.mark.parametrize("once", [False, True], ids=["scheduler", "once"])
def test_sigterm_mid_catch_up_then_resume(warehouse, tmp_path, once, expected) -> None:
    """SIGTERM while hours of windows are being caught up: exit 0, the state names the last window delivered,
    and the next run continues from it: every window exactly once, no gap."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = write_config(run_dir, warehouse)
    proc = subprocess.Popen(mlmon("run", *(["--once"] if once else []), "--config", str(config)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len({ts for m, _, ts in counts(run_dir / "metrics.jsonl")}) >= 3)
        # a second agent on the same state directory refuses to start, naming the first
        second = subprocess.run(mlmon("run", "--once", "--config", str(config)), capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 1
        assert f"another mlmon agent (pid {proc.pid})" in second.stderr and "refusing to start" in second.stderr
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "signal 15: ending the statements in flight" in stderr
    interrupted = counts(run_dir / "metrics.jsonl")
    watermark = StateStore(run_dir / "state").load("ads", "predictions").watermark
    assert watermark == max(ts for _, _, ts in interrupted)  # the state names exactly what was delivered
    assert watermark < max(ts for _, _, ts in expected)  # ... and it was stopped mid-way

    resumed = subprocess.run(mlmon("run", "--once", "--config", str(config)), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    delivered = counts(run_dir / "metrics.jsonl")
    duplicates = [k for k, n in Counter(delivered).items() if n > 1]
    assert duplicates == []
    # what the clean run delivered (from this run's first window: real time moved on in between)
    first = min(ts for _, _, ts in delivered)
    assert {k for k in expected if k[2] >= first} <= set(delivered)
    # no gap: per model, the windows delivered are consecutive from the first to the last
    by_model: dict[str, set[int]] = {}
    for m, tags, ts in delivered:
        if m == "mlmon.prediction.count":
            by_model.setdefault(next(t for t in tags if t.startswith("model:")), set()).add(ts)
    for model, ends in by_model.items():
        ordered = sorted(ends)
        assert all(b - a == WIDTH for a, b in itertools.pairwise(ordered)), model


def test_state_survives_a_crash_while_saving(tmp_path, monkeypatch) -> None:
    """A failure in the middle of a save (here: the rename) leaves the previous state whole and no
    temporary file behind."""
    import os

    from mlmon.state import JobState, StateError

    store = StateStore(tmp_path)
    store.save("ads", "predictions", JobState(1200.0))

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StateError, match=r"cannot write predictions\.json of instance ads \(No space left on device"):
        store.save("ads", "predictions", JobState(1800.0))
    monkeypatch.undo()
    assert store.load("ads", "predictions").watermark == 1200.0
    assert [p.name for p in (tmp_path / "ads").iterdir()] == ["predictions.json"]
