"""``mlmon backfill``: a week of the demo warehouse through the real ``datadog`` client to a loopback intake.

The warehouse is the demo's week (its three models and planted incidents) ending two days ago, so
that every window of it is due whatever the time; one request in ten is kept (with its labels and
replays) so that a full week backfills in seconds. The uninterrupted backfill of that week is the
reference every other run is held to.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.helpers import API_KEY

from mlmon.backfill import progress_on, state_key
from mlmon.cli import main
from mlmon.demo import DEMO_INCIDENTS
from mlmon.scenarios import DAY, HOUR, build_frames, write_duckdb
from mlmon.state import AgentLock, BackfillLock, JobState, StateStore
from mlmon.testing import IntakeServer, Reply
from mlmon.times import parse_iso as parse_time

END = math.floor(time.time() / HOUR) * HOUR - 2 * DAY
START = END - 7 * DAY
PREFIXES = {"predictions": "mlmon.prediction.", "quality": "mlmon.online.", "reproducibility": "mlmon.reproducibility."}
WIDTHS = {"predictions": 600.0, "quality": HOUR, "reproducibility": HOUR}

Key = tuple[str, tuple[str, ...], int]


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = build_frames(END, DEMO_INCIDENTS, hours=7 * 24)
    kept = frames["predictions"].iloc[::10]
    frames["predictions"] = kept
    for table in ("labels", "replays"):
        frames[table] = frames[table][frames[table]["request_id"].isin(kept["request_id"])]
    path = tmp_path_factory.mktemp("backfill") / "warehouse.duckdb"
    write_duckdb(path, frames)
    return path


def api(intake: IntakeServer, historical: bool = True) -> dict[str, Any]:
    return {"transport": "api", "api_key": API_KEY, "api_host": intake.url, "historical_ingestion": historical,
            "max_retries": 1, "retry_backoff": 0}


def write_config(directory: Path, warehouse: Path, datadog: dict[str, Any], **jobs: dict[str, Any]) -> Path:
    config = {
        "init_config": {"env": "test", "state_dir": str(directory / "state"), "datadog": datadog},
        "instances": [{
            "name": "demo",
            "warehouse": {"engine": "duckdb", "path": str(warehouse)},
            "tags": ["team:ads"],
            "jobs": {
                # a day per statement: fewer, larger statements keep the week's backfill short
                "predictions": {"drift_min_rows": 50, "max_windows_per_query": 144, **jobs.get("predictions", {})},
                # conversions take hours: cvr_app's windows have a lane (and a watermark) of their own
                "quality": {"label_delay_by_model": {"cvr_app": "1d"}},
                "training": {"enabled": False},
            },
        }],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "conf.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def mlmon(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from mlmon.cli import main; sys.exit(main(sys.argv[1:]))", *args]


def backfill_args(config: Path, start: float = START, end: float = END, *extra: str) -> list[str]:
    return ["backfill", "--config", str(config), "--start", iso(start), "--end", iso(end), *extra]


def points(intake: IntakeServer) -> list[tuple[Key, float]]:
    """Every accepted point as ((metric, tags, timestamp), value)."""
    return [((s["metric"], tuple(sorted(s["tags"])), int(ts)), float(v))
            for s in intake.series() for ts, v in s["points"]]


def window_ends(job: str, start: float, end: float) -> set[int]:
    width = WIDTHS[job]
    first = math.ceil(start / width) * width
    return {int(first + (i + 1) * width) for i in range(round((end - first) // width))}


def assert_same_points(delivered: list[tuple[Key, float]], expected: dict[Key, float]) -> None:
    """Each expected point exactly once, with its value, and nothing else."""
    duplicates = [k for k, n in Counter(k for k, _ in delivered).items() if n > 1]
    assert duplicates == []
    got = dict(delivered)
    assert set(got) == set(expected), (sorted(set(expected) - set(got))[:3], sorted(set(got) - set(expected))[:3])
    assert all(math.isclose(got[k], v, rel_tol=1e-9, abs_tol=1e-12) for k, v in expected.items())


@pytest.fixture(scope="module")
def reference(week: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[Key, float]:
    """What an uninterrupted backfill of the week delivers: every window of each job, once."""
    directory = tmp_path_factory.mktemp("reference")
    with IntakeServer(valid_keys=(API_KEY,)) as intake:
        config = write_config(directory, week, api(intake))
        done = subprocess.run(mlmon(*backfill_args(config)), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        delivered = points(intake)
        # window metrics only: no self-metrics, no service checks (they describe the live agent)
        assert not intake.accepted("/check_run")
    assert delivered and not [k for k, _ in delivered if not k[0].startswith(tuple(PREFIXES.values()))]
    assert len(delivered) == len(dict(delivered))
    for job, prefix in PREFIXES.items():  # no gap: every window of the range, for every job
        assert {k[2] for k, _ in delivered if k[0].startswith(prefix)} == window_ends(job, START, END), job
    # the summary's rows for predictions are the prediction rows the windows cover
    rows = sum(v for k, v in delivered if k[0] == "mlmon.prediction.count")
    line = next(line for line in done.stdout.splitlines() if line.startswith("demo") and " predictions " in line)
    assert f"{round(rows):,}" in line.split()
    return dict(delivered)


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigterm_then_same_command_delivers_every_window_once(week, reference, tmp_path) -> None:
    """SIGTERM mid-way through a week: exit 0 with the window in flight finished and its watermark saved;
    the same command then delivers the rest: every window of every job exactly once, as the uninterrupted
    backfill did. The live jobs' state is never touched."""
    store = StateStore(tmp_path / "state")
    live = {job: JobState(END - HOUR) for job in PREFIXES}
    for job, state in live.items():
        store.save("demo", job, state)
    key = state_key("predictions", START, END)
    with IntakeServer(valid_keys=(API_KEY,)) as intake:
        command = mlmon(*backfill_args(write_config(tmp_path, week, api(intake))))
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: (store.load("demo", key).watermark or START) > START)
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 0, stderr
        assert "signal 15: ending the statements in flight" in stderr
        assert "stopped:" in stdout and "run the same command again to continue" in stdout
        first = points(intake)
        mark = store.load("demo", key).watermark
        assert mark == max(k[2] for k, _ in first)  # the state names exactly what was delivered ...
        assert START < mark < END  # ... and it stopped mid-way

        resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert "delivered by an earlier run" in resumed.stderr
        assert_same_points(points(intake), reference)
        for job in PREFIXES:  # every lane's watermark at the end of the range
            state = store.load("demo", state_key(job, START, END))
            assert state.watermark == END and all(v == END for v in state.lanes.values())

    assert {job: store.load("demo", job) for job in PREFIXES} == live


@pytest.mark.parametrize("transport", ["api", "dogstatsd"])
def test_refused_without_historical_ingestion(week, tmp_path, intake, capsys, transport) -> None:
    """Through Datadog without historical ingestion a backfill would lose its windows (or pile them onto one
    timestamp): it refuses with exit 2, names the setting, and sends and records nothing."""
    datadog = api(intake, historical=False) if transport == "api" else {"transport": "dogstatsd"}
    config = write_config(tmp_path, week, datadog)
    assert main(backfill_args(config, START, START + 6 * HOUR)) == 2
    err = capsys.readouterr().err
    assert "init_config -> datadog -> historical_ingestion" in err and "Historical Metrics Ingestion" in err
    assert intake.requests == []
    assert not (tmp_path / "state").exists()


def test_completed_range_sends_nothing(week, tmp_path, intake, capsys) -> None:
    """The same range again, once complete: exit 0, says so, not one request."""
    config = write_config(tmp_path, week, api(intake))
    assert main(backfill_args(config, START + DAY, START + DAY + 3 * HOUR)) == 0
    requests = len(intake.requests)
    assert requests > 0
    capsys.readouterr()
    assert main(backfill_args(config, START + DAY, START + DAY + 3 * HOUR)) == 0
    assert "nothing to send: every window" in capsys.readouterr().out
    assert len(intake.requests) == requests


def test_sink_outage_leaves_the_rest_for_the_next_run(week, reference, tmp_path, intake, capsys) -> None:
    """Datadog fails after two submissions: the windows it accepted stay acknowledged, every job reports the
    error, exit 1; the same command after recovery delivers the rest, each window once."""
    start, end = START + DAY, START + DAY + 6 * HOUR
    config = write_config(tmp_path, week, api(intake), predictions={"max_windows_per_query": 6})
    intake.fail_next(Reply(), Reply(), *[Reply(500, {"errors": ["Internal Server Error"]})] * 50, path="/series")
    assert main(backfill_args(config, start, end)) == 1
    out = capsys.readouterr().out
    assert "error(s): " in out and "run the same command again to continue" in out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("demo ")}
    assert lines["predictions"].split()[2] == "12" and "24 window(s) pending" in lines["predictions"]
    assert all(line.split()[5] != "0" for line in lines.values())  # every job saw the outage
    store = StateStore(tmp_path / "state")
    assert store.load("demo", state_key("predictions", start, end)).watermark == start + 12 * 600
    intake.recover()
    assert main(backfill_args(config, start, end)) == 0
    expected = {k: v for k, v in reference.items() if start < k[2] <= end}
    assert_same_points(points(intake), expected)


def run_main(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code or 0)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--start", "last tuesday", "--end", "2026-11-20"], "--start: expected an ISO 8601 date or time"),
        (["--start", "2026-11-13", "--end", "2026-11-31"], "--end: expected an ISO 8601"),
        (["--start", "2026-11-13", "--end", "2026-11-12T23:00Z"], "--end: 2026-11-12T23:00:00Z is not after"),
        (["--start", "2999-01-01", "--end", "2999-01-02"], "--start: 2999-01-01T00:00:00Z is in the future"),
        (["--start", "2026-11-13", "--end", "2026-11-20", "--job", "training"], "--job training: training is a"),
        (["--start", "2026-11-13", "--end", "2026-11-20", "--job", "drift"], "argument --job: invalid choice"),
        (["--start", "2026-11-13", "--end", "2026-11-20", "--instance", "nope"], "--instance: no instance named"),
        (["--start", "2026-11-13T10:01Z", "--end", "2026-11-13T10:09Z"], "--start/--end: nothing to backfill"),
        (["--start", "2026-11-13"], "the following arguments are required: --end"),
    ],
    ids=["start", "end", "end-before-start", "future", "training", "unknown-job", "instance", "no-window",
         "missing-end"],
)
def test_bad_arguments_exit_2_naming_the_argument(week, tmp_path, capsys, args, names) -> None:
    """Each bad argument: exit 2 and a message that names it; nothing is written."""
    config = write_config(tmp_path, week, {"transport": "jsonl", "jsonl_path": str(tmp_path / "m.jsonl")})
    assert run_main(["backfill", "--config", str(config), *args]) == 2
    assert names in capsys.readouterr().err
    assert not (tmp_path / "m.jsonl").exists()


def test_progress_without_a_terminal_is_a_few_plain_lines(week, tmp_path, capsys) -> None:
    """stderr not a terminal: about one line per tenth of the windows, each with windows done / total and rows/s;
    the last one at 100 %."""
    config = write_config(tmp_path, week, {"transport": "jsonl", "jsonl_path": str(tmp_path / "m.jsonl")})
    assert main(backfill_args(config, START + DAY, START + 2 * DAY)) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("backfill: ")]
    total = 144 + 2 * 24 + 24
    assert 2 <= len(lines) <= 11
    assert all("rows/s" in line and f"/{total} windows" in line for line in lines)
    assert lines[-1].startswith(f"backfill: {total}/{total} windows (100%)")
    assert "\r" not in err


def test_progress_on_a_terminal_is_a_bar() -> None:
    """On a terminal: a tqdm bar with windows done / total, rows and rows/s."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with progress_on(stream, 4) as progress:
        progress.advance(1, 1000)
        progress.advance(3, 2500)
    text = stream.getvalue()
    assert "4/4" in text and "3,500 rows" in text and "rows/s" in text and "\r" in text


def test_end_not_due_yet_is_capped_with_a_message(week, tmp_path, capsys) -> None:
    """--end in the future: the windows not due yet (lateness after their end) are left for a later run of the
    same command, and the message says so."""
    config = write_config(tmp_path, week, {"transport": "jsonl", "jsonl_path": str(tmp_path / "m.jsonl")})
    start, end = math.floor(time.time() - HOUR), math.floor(time.time() + HOUR)
    before = math.floor((time.time() - 300) / 600) * 600
    assert main(backfill_args(config, start, end, "--job", "predictions")) == 0
    after = math.floor((time.time() - 300) / 600) * 600
    err = capsys.readouterr().err
    assert "job predictions: windows are due 5m (lateness) after their end: --end capped to" in err
    key = state_key("predictions", math.ceil(start / 600) * 600, math.floor(end / 600) * 600)
    assert StateStore(tmp_path / "state").load("demo", key).watermark in (before, after)


def test_runs_beside_the_agent_but_not_beside_another_backfill(week, tmp_path, capsys) -> None:
    """The agent's lock does not stop a backfill (they keep separate state); another backfill's does, exit 1."""
    config = write_config(tmp_path, week, {"transport": "jsonl", "jsonl_path": str(tmp_path / "m.jsonl")})
    args = backfill_args(config, START + DAY, START + DAY + 2 * HOUR, "--job", "reproducibility")
    with AgentLock(tmp_path / "state"):
        assert main(args) == 0
    with BackfillLock(tmp_path / "state"):
        assert main(args) == 1
    assert "another mlmon backfill" in capsys.readouterr().err


def test_another_range_has_its_own_watermark(week, tmp_path, capsys) -> None:
    """A range that differs from an earlier backfill's starts from its own beginning (shared windows are sent
    again, with the same values); each range keeps its own state file."""
    jsonl = tmp_path / "m.jsonl"
    config = write_config(tmp_path, week, {"transport": "jsonl", "jsonl_path": str(jsonl)})
    assert main(backfill_args(config, START + DAY, START + DAY + 2 * HOUR, "--job", "reproducibility")) == 0
    assert main(backfill_args(config, START + DAY, START + DAY + 3 * HOUR, "--job", "reproducibility")) == 0
    stamps = [json.loads(line)["points"][0][0] for line in jsonl.read_text().splitlines()
              if '"mlmon.reproducibility.rate"' in line and "model:ctr_banner" in line]
    assert Counter(stamps) == Counter({START + DAY + HOUR: 2, START + DAY + 2 * HOUR: 2, START + DAY + 3 * HOUR: 1})
    assert sorted(p.name for p in (tmp_path / "state" / "demo").iterdir()) == [
        state_key("reproducibility", START + DAY, START + DAY + h * HOUR) + ".json" for h in (2, 3)
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-13", "2026-11-13T00:00:00+00:00"),
        ("2026-11-13T14:10", "2026-11-13T14:10:00+00:00"),
        ("2026-11-13T14:10:00Z", "2026-11-13T14:10:00+00:00"),
        ("2026-11-13T15:10:00+01:00", "2026-11-13T14:10:00+00:00"),
    ],
    ids=["date", "naive", "zulu", "offset"],
)
def test_times_are_iso_8601_utc_when_no_zone(text, expected) -> None:
    """Dates are their midnight, times without a zone are UTC."""
    assert parse_time(text) == dt.datetime.fromisoformat(expected).timestamp()
