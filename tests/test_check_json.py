"""``mlmon check --format json``: one JSON document on stdout for scripts (``ok``, ``problems``, ``warnings``,
``notes``, and the same per section), the text format's exit codes, and no secret in anything printed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import yaml
from tests.helpers import closed_port, utc
from tests.scenarios import HOUR, PREDICTION_COLUMNS
from tests.tables import write_table
from tests.test_preflight import LABEL_COLUMNS

import mlmon.preflight
from mlmon.cli import main

#: a warehouse password holding characters a URL must encode, so that the written and the decoded form differ
PASSWORD = "pw-SECRET-Qx4/@y:%z"
FORBIDDEN = (PASSWORD, quote(PASSWORD, safe=""), "SECRET")


def write_config(tmp_path: Path, instances: list[dict[str, Any]], **datadog: Any) -> Path:
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump({"init_config": {"state_dir": str(tmp_path / "state"), "datadog": datadog},
                                    "instances": instances}))
    return path


def pg_url(port: int) -> str:
    return f"postgresql://mlmon:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/ads"


def test_good_config_prints_ok_true_and_exits_0(duckdb_warehouse, tmp_path, capfd) -> None:
    """A DuckDB instance whose tables fit, the jsonl transport: exit 0, stdout one document saying ok, with the
    progress lines as notes, per instance, Datadog and state directory."""
    duckdb_warehouse.write_predictions([("r", utc(time.time() - HOUR), "m", "v", 0.5)])
    cfg = write_config(tmp_path, [{"name": "good", "warehouse": duckdb_warehouse.config()}], transport="jsonl")
    assert main(["check", "--config", str(cfg), "--format", "json"]) == 0
    out, err = capfd.readouterr()
    doc = json.loads(out)  # the whole of stdout
    assert doc["ok"] is True and doc["problems"] == [] and doc["warnings"] == []
    assert "instance good: table predictions has the columns job(s) predictions" in "\n".join(doc["notes"])
    assert "datadog: transport jsonl, no key needed" in doc["notes"]
    assert [s["section"] for s in doc["sections"]] == ["instance good", "datadog", "state_dir"]
    good = doc["sections"][0]
    assert good["instance"] == "good" and good["ok"] is True and good["notes"][0] == "instance good: connected (duckdb)"
    assert doc["notes"] == [n for s in doc["sections"] for n in s["notes"]]
    assert "PROBLEM" not in out and "all checks passed" not in out + err


def test_broken_config_lists_every_problem_and_exits_1(duckdb_warehouse, tmp_path, capfd, monkeypatch) -> None:
    """A missing table, a PostgreSQL warehouse that refuses the connection (its password in the URL) and no API
    key: exit 1, each problem listed overall and in its section, ok false; the healthy instance stays ok; the
    password shows nowhere."""
    monkeypatch.delenv("DD_API_KEY", raising=False)
    monkeypatch.delenv("DATADOG_API_KEY", raising=False)
    duckdb_warehouse.write_predictions([("r", None, "m", "v", 0.5)])
    port = closed_port()
    cfg = write_config(tmp_path, [
        {"name": "good", "warehouse": duckdb_warehouse.config()},
        {"name": "bad", "warehouse": duckdb_warehouse.config(), "tables": {"predictions": "nope"}},
        {"name": "pgdown", "warehouse": {"engine": "postgres", "url": pg_url(port)}},
    ])
    assert main(["check", "--config", str(cfg), "--format", "json", "--log-level", "DEBUG"]) == 1
    out, err = capfd.readouterr()
    doc = json.loads(out)
    assert doc["ok"] is False
    bad, pgdown, datadog = doc["problems"]
    assert bad.startswith("instance bad, table nope (job(s) predictions")
    assert pgdown.startswith("instance pgdown: cannot connect to postgres") and f"port {port}" in pgdown
    assert datadog.startswith("datadog: no API key")
    sections = {s["section"]: s for s in doc["sections"]}
    assert {name: s["ok"] for name, s in sections.items()} == {
        "instance good": True, "instance bad": False, "instance pgdown": False, "datadog": False, "state_dir": True}
    assert sections["instance bad"]["problems"] == [bad] and sections["datadog"]["problems"] == [datadog]
    assert sections["instance good"]["problems"] == [] and sections["instance good"]["notes"]
    assert "3 problem(s) found" in err
    leaks = [s for s in FORBIDDEN if s in out + err]
    assert not leaks, leaks


def test_warnings_are_listed_apart_and_leave_ok_true(duckdb_warehouse, tmp_path, capsys) -> None:
    """A labels table of clicks only, read without missing_label: negative: a warning (without the WARNING word)
    in warnings, not in notes nor problems; ok true and exit 0, as in the text format."""
    now = time.time()
    last = (now - HOUR) // HOUR * HOUR  # the end of the latest matured hour
    rng = np.random.default_rng(2)
    predictions = [(f"r{i}", utc(last - HOUR + i * 9), "ctr", "v1", float(rng.uniform(0.01, 0.2)))
                   for i in range(300)]
    write_table(duckdb_warehouse, "predictions", PREDICTION_COLUMNS, predictions)
    write_table(duckdb_warehouse, "labels", LABEL_COLUMNS, [(rid, 1, utc(last + 60)) for rid, *_ in predictions[::10]])
    cfg = write_config(tmp_path, [{"name": "ads", "warehouse": duckdb_warehouse.config()}], transport="jsonl")
    assert main(["check", "--config", str(cfg), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["problems"] == []
    [warning] = doc["warnings"]
    assert warning.startswith("instance ads: model ctr version v1") and "missing_label: negative" in warning
    assert doc["sections"][0]["warnings"] == [warning]
    assert not [n for n in doc["notes"] if "WARNING" in n or "missing_label" in n]


def test_a_secret_a_check_lets_slip_is_scrubbed_in_json_and_text(tmp_path, capfd, monkeypatch) -> None:
    """Whatever a check says or reports, the printed output hides the config's passwords and any URL's
    user:password@ (the engines scrub their own messages; the command scrubs what it prints, too)."""
    port = closed_port()
    url = pg_url(port)

    def leaky(config: Any, say: Any) -> list[str]:
        say(f"state_dir: planted {url} and {PASSWORD}")
        return [f"state_dir: planted problem {PASSWORD} at {url}"]

    monkeypatch.setattr(mlmon.preflight, "check_state_dir", leaky)
    cfg = write_config(tmp_path, [{"name": "pgdown", "warehouse": {"engine": "postgres", "url": url}}],
                       transport="jsonl")
    assert main(["check", "--config", str(cfg), "--format", "json"]) == 1
    out, err = capfd.readouterr()
    doc = json.loads(out)
    # the configured URL is a secret as a whole, as in the log
    assert doc["sections"][-1]["notes"] == ["state_dir: planted *** and ***"]
    assert doc["sections"][-1]["problems"] == ["state_dir: planted problem *** at ***"]
    assert main(["check", "--config", str(cfg)]) == 1
    text, text_err = capfd.readouterr()
    assert "state_dir: planted *** and ***\n" in text and "PROBLEM state_dir: planted problem *** at ***\n" in text
    leaks = [s for s in FORBIDDEN if s in out + err + text + text_err]
    assert not leaks, leaks
