"""``mlmon check`` on a real DuckDB file and PostgreSQL: column types against the data contract, and the
warning about matured hours whose labels are all of one class."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import yaml
from tests.helpers import utc
from tests.scenarios import HOUR, PREDICTION_COLUMNS
from tests.tables import write_table
from tests.test_label_values import A, run, table_names

from mlmon.cli import main
from mlmon.config import parse_config
from mlmon.preflight import check_instance
from mlmon.times import iso

LABEL_COLUMNS = (("request_id", "text"), ("label", "integer"), ("label_ts", "timestamp"))
#: how each engine names the types of tests.tables, as mlmon check prints them
TYPE_NAMES = {
    "duckdb": {"text": "VARCHAR", "integer": "INTEGER", "bigint": "BIGINT", "date": "DATE", "timestamp": "TIMESTAMP"},
    "postgres": {"text": "TEXT", "integer": "INT4", "bigint": "INT8", "date": "DATE", "timestamp": "TIMESTAMP"},
}


def check(warehouse: Any, now: float = A, **instance: Any) -> tuple[list[str], list[str]]:
    """Problems and printed lines of ``mlmon check`` for one instance with the smallest config."""
    tables = table_names(warehouse, predictions="predictions", labels="labels")
    config = parse_config({"instances": [{"name": "ads", "warehouse": warehouse.config(),
                                          **({"tables": tables} if tables else {}), **instance}]})
    lines: list[str] = []
    return check_instance(config.instances[0], lines.append, now=now), lines


def retyped(columns: tuple[tuple[str, str], ...], **types: str) -> list[tuple[str, str]]:
    return [(name, types.get(name, kind)) for name, kind in columns]


@pytest.mark.parametrize(
    ("table", "column", "kind", "expected"),
    [
        ("labels", "label", "date", "INTEGER, BOOLEAN or text 0/1"),
        ("labels", "label", "timestamp", "INTEGER, BOOLEAN or text 0/1"),
        ("labels", "label_ts", "text", "TIMESTAMP"),
        ("predictions", "prediction", "text", "DOUBLE (or another number type)"),
        ("predictions", "ts", "date", "TIMESTAMP"),
        ("predictions", "model", "integer", "text"),
    ],
    ids=["label-date", "label-timestamp", "label_ts-text", "prediction-text", "ts-date", "model-integer"],
)
def test_check_names_table_column_and_type_that_do_not_fit(warehouse, table, column, kind, expected) -> None:
    """A column of the wrong type is a problem naming the table, the column, its type and what fits."""
    columns = {"predictions": PREDICTION_COLUMNS, "labels": LABEL_COLUMNS}
    for name, cols in columns.items():
        write_table(warehouse, name, retyped(cols, **({column: kind} if name == table else {})), [])
    problems, _ = check(warehouse)
    type_name = TYPE_NAMES[warehouse.engine][kind]
    assert problems == [f"instance ads, table {warehouse.table(table)} (job(s) "
                        f"{'quality' if table == 'labels' else 'predictions, quality, reproducibility'}): "
                        f"{warehouse.table(table)}.{column} is {type_name}; expected {expected}"]


def test_check_names_a_renamed_column_by_its_own_name(duckdb_warehouse) -> None:
    """With ``columns:`` renames, the message names the warehouse's column."""
    write_table(duckdb_warehouse, "predictions", PREDICTION_COLUMNS, [])
    write_table(duckdb_warehouse, "clicks", (("request_id", "text"), ("clicked", "date"), ("at", "timestamp")), [])
    problems, _ = check(duckdb_warehouse, tables={"labels": "clicks"},
                        columns={"labels": {"label": "clicked", "label_ts": "at"}})
    assert problems == ["instance ads, table clicks (job(s) quality): clicks.clicked is DATE; expected INTEGER, "
                        "BOOLEAN or text 0/1"]


def test_check_names_request_ids_of_different_types(warehouse) -> None:
    """BIGINT ids in labels against text ids in predictions cannot join: a problem naming both."""
    write_table(warehouse, "predictions", PREDICTION_COLUMNS, [])
    write_table(warehouse, "labels", retyped(LABEL_COLUMNS, request_id="bigint"), [])
    problems, _ = check(warehouse)
    names = TYPE_NAMES[warehouse.engine]
    assert problems == [f"instance ads, table {warehouse.table('labels')} (job(s) quality): "
                        f"{warehouse.table('labels')}.request_id is {names['bigint']} but "
                        f"{warehouse.table('predictions')}.request_id is {names['text']}; the join on request_id "
                        "needs the same kind of type in both (text, a number or UUID)"]


@pytest.mark.parametrize("label", ["boolean", "text", "double", "bigint"])
def test_check_accepts_what_the_statements_read(warehouse, label) -> None:
    """Integer ids and versions, TIMESTAMPTZ, and labels of every accepted type pass, each table confirmed."""
    write_table(warehouse, "predictions", retyped(PREDICTION_COLUMNS, request_id="bigint", model_version="integer",
                                                  ts="timestamptz"), [])
    write_table(warehouse, "labels", retyped(LABEL_COLUMNS, request_id="bigint", label=label), [])
    problems, lines = check(warehouse)
    assert problems == []
    for table in ("predictions", "labels"):
        assert any(f"table {warehouse.table(table)} has the columns" in line for line in lines), lines


def test_integer_ids_and_versions_run(warehouse, tmp_path, monkeypatch) -> None:
    """What check accepts runs: BIGINT request ids and an INTEGER model_version (tagged as its text)."""
    monkeypatch.chdir(tmp_path)
    write_table(warehouse, "predictions", retyped(PREDICTION_COLUMNS, request_id="bigint", model_version="integer"),
                [(i, utc(A + i), "ctr", 3, 0.1 * (i % 10)) for i in range(40)])
    write_table(warehouse, "labels", retyped(LABEL_COLUMNS, request_id="bigint", label="boolean"),
                [(i, i % 3 == 0, utc(A + 100)) for i in range(40)])
    out = run(warehouse, {"name": "ads", "tables": table_names(warehouse, predictions="predictions",
                                                               labels="labels")}, [A + 2 * HOUR])
    assert out[("labeled_count", "ctr", "3", A + HOUR)] == 40
    assert out[("positive_rate", "ctr", "3", A + HOUR)] == pytest.approx(14 / 40)


# --------------------------------------------------------------------------------------------------
# One class against the odds

#: the check's clock: its latest matured windows are the three hours from A (not on an hour boundary)
NOW = A + 4 * HOUR + 1234


def write_clicks(warehouse: Any, join: bool = True) -> None:
    """Three hours of a 20 % CTR model and its clicks only (``join=False``: the clicks' ids never match),
    and a quiet model with a few low scores and no click in the last hour."""
    rng = np.random.default_rng(8)
    predictions, clicks = [], []
    for i in range(600):
        start = A + (i // 200) * HOUR
        p = float(1 / (1 + np.exp(-rng.normal(-1.5, 1.0))))
        predictions.append((f"r{i}", utc(start + (i * 17.0) % HOUR), "ctr", "v1", p))
        if rng.random() < p:
            clicks.append((f"r{i}" if join else f"click-{i}", 1, utc(start + HOUR + 60)))
    predictions += [(f"q{i}", utc(A + 2 * HOUR + 60 * i), "quiet", "v1", 0.01) for i in range(5)]
    write_table(warehouse, "predictions", PREDICTION_COLUMNS, predictions)
    write_table(warehouse, "labels", LABEL_COLUMNS, clicks)


def warnings(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("WARNING")]


def test_check_warns_about_clicks_read_without_missing_label_negative(warehouse) -> None:
    """All positive against the model's own odds: a warning (not a problem) naming the instance, the model,
    the latest such window and the setting to use; the quiet model is not named."""
    write_clicks(warehouse)
    problems, lines = check(warehouse, now=NOW)
    assert problems == []
    [warning] = warnings(lines)
    assert warning.startswith(f"WARNING instance ads: model ctr version v1, window {iso(A + 2 * HOUR)} to "
                              f"{iso(A + 3 * HOUR)}: every labeled prediction is positive (")
    assert ": positive_rate 1.0, mean_prediction 0." in warning
    assert warning.endswith("): a labels table that holds only the positives (clicks) needs jobs -> quality -> "
                            "missing_label: negative")


def test_check_does_not_warn_with_missing_label_negative(warehouse) -> None:
    """The same clicks with missing_label: negative: no warning, nor for the quiet model's hour without a
    click (a 1 % model with no click in 5 predictions is plausible)."""
    write_clicks(warehouse)
    problems, lines = check(warehouse, now=NOW, jobs={"quality": {"missing_label": "negative"}})
    assert problems == [] and warnings(lines) == []


def test_check_warns_when_no_label_joins_under_missing_label_negative(warehouse) -> None:
    """Clicks whose ids match no prediction make every prediction a negative: a warning pointing at request_id."""
    write_clicks(warehouse, join=False)
    problems, lines = check(warehouse, now=NOW, jobs={"quality": {"missing_label": "negative"}})
    assert problems == []
    [warning] = warnings(lines)
    assert "model ctr" in warning and "every labeled prediction is negative (0 of 200: positive_rate 0.0" in warning
    assert f"check that {warehouse.table('labels')}.request_id matches" in warning


def test_check_command_prints_the_warning_and_exits_0(duckdb_warehouse, tmp_path, capsys) -> None:
    """Through the command line, at the real time: the warning is printed, and the exit code stays 0."""
    now = time.time()
    last = (now - HOUR) // HOUR * HOUR  # the end of the latest matured hour
    rng = np.random.default_rng(2)
    predictions = [(f"r{i}", utc(last - HOUR + i * 9), "ctr", "v1", float(rng.uniform(0.01, 0.2)))
                   for i in range(300)]
    write_table(duckdb_warehouse, "predictions", PREDICTION_COLUMNS, predictions)
    write_table(duckdb_warehouse, "labels", LABEL_COLUMNS,
                [(rid, 1, utc(last + 60)) for rid, *_ in predictions[::10]])
    cfg = tmp_path / "conf.yaml"
    cfg.write_text(yaml.safe_dump({"init_config": {"datadog": {"transport": "jsonl"}},
                                   "instances": [{"name": "ads", "warehouse": duckdb_warehouse.config()}]}))
    assert main(["check", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "WARNING instance ads: model ctr version v1" in out and "missing_label: negative" in out
    assert "PROBLEM" not in out
    assert out.rstrip().endswith("all checks passed, with 1 warning(s) above")


REPLAY_COLUMNS = (("request_id", "text"), ("model_version", "text"), ("prediction", "double"))


@pytest.mark.parametrize("with_ts", [False, True])
def test_check_says_whether_the_replays_scan_is_bounded(warehouse, with_ts) -> None:
    """Without replays.ts every reproducibility run reads the whole table: a warning (not a problem); with
    it, check says each run reads only its windows' replays."""
    write_table(warehouse, "predictions", PREDICTION_COLUMNS, [])
    write_table(warehouse, "replays", (*REPLAY_COLUMNS, *((("ts", "timestamp"),) if with_ts else ())), [])
    tables = {"predictions": warehouse.table("predictions"), "replays": warehouse.table("replays"),
              "labels": None, "training_runs": None, "training_features": None}
    config = parse_config({"instances": [{"name": "ads", "warehouse": warehouse.config(), "tables": tables}]})
    lines: list[str] = []
    assert check_instance(config.instances[0], lines.append, now=A) == []
    warnings = [line for line in lines if line.startswith("WARNING")]
    if with_ts:
        assert not warnings
        assert f"instance ads: table {warehouse.table('replays')} has column ts: each run reads only the replays " \
               "of its windows" in lines
    else:
        assert warnings == [f"WARNING instance ads: table {warehouse.table('replays')} has no column ts (when the "
                            "replayed request was served), so every reproducibility run reads the whole table, "
                            "whatever its windows; add one, or name yours with columns: {replays: {ts: <column>}}"]


def test_check_names_a_missing_or_mistyped_replay_time_and_partition_column(duckdb_warehouse) -> None:
    """columns: {replays: {ts: served_at}} naming a missing column, and a partitions: column that is missing or
    not a date: problems naming the setting."""
    write_table(duckdb_warehouse, "predictions", (*PREDICTION_COLUMNS, ("dt", "timestamp")), [])
    write_table(duckdb_warehouse, "labels", LABEL_COLUMNS, [])
    write_table(duckdb_warehouse, "replays", REPLAY_COLUMNS, [])
    config = parse_config({"instances": [{
        "name": "ads", "warehouse": duckdb_warehouse.config(), "columns": {"replays": {"ts": "served_at"}},
        "partitions": {"predictions": "dt", "labels": "day"},
        "tables": {"training_runs": None, "training_features": None},
    }]})
    lines: list[str] = []
    problems = [p.splitlines()[0] for p in check_instance(config.instances[0], lines.append, now=A)]
    engine = f"duckdb file {duckdb_warehouse.path}: Binder Error"
    assert problems == [
        f'instance ads, partitions -> labels (labels.day): {engine}: Table "src" does not have a column named "day"',
        "instance ads, partitions -> predictions (predictions.dt): the column is TIMESTAMP; expected DATE or "
        "'YYYY-MM-DD' text",
        # the quality job's own check runs its statement, which reads the partition column too
        f'instance ads, tables predictions, labels (job quality): {engine}: Table "lab" does not have a column '
        'named "day"',
        f"instance ads, table replays (job reproducibility): columns -> replays -> ts names served_at: {engine}: "
        'Table "src" does not have a column named "served_at"',
    ]
