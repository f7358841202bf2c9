"""Labels as warehouses hold them: positives only (``missing_label: negative``) and INTEGER, BOOLEAN, DOUBLE or
text values, on a real DuckDB file and PostgreSQL, against scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlglot
from tests.helpers import utc
from tests.reference import label_of, online_quality_reference
from tests.scenarios import HOUR, PREDICTION_COLUMNS
from tests.tables import write_table

from mlmon.config import ConfigError, parse_config
from mlmon.runner import Agent
from mlmon.testing import RecordingSink
from mlmon.warehouse.quality import build_quality_query
from mlmon.warehouse.sql import DIALECTS, render

#: an hour boundary: at A + 2 h the window [A, A + 1 h) has matured (default label_delay 1 h) and is the
#: one a first run with the default initial_lookback processes
A = 1_800_000_000.0
NAN = float("nan")


def table_names(warehouse: Any, **tables: str) -> dict[str, str]:
    """``tables:`` as a user writes it: only the names that differ from the defaults."""
    return {role: warehouse.table(name) for role, name in tables.items() if warehouse.table(name) != role}


def run(warehouse: Any, instance: dict[str, Any], nows: list[float]) -> dict[tuple[str, str, str, float], float]:
    """The agent at each of ``nows`` in turn (one state, as an hourly cron would):
    ``(metric, model, version, timestamp) -> value`` of the ``mlmon.online.*`` points."""
    config = parse_config({"instances": [{"warehouse": warehouse.config(), **instance}]})
    sink = RecordingSink()
    for now in nows:
        reports = {r.job: r for r in Agent(config, sink, clock=lambda now=now: now).run_once()}
        assert reports["quality"].errors == 0, reports["quality"].messages
    out: dict[tuple[str, str, str, float], float] = {}
    for s in sink.samples:
        if s.name.startswith("mlmon.online."):
            tags = dict(t.split(":", 1) for t in s.tags)
            key = (s.name.removeprefix("mlmon.online."), tags["model"], tags.get("model_version", ""), s.timestamp)
            assert key not in out, key
            out[key] = s.value
    return out


def window_values(out: dict[tuple[str, str, str, float], float], model: str, end: float) -> dict[str, float]:
    return {name: v for (name, m, _, ts), v in out.items() if m == model and ts == end}


# --------------------------------------------------------------------------------------------------
# A labels table of clicks only


class Clicks:
    """Predictions, a BOOLEAN clicks table (positives only) and the equivalent full 0/1 INTEGER labels table;
    per (model, window end) the predictions and each request's label under ``missing_label: negative``."""

    def __init__(self, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        self.predictions: list[tuple[Any, ...]] = []
        self.clicks: list[tuple[Any, ...]] = []
        self.labels: list[tuple[Any, ...]] = []
        self.windows: dict[tuple[str, float], list[tuple[float, float | str | None]]] = {}
        a, b, c = A, A + HOUR, A + 2 * HOUR  # A: everything; B: every prediction clicked; C: no click at all
        for k in range(400):
            p = float(np.round(1 / (1 + np.exp(-rng.normal(-1.5, 1.2))), 2))  # rounded: ties
            y = bool(rng.random() < p)
            kind = k % 8
            if kind == 2:  # a click after maturity: not counted, so a negative; the full table wrote its 0 first
                self.add("ctr", a, p, [(True, a + 2 * HOUR + 60)], [(0, a + 30), (1, a + 2 * HOUR + 60)])
            elif kind == 3 and k % 16 == 3:  # a click exactly at the cutoff: strictly before counts
                self.add("ctr", a, p, [(True, a + 2 * HOUR)], [(0, a + 30), (1, a + 2 * HOUR)])
            elif kind == 4 and k % 16 == 4:  # a NULL label row: an invalid label either way
                self.add("ctr", a, p, [(None, a + 100)], [(None, a + 100)])
            elif kind == 5 and y:  # clicked twice; the full table has its 0 and then the 1
                self.add("ctr", a, p, [(True, a + 10), (True, a + 20)], [(0, a + 5), (1, a + 20)])
            elif kind == 6 and y:  # an undated click never counts: a negative; the full table has its 0 too
                self.add("ctr", a, p, [(True, None)], [(0, a + 30), (1, None)])
            elif kind == 6:  # a click stamped more than label_skew before its window does not count either
                self.add("ctr", a, p, [(True, a - HOUR - 1)], [(0, a + 30), (1, a - HOUR - 1)])
            else:
                self.add("ctr", a, p, [(True, a + 60)] if y else [], [(int(y), a + 60)])
        for bad in (NAN, 1.5, -0.2, None):  # invalid predictions, clicked or not
            self.add("ctr", a, bad, [(True, a + 5)], [(1, a + 5)])
            self.add("ctr", a, bad, [], [(0, a + 5)])
        for _ in range(120):
            p = float(rng.uniform(0.0, 1.0))
            y = bool(rng.random() < p)
            self.add("cvr", a, p, [(True, a + 120)] if y else [], [(int(y), a + 120)])
        for _ in range(30):
            self.add("ctr", b, float(rng.uniform(0.02, 0.3)), [(True, b + 60)], [(1, b + 60)])
        for _ in range(25):
            self.add("ctr", c, float(rng.uniform(0.02, 0.3)), [], [(0, c + 60)])
        # and A + 3 h holds no prediction at all

    def add(self, model: str, start: float, p: float | None, clicks: list[tuple[bool | None, float | None]],
            labels: list[tuple[int | None, float | None]]) -> None:
        rid = f"r{len(self.predictions)}"
        self.predictions.append((rid, utc(start + (len(self.predictions) * 7.3) % HOUR), model, "v1", p))
        self.clicks += [(rid, v, None if ts is None else utc(ts)) for v, ts in clicks]
        self.labels += [(rid, v, None if ts is None else utc(ts)) for v, ts in labels]
        cutoff = start + 2 * HOUR
        since = start - HOUR  # label_skew's default
        resolved = label_of([(None if v is None else int(v), ts) for v, ts in clicks], cutoff, since)
        negative = 0.0 if resolved is None else resolved
        assert label_of(labels, cutoff, since) == negative, (clicks, labels)  # the two tables say the same
        self.windows.setdefault((model, start + HOUR), []).append((NAN if p is None else p, negative))

    def write(self, warehouse: Any) -> None:
        write_table(warehouse, "predictions", PREDICTION_COLUMNS, self.predictions)
        write_table(warehouse, "clicks", (("request_id", "text"), ("clicked", "boolean"), ("clicked_at", "timestamp")),
                    self.clicks)
        write_table(warehouse, "labels", (("request_id", "text"), ("label", "integer"), ("label_ts", "timestamp")),
                    self.labels)


#: four hourly runs: windows A, B, C and the empty one after them, each once matured
NOWS = [A + 2 * HOUR, A + 3 * HOUR, A + 4 * HOUR, A + 5 * HOUR]


@pytest.fixture
def clicks_runs(warehouse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default state_dir, .mlmon/state
    data = Clicks()
    data.write(warehouse)
    clicks = run(warehouse, {
        "name": "clicks",
        "tables": {"predictions": warehouse.table("predictions"), "labels": warehouse.table("clicks")},
        "columns": {"labels": {"label": "clicked", "label_ts": "clicked_at"}},
        "jobs": {"quality": {"missing_label": "negative"}},
    }, NOWS)
    full = run(warehouse, {"name": "full", "tables": table_names(warehouse, predictions="predictions",
                                                                 labels="labels")}, NOWS)
    return data, clicks, full


def test_clicks_with_missing_label_negative_equal_the_full_labels_table(clicks_runs) -> None:
    """Positives-only BOOLEAN clicks with missing_label: negative send every point a full 0/1 INTEGER table
    sends, with the same values."""
    _, clicks, full = clicks_runs
    assert clicks.keys() == full.keys()
    for key, value in full.items():
        assert clicks[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_clicks_with_missing_label_negative_match_sklearn(clicks_runs) -> None:
    """Every window (ties, invalid predictions, late and NULL clicks, all-positive, no click, none at all)
    as scikit-learn on the labels the rule gives: unmatched predictions are negatives."""
    data, clicks, _ = clicks_runs
    for (model, end), rows in data.windows.items():
        want = online_quality_reference([p for p, _ in rows], [y for _, y in rows])
        got = window_values(clicks, model, end)
        assert got.keys() == want.keys(), (model, end)
        for name, value in want.items():
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (model, end, name)
    assert not any(ts == A + 4 * HOUR for *_, ts in clicks)  # the empty hour sends nothing


def test_coverage_and_invalid_labels_under_missing_label_negative(clicks_runs) -> None:
    """Coverage counts the implied negatives (1 less the invalid-label share); a NULL click stays invalid;
    the hour with no click is one class, positive_rate 0.0, and sends no AUC."""
    _, clicks, _ = clicks_runs
    window_a = window_values(clicks, "ctr", A + HOUR)
    assert window_a["invalid_label_count"] == 25 and window_a["invalid_prediction_count"] == 8
    assert window_a["label_coverage"] == pytest.approx(1 - 25 / 400, rel=1e-12)
    assert 0 < window_a["positive_rate"] < 0.5 and "auc" in window_a
    assert window_values(clicks, "ctr", A + 2 * HOUR)["positive_rate"] == 1.0
    window_c = window_values(clicks, "ctr", A + 3 * HOUR)
    assert window_c["positive_rate"] == 0.0 and window_c["label_coverage"] == 1.0 and "auc" not in window_c


def test_clicks_without_missing_label_negative_are_all_positive(warehouse, tmp_path, monkeypatch) -> None:
    """The default (skip) leaves unmatched predictions out: a clicks table then reads positive_rate 1.0."""
    monkeypatch.chdir(tmp_path)
    data = Clicks()
    data.write(warehouse)
    out = run(warehouse, {"name": "clicks", "tables": {"predictions": warehouse.table("predictions"),
                                                       "labels": warehouse.table("clicks")},
                          "columns": {"labels": {"label": "clicked", "label_ts": "clicked_at"}}}, NOWS[:1])
    window_a = window_values(out, "ctr", A + HOUR)
    assert window_a["positive_rate"] == 1.0 and "auc" not in window_a
    assert window_a["label_coverage"] < 0.5


# --------------------------------------------------------------------------------------------------
# Label column types

#: how each column type writes the logical labels 1, 0 and "bad" (not a label); None is NULL everywhere
LABEL_TYPES: dict[str, tuple[str, dict[Any, list[Any]]]] = {
    "integer": ("integer", {1: [1], 0: [0], "bad": [2, -1]}),
    "boolean": ("boolean", {1: [True], 0: [False], "bad": [None]}),
    "double": ("double", {1: [1.0], 0: [0.0], "bad": [0.5, NAN, 2.0]}),
    "text-01": ("text", {1: ["1"], 0: ["0"], "bad": ["x", "2", "", "yes", " 1"]}),
    "text-true-false": ("text", {1: ["true", "True", "TRUE"], 0: ["false", "False"], "bad": ["x", "t"]}),
}


def label_rows(seed: int = 5) -> tuple[list[tuple[Any, ...]], list[tuple[str, Any, float | None]],
                                       dict[tuple[str, float], list[tuple[float, list[Any]]]]]:
    """Predictions in hour A (ties, invalid ones, a second model) and their label rows in logical values."""
    rng = np.random.default_rng(seed)
    predictions: list[tuple[Any, ...]] = []
    labels: list[tuple[str, Any, float | None]] = []
    windows: dict[tuple[str, float], list[tuple[float, list[Any]]]] = {}
    cases = [*(["ctr"] * 300), *(["cvr"] * 80)]
    for i, model in enumerate(cases):
        p: float | None = float(np.round(rng.beta(1.5, 6.0), 2))
        if i % 97 == 0:
            p = [NAN, 1.5, None, -0.1][i // 97 % 4]
        y = int(rng.random() < (p if isinstance(p, float) and 0 <= p <= 1 else 0.5))
        kind = i % 9
        rows: list[tuple[Any, float | None]] = [(y, A + 60)]
        if kind == 1:
            rows = [("bad", A + 30)]  # only an invalid value: an invalid label
        elif kind == 2:
            rows = [("bad", A + 30), (y, A + 40)]  # an invalid value beside a valid one: the valid one
        elif kind == 3:
            rows = [(0, A + 10), (1, A + 20)]  # several rows: positive if any is 1
        elif kind == 4:
            rows = []  # no label: unlabeled
        elif kind == 5:
            rows = [(y, A + 2 * HOUR + 5)]  # after maturity: unlabeled
        elif kind == 6 and i % 18 == 6:
            rows = [(None, A + 50)]  # NULL: an invalid label
        rid = f"q{i}"
        predictions.append((rid, utc(A + (i * 11.1) % HOUR), model, "v3", p))
        labels += [(rid, lab, ts) for lab, ts in rows]
        windows.setdefault((model, A + HOUR), []).append((NAN if p is None else p, rows))
    return predictions, labels, windows


def encode(labels: list[tuple[str, Any, float | None]], spellings: dict[Any, list[Any]]) -> list[tuple[Any, ...]]:
    """Label rows in one column type, cycling through its spellings of each logical value."""
    out = []
    for i, (rid, lab, ts) in enumerate(labels):
        value = None if lab is None else spellings[lab][i % len(spellings[lab])]
        out.append((rid, value, None if ts is None else utc(ts)))
    return out


def reference_label(rows: list[tuple[Any, float | None]]) -> float | str | None:
    """The rule on logical values: "bad" and NULL are not 0/1 (mapped to a value label_of rejects)."""
    return label_of([(-1 if lab in ("bad", None) else lab, ts) for lab, ts in rows], A + 2 * HOUR, A - HOUR)


@pytest.mark.parametrize("label_type", list(LABEL_TYPES))
def test_label_types_give_the_numbers_of_sklearn(warehouse, tmp_path, monkeypatch, label_type) -> None:
    """INTEGER, BOOLEAN, DOUBLE and text labels ('0'/'1', 'true'/'false', any case, invalid values among
    them) read as the same 0/1/invalid labels: every window as scikit-learn."""
    monkeypatch.chdir(tmp_path)
    column_type, spellings = LABEL_TYPES[label_type]
    predictions, labels, windows = label_rows()
    write_table(warehouse, "predictions", PREDICTION_COLUMNS, predictions)
    write_table(warehouse, "labels", (("request_id", "text"), ("label", column_type), ("label_ts", "timestamp")),
                encode(labels, spellings))
    out = run(warehouse, {"name": "ads", "tables": table_names(warehouse, predictions="predictions",
                                                               labels="labels")}, NOWS[:1])
    for (model, end), rows in windows.items():
        want = online_quality_reference([p for p, _ in rows], [reference_label(r) for _, r in rows])
        got = window_values(out, model, end)
        assert got.keys() == want.keys(), model
        for name, value in want.items():
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (model, name)
    assert window_values(out, "ctr", A + HOUR)["invalid_label_count"] > 0


# --------------------------------------------------------------------------------------------------
# Config and statement


def test_missing_label_must_be_skip_or_negative() -> None:
    """A bad value is a config error naming the path and the two choices."""
    with pytest.raises(ConfigError, match=r"instances -> 0 -> jobs -> quality -> missing_label: .*'skip' or "
                                          r"'negative'"):
        parse_config({"instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": "w.duckdb"},
                                     "jobs": {"quality": {"missing_label": "zero"}}}]})


@pytest.mark.parametrize("dialect", DIALECTS)
def test_missing_label_is_a_bound_value_not_statement_text(dialect) -> None:
    """skip and negative render the same SQL text, with a placeholder for the choice."""
    def quality_sql(missing_label: str) -> str:
        config = parse_config({"instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": "w.duckdb"},
                                              "jobs": {"quality": {"missing_label": missing_label}}}]})
        return render(build_quality_query(config.instances[0]), dialect)

    sql = quality_sql("negative")
    assert sql == quality_sql("skip") and "missing_negative" in sql
    sqlglot.parse_one(sql, read=dialect)
