"""A state directory the agent cannot write (read-only, full, or a path through a regular file): a clean error
naming ``state_dir`` and no traceback, ``mlmon.job.can_run`` CRITICAL (never OK), the other jobs still run, and
``mlmon check`` says so before anything runs.

Tests run as root here, so permissions do not bind; a path through a regular file (``state_dir/ads`` a file)
fails every write the same way a read-only or full disk does (an ``OSError``)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from tests.test_faults import (
    END,
    INSTANCE,
    make_config,
    warehouse,  # noqa: F401  (the module's warehouse fixture)
)

from mlmon.cli import main
from mlmon.preflight import check_state_dir
from mlmon.reports import JOB_CHECK
from mlmon.runner import Agent
from mlmon.samples import CheckStatus
from mlmon.testing import RecordingSink

#: the agent over the fault suite's warehouse in a child process whose files may not grow past 64 bytes (what a
#: full disk or a quota does to a write: EFBIG instead of ENOSPC, the same OSError to the agent); it prints each
#: job's report and can_run checks as JSON
CHILD = """
import json, logging, resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from tests.test_faults import END, make_config
from mlmon.reports import JOB_CHECK
from mlmon.runner import Agent
from mlmon.testing import RecordingSink
config = make_config(Path(sys.argv[1]), Path(sys.argv[2]))
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
sink = RecordingSink()
reports = Agent(config, sink, clock=lambda: END).run_once()
def checks(job):
    return [c for c in sink.checks if c.name == JOB_CHECK and f"job:{job}" in c.tags]
print(json.dumps({r.job: {"errors": r.errors, "windows": r.windows_processed, "messages": r.messages,
                          "checks": [c.status.name for c in checks(r.job)],
                          "check_messages": [c.message for c in checks(r.job)],
                          "samples": sum(1 for s in sink.samples if s.name.startswith("mlmon.training."))}
                  for r in reports}))
"""


def test_a_state_dir_that_takes_no_write_fails_the_jobs_cleanly(warehouse, tmp_path) -> None:  # noqa: F811
    """Writes to the state directory fail (a full disk): every windowed job fails with a message naming
    state_dir and what to do, its can_run is CRITICAL and only CRITICAL, nothing is logged with a traceback;
    the training job (no state) still sends."""
    state = tmp_path / "state"
    state.mkdir()
    done = subprocess.run([sys.executable, "-c", CHILD, str(warehouse), str(state)], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout)
    for job in ("predictions", "quality", "reproducibility"):
        report = reports[job]
        assert report["errors"] == 1, (job, report)
        (message,) = report["messages"]
        assert f"state_dir {state}: cannot write" in message and "init_config.state_dir" in message, message
        assert report["checks"] == ["CRITICAL"] and "state_dir" in report["check_messages"][0], (job, report)
    assert reports["training"]["errors"] == 0 and reports["training"]["samples"] > 0
    assert "Traceback" not in done.stderr, done.stderr


def test_a_state_dir_through_a_file_fails_the_jobs_cleanly(warehouse, tmp_path, caplog) -> None:  # noqa: F811
    """state_dir/ads is a regular file: reading a job's state fails the same clean way (not 'unreadable state
    file', which is for a file mlmon did not write)."""
    state = tmp_path / "state"
    state.mkdir()
    (state / INSTANCE).write_text("not a directory")
    sink = RecordingSink()
    with caplog.at_level(logging.INFO):
        reports = {r.job: r for r in Agent(make_config(warehouse, state), sink, clock=lambda: END).run_once()}
    for job in ("predictions", "quality", "reproducibility"):
        (message,) = reports[job].messages
        assert f"state_dir {state}: cannot read {job}.json" in message, message
        checks = [c for c in sink.checks if c.name == JOB_CHECK and f"job:{job}" in c.tags]
        assert [c.status for c in checks] == [CheckStatus.CRITICAL], (job, checks)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


def test_check_and_run_refuse_an_unusable_state_dir(tmp_path, capsys) -> None:
    """`mlmon check` reports an unusable state_dir as a problem (exit 1); `mlmon run --once` refuses to start with
    one line naming it, no traceback; a usable one is reported writable and leaves no file behind."""
    afile = tmp_path / "afile"
    afile.write_text("")
    config_path = tmp_path / "conf.yaml"
    config_path.write_text(f"""
init_config:
  state_dir: {afile / "state"}
  datadog: {{transport: jsonl, jsonl_path: {tmp_path / "out.jsonl"}}}
instances:
  - name: ads
    warehouse: {{engine: duckdb, path: {tmp_path / "w.duckdb"}}}
""")
    assert main(["check", "--config", str(config_path)]) == 1
    out = capsys.readouterr()
    assert f"PROBLEM state_dir {afile / 'state'}: cannot write a file there" in out.out + out.err
    assert main(["run", "--once", "--config", str(config_path)]) == 1
    err = capsys.readouterr().err
    assert f"state_dir {afile / 'state'}: cannot create its lock file" in err and "Traceback" not in err, err

    said: list[str] = []
    good = tmp_path / "good"
    config = make_config(Path("w.duckdb"), good)
    assert check_state_dir(config, said.append) == [] and said == [f"state_dir {good}: writable"]
    assert list(good.iterdir()) == []
