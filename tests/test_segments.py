"""Segments (``segment_by``, issue 18): the ``mlmon.segment.*`` metrics of the predictions and quality jobs against
pandas/NumPy/scikit-learn on each slice of the raw rows, on DuckDB and PostgreSQL; the unsegmented metrics left
as they were; rows fetched bounded; the ``segment_max_values`` cap; the daily choice kept in the job state; every
dialect; ``mlmon plan``.

The data is generated relative to ``NOW``, the real clock at import (``MLMON_SEGMENTS_NOW`` to replay a time that
failed): the windows may fall on either side of a UTC midnight, and the reference takes each window's choice from
the UTC day before that window's own day, as the agent must.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from tests.helpers import DuckDBWarehouse, PostgresWarehouse, Warehouse, postgres_schema
from tests.reference import label_of, online_quality_reference
from tests.tables import write_table

import mlmon.jobs.segments
from mlmon.config import parse_config
from mlmon.jobs.quality import SEGMENT_METRICS as QUALITY_SEGMENT_METRICS
from mlmon.jobs.quality import SEGMENT_QUALITY
from mlmon.plan import plan_config
from mlmon.runner import Agent
from mlmon.samples import CheckStatus
from mlmon.testing import RecordingSink
from mlmon.warehouse.predictions import build_query
from mlmon.warehouse.quality import build_quality_query
from mlmon.warehouse.segments import DayChoice, SegmentPlan
from mlmon.warehouse.sql import DIALECTS, render

DAY = 86400.0
HOUR = 3600.0
PRED_WIDTH = 600.0  # the predictions job's window (default), lateness 5 min
LATENESS = 300.0
Q_WIDTH = 3600.0  # the quality job's window (default), label_delay 1 h, label_skew 1 h
LABEL_DELAY = 3600.0
LABEL_SKEW = 3600.0
TOP_K = 3
MIN_LABELED = 200  # jobs.quality.segment_min_labeled, set (the default, 1000, is more than these slices hold)

NOW = float(os.environ.get("MLMON_SEGMENTS_NOW") or round(time.time(), 3))

#: each model's placement shares (None: NULL); with top_k 3 ctr keeps feed, search, article and cvr video, feed,
#: article, the rest is __other__
SHARES: dict[str, dict[str | None, float]] = {
    "ctr": {"feed": .35, "search": .20, "article": .15, "video": .10, "sidebar": .07, "footer": .05, "popup": .02,
            "inbox": .02, None: .04},
    "cvr": {"video": .35, "feed": .25, "article": .15, "search": .08, "sidebar": .06, "footer": .05, None: .06},
}
#: a UTC day in which the placements are reordered (test_choice_is_kept_for_the_day_and_redone_the_next)
REORDERED: dict[str, dict[str | None, float]] = {
    "ctr": {"video": .40, "sidebar": .25, "footer": .20, "feed": .05, "search": .04, "article": .03, None: .03},
    "cvr": {"search": .40, "sidebar": .25, "footer": .20, "video": .05, "feed": .04, "article": .03, None: .03},
}
#: cycled per (model, UTC day), each group trimmed to a multiple of 4: a four-way tie in every day, broken by the
#: value's text (android, ios, tv kept; web __other__), not by order of appearance (web first) nor reversed
DEVICES = ("web", "tv", "ios", "android")
#: distinct values of the ``bucket`` column: over segment_max_values 20 for cvr only
BUCKETS = {"ctr": 5, "cvr": 50}
VERSIONS = {"ctr": ("v1", "v2"), "cvr": ("v9",)}
OTHER, NULL = "__other__", "__null__"


# --- the data -----------------------------------------------------------------------------------------------


def day_of(t: float) -> float:
    return math.floor(t / DAY) * DAY


@dataclasses.dataclass
class Data:
    """The prediction log (``preds``: one row per logged prediction, ``ts`` in Unix seconds, ``p`` NaN for NULL
    and NaN alike, ``p_sql`` what is stored: a float, ``nan``/``inf`` or None for NULL) and the label rows."""

    preds: pd.DataFrame
    labels: pd.DataFrame

    def label_rows(self) -> dict[str, list[tuple[int, float | None]]]:
        out: dict[str, list[tuple[int, float | None]]] = defaultdict(list)
        for rid, label, ts in zip(self.labels.request_id, self.labels.label, self.labels.label_ts, strict=True):
            out[rid].append((int(label), None if pd.isna(ts) else float(ts)))
        return out

    def repeated(self, times: int) -> Data:
        """Every prediction and label row logged ``times`` times (same slices, same choice)."""
        return Data(pd.concat([self.preds] * times, ignore_index=True),
                    pd.concat([self.labels] * times, ignore_index=True))


def _pieces(rng: np.random.Generator, model: str, start: float, end: float, rate: float,
            shares: dict[str | None, float]) -> pd.DataFrame:
    n = int(rng.poisson(rate * (end - start) / HOUR))
    ts = np.sort(np.round(rng.uniform(start, end, n), 3))
    names = list(shares)
    weights = np.asarray([shares[k] for k in names])
    placement = np.asarray(names, dtype=object)[rng.choice(len(names), n, p=weights / weights.sum())]
    return pd.DataFrame({"ts": ts, "model": model, "placement": placement})


def generate(now: float, seed: int = 18, dense_rate: float = 1500.0, sparse_rate: float = 120.0,
             dense_hours: float = 6.0, days: Sequence[tuple[float, float, dict[str, dict[str | None, float]]]] = (),
             gaps: Sequence[tuple[str, str, float, float]] = ()) -> Data:
    """Sparse traffic from the UTC day before the day of ``now - dense_hours`` (the previous day of every
    window's day) and dense traffic over the last ``dense_hours``; ``days`` instead: (start, end, shares)
    stretches at ``sparse_rate``. ``gaps``: (model, placement, start, end) with no such rows."""
    rng = np.random.default_rng(seed)
    frames = []
    for model in SHARES:
        if days:
            for start, end, shares in days:
                frames.append(_pieces(rng, model, start, end, sparse_rate, shares[model]))
        else:
            dense_start = now - dense_hours * HOUR
            frames.append(_pieces(rng, model, day_of(dense_start) - DAY, dense_start, sparse_rate, SHARES[model]))
            frames.append(_pieces(rng, model, dense_start, now, dense_rate, SHARES[model]))
    preds = pd.concat(frames, ignore_index=True).sort_values(["model", "ts"], kind="stable", ignore_index=True)
    for model, placement, start, end in gaps:
        preds = preds[~((preds.model == model) & (preds.placement == placement) & (preds.ts >= start)
                        & (preds.ts < end))]
    # the device tie: cycled per (model, UTC day), each group a multiple of 4 rows
    preds = preds.assign(day=np.floor(preds.ts / DAY)).reset_index(drop=True)
    rank = preds.groupby(["model", "day"]).cumcount().to_numpy()
    size = preds.groupby(["model", "day"]).ts.transform("size").to_numpy()
    preds = preds[rank < size - size % 4].reset_index(drop=True)
    rank = preds.groupby(["model", "day"]).cumcount().to_numpy()
    preds["device"] = np.asarray(DEVICES, dtype=object)[rank % 4]
    n = len(preds)
    is_ctr = (preds.model == "ctr").to_numpy()
    preds["request_id"] = [f"r{i:07d}" for i in range(n)]
    preds["model_version"] = np.where(is_ctr, np.where(rng.random(n) < 0.5, "v1", "v2"), "v9")
    preds["bucket"] = [f"b{int(u * BUCKETS[m]):02d}" for u, m in zip(rng.random(n), preds.model, strict=True)]
    # ties: ctr to 4 decimals, cvr to 2 (many equal scores: the AUC's half-counted ties, the modal count)
    score = np.where(is_ctr, np.round(rng.beta(2, 8, n), 4), np.round(rng.beta(2, 12, n), 2))
    u = rng.random(n)
    p_sql: list[float | str | None] = [float(s) for s in score]
    for i in np.flatnonzero(u < 0.03):
        p_sql[i] = ("nan", None, -0.1, 1.5, "inf", "-inf")[int(u[i] / 0.005)]
    preds["p_sql"] = pd.Series(p_sql, dtype=object)
    preds["p"] = [np.nan if v is None else float(v) for v in p_sql]
    preds = preds.drop(columns="day")

    # outcomes: Bernoulli(p) (0.1 for an invalid prediction); cvr's article slice has no positive (one class)
    valid = np.isfinite(preds.p.to_numpy()) & (preds.p.to_numpy() >= 0) & (preds.p.to_numpy() <= 1)
    y = (rng.random(n) < np.where(valid, np.nan_to_num(preds.p.to_numpy()), 0.1)).astype(int)
    y[((preds.model == "cvr") & (preds.placement == "article")).to_numpy()] = 0
    rows: list[tuple[str, int, float | None]] = []
    kind = rng.random(n)
    lag = rng.uniform(60, 3000, n)
    for rid, t, yi, k, d in zip(preds.request_id, preds.ts, y, kind, lag, strict=True):
        if k < 0.80:
            rows.append((rid, yi, t + d))  # in time
        elif k < 0.84:
            rows.append((rid, yi, t + 3 * HOUR))  # after window end + label_delay: never counts
        elif k < 0.87:
            rows += [(rid, 0, t + 300), (rid, yi, t + 600)]  # two rows: positive if any is 1
        elif k < 0.89:
            rows.append((rid, 2, t + 300))  # an invalid label only
        elif k < 0.90:
            rows += [(rid, 2, t + 60), (rid, yi, t + 120)]  # invalid and valid: the valid one counts
        elif k < 0.92:
            rows.append((rid, yi, None))  # no label_ts: never counts
        elif k < 0.93:
            rows.append((rid, yi, t - 2.5 * HOUR))  # before window start - label_skew: never counts
        elif k < 0.94:
            rows.append((rid, yi, t - 1800))  # within label_skew before the prediction: counts
        # else no label at all
    labels = pd.DataFrame(rows, columns=["request_id", "label", "label_ts"])
    labels["label_ts"] = labels.label_ts.astype(float).round(3)
    return Data(preds, labels)


def _naive(ts: float) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=round(ts * 1000))


PRED_COLUMNS = (("request_id", "text"), ("ts", "timestamp"), ("model", "text"), ("model_version", "text"),
                ("prediction", "double"), ("placement", "text"), ("device", "text"), ("bucket", "text"))
LABEL_COLUMNS = (("request_id", "text"), ("label", "integer"), ("label_ts", "timestamp"))


def write(data: Data, warehouse: Warehouse) -> None:
    """The rows into a DuckDB file (through pandas; NaN and inf cast from text, pandas' NaN would be NULL) or a
    PostgreSQL schema (COPY)."""
    if isinstance(warehouse, DuckDBWarehouse):
        preds = data.preds.assign(ts=pd.to_datetime((data.preds.ts * 1000).round().astype("int64"), unit="ms"),
                                  p_text=[None if v is None else repr(v) if isinstance(v, float) else str(v)
                                          for v in data.preds.p_sql])
        labels = data.labels.assign(label_ts=pd.to_datetime(data.labels.label_ts * 1000, unit="ms").dt.round("ms"))
        con = duckdb.connect(str(warehouse.path))
        try:
            con.register("preds_df", preds)
            con.register("labels_df", labels)
            con.execute("CREATE TABLE predictions AS SELECT request_id, CAST(ts AS TIMESTAMP) AS ts, model, "
                        "model_version, CAST(p_text AS DOUBLE) AS prediction, placement, device, bucket FROM preds_df")
            con.execute("CREATE TABLE labels AS SELECT request_id, CAST(label AS INTEGER) AS label, "
                        "CAST(label_ts AS TIMESTAMP) AS label_ts FROM labels_df")
        finally:
            con.close()
        return
    pred_rows = [(rid, _naive(t), m, v, None if p is None else float(p), None if pd.isna(pl) else pl, d, b)
                 for rid, t, m, v, p, pl, d, b in zip(
                     data.preds.request_id, data.preds.ts, data.preds.model, data.preds.model_version,
                     data.preds.p_sql, data.preds.placement, data.preds.device, data.preds.bucket, strict=True)]
    write_table(warehouse, "predictions", PRED_COLUMNS, pred_rows)
    label_rows = [(rid, int(lab), None if pd.isna(t) else _naive(t))
                  for rid, lab, t in zip(data.labels.request_id, data.labels.label, data.labels.label_ts, strict=True)]
    write_table(warehouse, "labels", LABEL_COLUMNS, label_rows)


# --- the agent --------------------------------------------------------------------------------------------


def make_config(warehouse: Warehouse, state_dir: Path, segment_by: Sequence[str] = ("placement", "device"),
                **settings: Any) -> Any:
    """Both jobs segmented by ``segment_by`` (top 3), the other jobs off; ``settings`` go to both jobs."""
    segments = {"segment_by": list(segment_by), "segment_top_k": TOP_K, **settings} if segment_by else {}
    return parse_config({
        "init_config": {"env": "test", "state_dir": str(state_dir), "datadog": {"historical_ingestion": True}},
        "instances": [{
            "name": "ads", "warehouse": warehouse.config(), "tags": ["team:ads"],
            "tables": {"predictions": warehouse.table("predictions"), "labels": warehouse.table("labels"),
                       "replays": None, "training_runs": None, "training_features": None},
            "jobs": {"predictions": {"initial_lookback": "1h", **segments},
                     "quality": {"initial_lookback": "4h", **segments,
                                 **({"segment_min_labeled": MIN_LABELED} if segments else {})}},
        }],
    })


@dataclasses.dataclass
class Run:
    sink: RecordingSink
    reports: dict[str, Any]

    def windows(self, job: str) -> list[tuple[float, float]]:
        return [(o.window.start, o.window.end) for o in self.reports[job].outputs]


def run_agent(config: Any, now: float) -> Run:
    sink = RecordingSink()
    reports = Agent(config, sink, clock=lambda: now).run_once()
    return Run(sink, {r.job: r for r in reports})


#: (metric suffix, model, model_version, segment column, segment value, timestamp)
SegKey = tuple[str, str, str, str, str, float]


def segment_points(sink: RecordingSink, prefix: str) -> dict[SegKey, float]:
    out: dict[SegKey, float] = {}
    for s in sink.samples:
        if not s.name.startswith(prefix):
            continue
        tags = dict(t.split(":", 1) for t in s.tags)
        assert tags.keys() == {"env", "team", "model", "model_version", "segment", "segment_value"}, s
        assert (tags["env"], tags["team"]) == ("test", "ads")
        key = (s.name.removeprefix(prefix), tags["model"], tags["model_version"], tags["segment"],
               tags["segment_value"], s.timestamp)
        assert key not in out, f"duplicate {key}"
        out[key] = s.value
    return out


def unsegmented_points(sink: RecordingSink) -> dict[tuple[str, tuple[str, ...], float], float]:
    out = {}
    for s in sink.samples:
        if s.name.startswith(("mlmon.prediction.", "mlmon.online.")):
            key = (s.name, s.tags, s.timestamp)
            assert key not in out, f"duplicate {key}"
            out[key] = s.value
    return out


# --- the reference ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Chosen:
    values: tuple[str, ...]
    nulls: int
    distinct: int


def reference_choice(data: Data, day: float, model: str, column: str, top_k: int = TOP_K) -> Chosen | None:
    """The top ``top_k`` values of ``column`` by rows of ``model`` in the UTC day before ``day`` (ties by value);
    None when the model has no row that day."""
    p = data.preds
    rows = p[(p.model == model) & (p.ts >= day - DAY) & (p.ts < day)]
    if rows.empty:
        return None
    counts = rows[column].dropna().value_counts()
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return Chosen(tuple(v for v, _ in ordered[:top_k]), int(rows[column].isna().sum()), len(counts))


def slice_values(data: Data, rows: pd.DataFrame, start: float, model: str, column: str,
                 max_values: int) -> pd.Series | None:
    """Each row's segment value for the window starting at ``start``, or None (no choice, or refused)."""
    chosen = reference_choice(data, day_of(start), model, column)
    if chosen is None or chosen.distinct > max_values:
        return None
    kept = set(chosen.values)
    return rows[column].map(lambda v: NULL if pd.isna(v) else v if v in kept else OTHER)


def valid(p: np.ndarray) -> np.ndarray:
    return p[np.isfinite(p) & (p >= 0) & (p <= 1)]


def reference_prediction_segments(data: Data, windows: Sequence[tuple[float, float]], columns: Sequence[str],
                                  max_values: int = 1000) -> dict[SegKey, float]:
    out: dict[SegKey, float] = {}
    p = data.preds
    for start, end in windows:
        in_window = p[(p.ts >= start) & (p.ts < end)]
        for (model, version), group in in_window.groupby(["model", "model_version"]):
            for column in columns:
                values = slice_values(data, group, start, model, column, max_values)
                if values is None:
                    continue
                for value, rows in group.groupby(values):
                    raw = rows.p.to_numpy(dtype=float)
                    v = valid(raw)
                    key = (model, version, column, value, end)
                    out[("count", *key)] = float(raw.size)
                    if v.size:
                        out[("mean", *key)] = float(np.mean(v))
                        out[("p50", *key)] = float(np.quantile(v, 0.5))
                        out[("p95", *key)] = float(np.quantile(v, 0.95))
                        out[("same_value_ratio", *key)] = float(np.unique(v, return_counts=True)[1].max() / v.size)
    return out


def reference_quality_segments(data: Data, windows: Sequence[tuple[float, float]], columns: Sequence[str],
                               max_values: int = 1000, min_labeled: int = MIN_LABELED) -> dict[SegKey, float]:
    """mlmon.segment.online.* from scikit-learn on each slice's predictions and their labels (tests.reference's
    rules: label_ts in [start - label_skew, end + label_delay), any 1 positive, only invalid rows invalid)."""
    out: dict[SegKey, float] = {}
    p = data.preds
    label_rows = data.label_rows()
    for start, end in windows:
        in_window = p[(p.ts >= start) & (p.ts < end)]
        for (model, version), group in in_window.groupby(["model", "model_version"]):
            labels = pd.Series([label_of(label_rows.get(rid, []), end + LABEL_DELAY, start - LABEL_SKEW)
                                for rid in group.request_id], index=group.index, dtype=object)
            whole = online_quality_reference(list(group.p), list(labels))
            for column in columns:
                values = slice_values(data, group, start, model, column, max_values)
                if values is None:
                    continue
                for value, rows in group.groupby(values):
                    ref = online_quality_reference(list(rows.p), list(labels[rows.index]))
                    key = (model, version, column, value, end)
                    for name in SEGMENT_QUALITY:
                        if name in ref:
                            out[(name, *key)] = ref[name]
                    if ref["labeled_count"] >= min_labeled:
                        if "auc" in ref and "auc" in whole:
                            out[("auc_vs_model", *key)] = ref["auc"] - whole["auc"]
                        if "logloss" in ref and whole.get("logloss"):
                            out[("logloss_vs_model", *key)] = ref["logloss"] / whole["logloss"]
                        if "calibration" in ref and whole.get("calibration"):
                            out[("calibration_vs_model", *key)] = ref["calibration"] / whole["calibration"]
    return out


def assert_points_equal(got: dict[Any, float], want: dict[Any, float], rel: float = 1e-9,
                        abs_tol: float = 1e-12) -> None:
    assert got.keys() == want.keys(), (sorted(set(got) - set(want))[:10], sorted(set(want) - set(got))[:10])
    bad = [(k, got[k], want[k]) for k in want if not math.isclose(got[k], want[k], rel_tol=rel, abs_tol=abs_tol)]
    assert not bad, f"{len(bad)} of {len(want)} differ, e.g. {bad[:5]}"


# --- fixtures: one data set, written once per engine; runs shared by the tests that read them --------------------

PRED_LAST_END = math.floor((NOW - LATENESS) / PRED_WIDTH) * PRED_WIDTH
Q_LAST_END = math.floor((NOW - LABEL_DELAY) / Q_WIDTH) * Q_WIDTH
#: ctr's kept placement "search" has no row in one predictions window and one quality window
PRED_GAP = (PRED_LAST_END - 4 * PRED_WIDTH, PRED_LAST_END - 3 * PRED_WIDTH)
Q_GAP = (Q_LAST_END - 2 * Q_WIDTH, Q_LAST_END - Q_WIDTH)


@pytest.fixture(scope="module")
def data() -> Data:
    return generate(NOW, gaps=[("ctr", "search", *PRED_GAP), ("ctr", "search", *Q_GAP)])


@pytest.fixture(scope="module")
def duck(data: Data, tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(tmp_path_factory.mktemp("duck") / "warehouse.duckdb")
    write(data, wh)
    return wh


@pytest.fixture(scope="module")
def pg(data: Data) -> Iterator[PostgresWarehouse]:
    with postgres_schema() as wh:
        write(data, wh)
        yield wh


@pytest.fixture(scope="module")
def duck_run(duck: DuckDBWarehouse, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    state = tmp_path_factory.mktemp("state-duck")
    return run_agent(make_config(duck, state), NOW), state


@pytest.fixture(scope="module")
def pg_run(pg: PostgresWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_agent(make_config(pg, tmp_path_factory.mktemp("state-pg")), NOW)


def _check_against_reference(data: Data, run: Run) -> tuple[dict[SegKey, float], dict[SegKey, float]]:
    for job in ("predictions", "quality"):
        assert run.reports[job].errors == 0, run.reports[job].messages
    assert len(run.windows("predictions")) == 6 and len(run.windows("quality")) == 4
    columns = ("placement", "device")
    want_p = reference_prediction_segments(data, run.windows("predictions"), columns)
    assert_points_equal(segment_points(run.sink, "mlmon.segment.prediction."), want_p)
    want_q = reference_quality_segments(data, run.windows("quality"), columns)
    assert_points_equal(segment_points(run.sink, "mlmon.segment.online."), want_q)
    return want_p, want_q


def test_segment_metrics_match_numpy_and_sklearn_per_slice(data, duck_run) -> None:
    """Every mlmon.segment.* point of both jobs (kept values, __other__, __null__) as NumPy/scikit-learn on the
    slice's raw rows; no point for an empty slice, no AUC/calibration for a one-class slice."""
    run, _ = duck_run
    want_p, want_q = _check_against_reference(data, run)
    # the data has what the brief asks for, so the equalities above mean something
    values_p = {(k[1], k[3], k[4]) for k in want_p}
    for model in ("ctr", "cvr"):
        assert {(model, "placement", OTHER), (model, "placement", NULL), (model, "device", OTHER)} <= values_p
    # slices holding invalid predictions (NaN, NULL, < 0, > 1, +-inf): counted, left out of mean and quantiles
    p = data.preds
    in_windows = pd.concat([p[(p.ts >= s) & (p.ts < e)] for s, e in run.windows("predictions")])
    bad = in_windows[~(np.isfinite(in_windows.p) & (in_windows.p >= 0) & (in_windows.p <= 1))]
    assert len(bad) >= 20 and bad.placement.nunique() >= 3 and bad.p_sql.isna().any()
    # ties: cvr's scores have two decimals, so slices have modal counts > 1
    assert any(v > 0.02 for k, v in want_p.items() if k[0] == "same_value_ratio" and k[1] == "cvr")
    # ctr's kept "search" has no row in one predictions window and one quality window: no point there
    search_p = {k[-1] for k in want_p if k[1] == "ctr" and k[4] == "search"}
    assert PRED_GAP[1] not in search_p and len(search_p) == 5
    assert any(k[1] == "ctr" and k[-1] == PRED_GAP[1] for k in want_p)
    search_q = {k[-1] for k in want_q if k[1] == "ctr" and k[4] == "search"}
    assert Q_GAP[1] not in search_q and len(search_q) == 3
    # cvr's article: labeled, one class: positive_rate 0, logloss, no auc nor calibration
    by_slice: dict[tuple[Any, ...], dict[str, float]] = defaultdict(dict)
    for k, v in want_q.items():
        by_slice[k[1:]][k[0]] = v
    article = [m for k, m in by_slice.items() if k[:4] == ("cvr", "v9", "placement", "article")]
    assert len(article) == 4
    for m in article:
        assert m["labeled_count"] > 0 and m["positive_rate"] == 0.0 and "logloss" in m
        assert "auc" not in m and "calibration" not in m and "auc_vs_model" not in m
    # both sides of segment_min_labeled
    labeled = [v for k, v in want_q.items() if k[0] == "labeled_count"]
    assert min(labeled) < MIN_LABELED <= max(labeled)
    assert {"auc_vs_model", "logloss_vs_model", "calibration_vs_model"} <= {k[0] for k in want_q}


def test_chosen_values_are_the_top_k_of_the_previous_day(data, duck_run) -> None:
    """The values kept (in the job state, and as segment_value tags) are the top 3 by previous-UTC-day rows, ties
    by value text; the choice of a window's day comes from the day before it."""
    run, state_dir = duck_run
    days = {day_of(start) for job in ("predictions", "quality") for start, _ in run.windows(job)}
    for job in ("predictions", "quality"):
        stored = json.loads((state_dir / "ads" / f"{job}.json").read_text())["segments"]
        job_days = {day_of(start) for start, _ in run.windows(job)}
        assert set(stored) == {str(int(d)) for d in job_days}
        for day in job_days:
            choice = stored[str(int(day))]
            assert choice["columns"] == ["placement", "device"]
            for model in ("ctr", "cvr"):
                for column in ("placement", "device"):
                    want = reference_choice(data, day, model, column)
                    assert want is not None
                    assert choice["models"][model][column] == {"values": list(want.values), "nulls": want.nulls,
                                                               "distinct": want.distinct}, (job, day, model, column)
    for day in days:
        assert reference_choice(data, day, "ctr", "placement").values == ("feed", "search", "article")  # type: ignore[union-attr]
        assert reference_choice(data, day, "cvr", "placement").values == ("video", "feed", "article")  # type: ignore[union-attr]
        for model in ("ctr", "cvr"):  # a four-way tie: the first three by text
            assert reference_choice(data, day, model, "device").values == ("android", "ios", "tv")  # type: ignore[union-attr]
    tags = {(k[1], k[3], k[4]) for k in segment_points(run.sink, "mlmon.segment.prediction.")}
    assert {v for m, c, v in tags if m == "ctr" and c == "placement"} == {"feed", "search", "article", OTHER, NULL}
    assert {v for m, c, v in tags if m == "cvr" and c == "placement"} == {"video", "feed", "article", OTHER, NULL}
    assert {v for _, c, v in tags if c == "device"} == {"android", "ios", "tv", OTHER}


@pytest.mark.postgres
def test_postgres_equals_duckdb(data, duck_run, pg_run) -> None:
    """The same rows on PostgreSQL (the portable statements): every segment and unsegmented point equal to
    DuckDB's to 1e-12, and to the reference."""
    duck_sink = duck_run[0].sink
    _check_against_reference(data, pg_run)
    for prefix in ("mlmon.segment.prediction.", "mlmon.segment.online."):
        assert_points_equal(segment_points(pg_run.sink, prefix), segment_points(duck_sink, prefix), rel=1e-12,
                            abs_tol=1e-15)
    assert_points_equal(unsegmented_points(pg_run.sink), unsegmented_points(duck_sink), rel=1e-12, abs_tol=1e-15)


#: unsegmented metrics that are counts, order statistics or ratios of integers: equal to the last bit
EXACT = {f"mlmon.prediction.{n}" for n in ("count", "invalid_count", "min", "max", "p05", "p25", "median", "p75",
                                            "p95", "p99", "same_value_ratio", "psi", "ks_statistic")} | {
    f"mlmon.online.{n}" for n in ("labeled_count", "invalid_prediction_count", "invalid_label_count",
                                  "label_coverage", "positive_rate", "auc")}


def test_unsegmented_metrics_do_not_change_with_segment_by(duck, duck_run, tmp_path) -> None:
    """mlmon.prediction.* and mlmon.online.* with and without segment_by: the same series and timestamps; counts,
    quantiles, min/max, AUC exactly equal; float sums (mean, stddev, logloss, brier, calibration...) to 1e-12.

    Measured with DuckDB 2.0.1: on this data (~26 000 rows, less than one 122 880-row group) the float sums came
    out bit-identical run to run and with or without segments. With every row logged 10 times (~260 000 rows, three
    row groups added up in parallel) the same unsegmented statement run twice over the same file gave a different
    last bit for mlmon.prediction.stddev (4 of 282 points, up to 2.9e-16 relative): so the float sums are held to
    1e-12 relative, not ==, and the exact ones (integers, order statistics, ratios of integers) to ==.
    """
    segmented = unsegmented_points(duck_run[0].sink)
    plain = run_agent(make_config(duck, tmp_path / "plain", segment_by=()), NOW)
    assert not [s for s in plain.sink.samples if s.name.startswith("mlmon.segment.")]
    reference = unsegmented_points(plain.sink)
    assert segmented.keys() == reference.keys()
    names = {k[0] for k in reference}
    assert {"mlmon.prediction.mean", "mlmon.prediction.stddev", "mlmon.online.logloss", "mlmon.online.auc",
            "mlmon.online.calibration", "mlmon.prediction.median"} <= names
    for key, value in reference.items():
        if key[0] in EXACT:
            assert segmented[key] == value, key
        else:
            assert math.isclose(segmented[key], value, rel_tol=1e-12, abs_tol=0.0), (key, segmented[key], value)


def statement_groups(data: Data, windows: Sequence[tuple[float, float]], width: float,
                     reference: float | None = None) -> int:
    """The (model, version, window) groups with rows in the windows' range (and in its drift reference range, a
    day earlier, which the predictions statement returns too: the reference histograms)."""
    start, end = windows[0][0], windows[-1][1]
    p = data.preds
    ranges = [(start, end)] + ([(start - reference, end - reference)] if reference else [])
    rows = pd.concat([p[(p.ts >= s) & (p.ts < e)] for s, e in ranges])
    return len(set(zip(rows.model, rows.model_version, np.floor(rows.ts / width), strict=True)))


def test_rows_fetched_are_bounded_by_slices_not_rows(tmp_path) -> None:
    """report.rows_fetched <= groups x (1 + sum over columns of (top_k + 2)) + the choice's rows (at most
    top_k + 1 per model, column and day), and equal when every row is logged 10 times."""
    small = generate(NOW, seed=5, dense_rate=300, sparse_rate=40)
    columns = 2
    fetched = []
    for times in (1, 10):
        wh = DuckDBWarehouse(tmp_path / f"x{times}.duckdb")
        write(small.repeated(times), wh)
        run = run_agent(make_config(wh, tmp_path / f"state{times}"), NOW)
        here = {}
        for job, width, reference, prefix in (("predictions", PRED_WIDTH, DAY, "mlmon.segment.prediction."),
                                              ("quality", Q_WIDTH, None, "mlmon.segment.online.")):
            report = run.reports[job]
            assert report.errors == 0, report.messages
            groups = statement_groups(small, run.windows(job), width, reference)
            days = len({day_of(start) for start, _ in run.windows(job)})
            sent = len({k[1:] for k in segment_points(run.sink, prefix)})  # the slices sent: each is a row
            sent_groups = statement_groups(small, run.windows(job), width)
            bound = groups * (1 + columns * (TOP_K + 2)) + days * 2 * columns * (TOP_K + 1)
            assert sent_groups + sent <= report.rows_fetched <= bound, (job, groups, sent, report.rows_fetched)
            here[job] = report.rows_fetched
        counts = segment_points(run.sink, "mlmon.segment.prediction.")
        fetched.append((here, sum(v for k, v in counts.items() if k[0] == "count")))
    (one, rows_one), (ten, rows_ten) = fetched
    assert one == ten
    assert rows_ten == 10 * rows_one  # the repeated rows were read


def test_column_over_segment_max_values_is_refused_for_that_model(data, duck, duck_run, tmp_path) -> None:
    """bucket has 50 distinct values for cvr (> segment_max_values 20), 5 for ctr: the run says so, naming the
    column and the model; no segment:bucket series for cvr; ctr's bucket, cvr's placement and every unsegmented
    metric still sent."""
    run = run_agent(make_config(duck, tmp_path / "state", segment_by=("placement", "bucket"), segment_max_values=20),
                    NOW)
    for job, prefix in (("predictions", "mlmon.segment.prediction."), ("quality", "mlmon.segment.online.")):
        report = run.reports[job]
        refused = [m for m in report.messages if "segment column bucket" in m]
        assert len(refused) == 1 and "model cvr" in refused[0] and "segment_max_values (20)" in refused[0], \
            report.messages
        assert "model ctr" not in refused[0]
        assert report.errors == 1
        checks = [c for c in run.sink.checks if c.name == "mlmon.job.can_run" and f"job:{job}" in c.tags]
        assert checks and checks[-1].status == CheckStatus.CRITICAL and "bucket" in (checks[-1].message or "")
        points = segment_points(run.sink, prefix)
        assert not [k for k in points if k[1] == "cvr" and k[3] == "bucket"]
        kept = {v for start, _ in run.windows(job)
                for v in reference_choice(data, day_of(start), "ctr", "bucket").values}  # type: ignore[union-attr]
        assert {k[4] for k in points if k[1] == "ctr" and k[3] == "bucket"} == kept | {OTHER} and len(kept) >= 3
        assert {k[4] for k in points if k[1] == "cvr" and k[3] == "placement"} == {"video", "feed", "article",
                                                                                   OTHER, NULL}
    want = reference_prediction_segments(data, run.windows("predictions"), ("placement", "bucket"), max_values=20)
    assert_points_equal(segment_points(run.sink, "mlmon.segment.prediction."), want)
    want_q = reference_quality_segments(data, run.windows("quality"), ("placement", "bucket"), max_values=20)
    assert_points_equal(segment_points(run.sink, "mlmon.segment.online."), want_q)
    # the unsegmented metrics are all there, as without the refused column
    got = unsegmented_points(run.sink)
    reference = unsegmented_points(duck_run[0].sink)
    assert got.keys() == reference.keys()
    assert all(math.isclose(got[k], v, rel_tol=1e-12) for k, v in reference.items())


# --- the daily choice ---------------------------------------------------------------------------------------------


class ChoiceCalls:
    """Records each fetch_choice call (the day read) of mlmon.jobs.segments."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[float, float]] = []
        real = mlmon.jobs.segments.fetch_choice

        def spy(engine: Any, instance: Any, columns: Any, start: float, end: float, *args: Any, **kw: Any) -> Any:
            self.calls.append((start, end))
            return real(engine, instance, columns, start, end, *args, **kw)

        monkeypatch.setattr(mlmon.jobs.segments, "fetch_choice", spy)

    def take(self) -> list[tuple[float, float]]:
        out, self.calls = self.calls, []
        return out


def test_choice_is_kept_for_the_day_and_redone_the_next(tmp_path, monkeypatch) -> None:
    """Run at 10:xx, again at 14:xx the same UTC day (today's traffic orders the placements the other way round):
    no choice statement, the same kept values (the reordered ones are __other__); the next day's run chooses again,
    from that day's previous day, per window's day across midnight."""
    day = day_of(NOW)
    frac = NOW - math.floor(NOW)  # an arbitrary fraction of a second from the clock
    t1, t2, t3 = day + 10 * HOUR + frac, day + 14 * HOUR + frac, day + DAY + 2.5 * HOUR + frac
    data = generate(t3, seed=6, sparse_rate=400, days=[(day - DAY, day, SHARES), (day, t3, REORDERED)])
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    write(data, wh)
    config = make_config(wh, tmp_path / "state", segment_by=("placement",))
    calls = ChoiceCalls(monkeypatch)

    def kept_by_window(run: Run, job: str) -> dict[float, dict[str, set[str]]]:
        prefix = "mlmon.segment.prediction." if job == "predictions" else "mlmon.segment.online."
        out: dict[float, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for k in segment_points(run.sink, prefix):
            out[k[-1]][k[1]].add(k[4])
        return out

    def state(job: str) -> dict[str, Any]:
        return json.loads((tmp_path / "state" / "ads" / f"{job}.json").read_text())["segments"]

    first = run_agent(config, t1)
    assert all(first.reports[job].errors == 0 and first.reports[job].windows_processed for job in first.reports)
    assert sorted(calls.take()) == [(day - DAY, day)] * 2  # once per job
    stored = {job: state(job) for job in ("predictions", "quality")}
    assert set(stored["predictions"]) == set(stored["quality"]) == {str(int(day))}
    assert stored["predictions"][str(int(day))]["models"]["ctr"]["placement"]["values"] == ["feed", "search",
                                                                                           "article"]

    second = run_agent(config, t2)
    assert calls.take() == []  # the day's choice came from the state
    for job in ("predictions", "quality"):
        assert state(job) == stored[job]
        assert second.reports[job].errors == 0 and second.reports[job].windows_processed >= 4
        by_window = kept_by_window(second, job)
        assert by_window
        for models in by_window.values():
            assert models["ctr"] <= {"feed", "search", "article", OTHER, NULL}
            assert models["cvr"] <= {"video", "feed", "article", OTHER, NULL}
    counts = segment_points(second.sink, "mlmon.segment.prediction.")
    total: Counter[str] = Counter()
    for k, v in counts.items():
        if k[0] == "count" and k[1] == "ctr":
            total[k[4]] += v
    assert total[OTHER] > 5 * total["feed"]  # today's video, sidebar and footer: __other__ under yesterday's choice

    third = run_agent(config, t3)
    # one new day (day + 1) per job, from the reordered day; the old day from the state
    assert sorted(calls.take()) == [(day, day + DAY)] * 2
    for job in ("predictions", "quality"):
        assert third.reports[job].errors == 0, third.reports[job].messages
        windows = third.windows(job)
        assert day_of(windows[0][0]) == day and day_of(windows[-1][0]) == day + DAY  # across midnight
        new = state(job)[str(int(day + DAY))]["models"]
        assert new["ctr"]["placement"]["values"] == ["video", "sidebar", "footer"]
        assert new["cvr"]["placement"]["values"] == ["search", "sidebar", "footer"]
        for end, models in kept_by_window(third, job).items():
            if day_of(end - 1) == day:
                assert models["ctr"] <= {"feed", "search", "article", OTHER, NULL}, end
            else:
                assert models["ctr"] <= {"video", "sidebar", "footer", OTHER, NULL}, end
                assert models["cvr"] <= {"search", "sidebar", "footer", OTHER, NULL}, end
                assert {"video", "sidebar", "footer"} <= models["ctr"]
    want = reference_prediction_segments(data, third.windows("predictions"), ("placement",))
    assert_points_equal(segment_points(third.sink, "mlmon.segment.prediction."), want)
    want_q = reference_quality_segments(data, third.windows("quality"), ("placement",))
    assert_points_equal(segment_points(third.sink, "mlmon.segment.online."), want_q)


# --- every dialect ------------------------------------------------------------------------------------------------


def test_every_dialect_compiles_the_segmented_statements() -> None:
    """A hand-made SegmentPlan over two days (one column kept for two models, one for one model only, one with no
    choice at all) renders for every dialect and parses back; the values and models are bound, not text."""
    instance = parse_config({"instances": [{
        "name": "ads", "warehouse": {"engine": "duckdb", "path": "w.duckdb"},
        "tables": {"predictions": "analytics.serving.predictions"},
        "columns": {"predictions": {"ts": "served_at", "prediction": "score"}},
    }]}).instances[0]
    plan = SegmentPlan(("placement", "device", "region"), (
        DayChoice(100, 244, {"placement": {"ctr_a": ("feed_x", "search_x"), "cvr_b": ("video_x",)},
                             "device": {"ctr_a": ("ios_x",)}}),
        DayChoice(244, 388, {"placement": {"ctr_a": ("feed_x",), "cvr_b": ()}}),
    ))
    assert plan.active() == [0, 1]  # region: no day chose it, it is not unpivoted
    # a plan with no choice at all (every model new, or every column refused) is the unsegmented statement
    empty = SegmentPlan(("placement",), (DayChoice(100, 244, {}),))
    for dialect in DIALECTS:
        assert render(build_query(instance, (), dialect, empty), dialect) == render(build_query(instance, (), dialect),
                                                                                   dialect)
        assert render(build_quality_query(instance, (), (), empty), dialect) == render(
            build_quality_query(instance), dialect)
    quote = {"bigquery": "`", "spark": "`", "databricks": "`"}
    for dialect in DIALECTS:
        for name, query in (("predictions", build_query(instance, (), dialect, plan)),
                            ("predictions-filtered", build_query(instance, ("ctr_a",), dialect, plan)),
                            ("quality", build_quality_query(instance, (), (), plan)),
                            ("quality-lanes", build_quality_query(instance, ("ctr_a",), ("cvr_b",), plan))):
            sql = render(query, dialect)
            sqlglot.parse_one(sql, read=dialect)
            q = quote.get(dialect, '"')
            assert f"{q}placement{q}" in sql and f"{q}device{q}" in sql and f"{q}served_at{q}" in sql, (name, dialect)
            assert f"{q}region{q}" not in sql, (name, dialect)  # no model has a choice for it: not even read
            for text in ("ctr_a", "cvr_b", "feed_x", "search_x", "video_x", "ios_x"):
                assert text not in sql, (name, dialect, text)
            assert "__segment" not in sql and "__sv" not in sql and "__in" not in sql, (name, dialect)
            assert "UNION ALL" in sql.upper()


# --- mlmon plan ---------------------------------------------------------------------------------------------------


def test_plan_counts_the_segment_series(tmp_path) -> None:
    """mlmon plan: per segment metric, per (model, version) active in the period, the kept values plus __other__
    (more values than kept) plus __null__ (NULL rows) per column, from the previous UTC day; the count series are
    those a first run emits."""
    now = day_of(NOW) + 13 * HOUR + (NOW - math.floor(NOW))  # the periods inside the day of now
    data = generate(now, seed=8, dense_rate=600, sparse_rate=60)
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    write(data, wh)
    config = make_config(wh, tmp_path / "state")
    (plan,) = plan_config(config, now)
    assert not plan.errors, plan.errors
    planned = {j.job: {m.name: m.series for m in j.metrics} for j in plan.jobs}
    # by hand: ctr serves v1 and v2, cvr v9; placement keeps 3 + __other__ + __null__, device 3 + __other__
    per_version = {}
    for model in ("ctr", "cvr"):
        n = 0
        for column in ("placement", "device"):
            chosen = reference_choice(data, day_of(now), model, column)
            assert chosen is not None
            n += len(chosen.values) + (chosen.distinct > len(chosen.values)) + (chosen.nulls > 0)
        per_version[model] = n
    assert per_version == {"ctr": 9, "cvr": 9}
    expected = 2 * per_version["ctr"] + per_version["cvr"]
    for name in (f"mlmon.segment.prediction.{n}" for n in ("count", "mean", "p50", "p95", "same_value_ratio")):
        assert planned["predictions"][name] == expected, name
    for name in QUALITY_SEGMENT_METRICS:
        assert planned["quality"][name] == expected, name
    # the series a first run emits: every count series planned, the others at most as planned
    run = run_agent(config, now)
    for job, names in (("predictions", "mlmon.segment.prediction."), ("quality", "mlmon.segment.online.")):
        series = Counter(name for name, _ in {(s.name, s.tags) for s in run.sink.samples if s.name.startswith(names)})
        count = names + ("count" if job == "predictions" else "labeled_count")
        assert series[count] == planned[job][count], job
        for name, n in series.items():
            assert n <= planned[job][name], name


def test_plan_counts_the_segment_series_of_a_period_across_midnight(tmp_path) -> None:
    """At 00:30 UTC the predictions period straddles midnight (two days' choices) and the quality period lies in
    the day before: the plan still counts at least the series a first run sends, and exactly its count series."""
    now = day_of(NOW) + 1800 + (NOW - math.floor(NOW))
    day = day_of(now)
    # the placements reorder at the start of the day before: each day of the period keeps other values
    data = generate(now, seed=3, sparse_rate=600,
                    days=[(day - 2 * DAY, day - DAY, SHARES), (day - DAY, now, REORDERED)])
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    write(data, wh)
    config = make_config(wh, tmp_path / "state", segment_by=("placement",))
    (plan,) = plan_config(config, now)
    planned = {j.job: {m.name: m.series for m in j.metrics} for j in plan.jobs}
    run = run_agent(config, now)
    assert {day_of(start) for start, _ in run.windows("predictions")} == {day - DAY, day}
    for job, names in (("predictions", "mlmon.segment.prediction."), ("quality", "mlmon.segment.online.")):
        series = Counter(name for name, _ in {(s.name, s.tags) for s in run.sink.samples if s.name.startswith(names)})
        count = names + ("count" if job == "predictions" else "labeled_count")
        assert series[count] == planned[job][count], (job, series[count], planned[job][count])
        for name, n in series.items():
            assert n <= planned[job][name], name


def test_a_model_new_today_is_sliced_from_its_second_run(tmp_path) -> None:
    """No rows in the previous UTC day (a new model, or a new table): the first run sends no slice and chooses the
    model's values from its rows of the day up to the batch's end; the next run slices with those values, kept
    for the rest of the day even when later traffic orders them differently."""
    day = day_of(NOW)
    frac = NOW - math.floor(NOW)
    t1, t2 = day + 9 * HOUR + frac, day + 13 * HOUR + frac
    data = generate(t2, seed=9, sparse_rate=600, days=[(day, day + 9 * HOUR, SHARES), (day + 9 * HOUR, t2, REORDERED)])
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    write(data, wh)
    config = make_config(wh, tmp_path / "state", segment_by=("placement",))

    first = run_agent(config, t1)
    assert not [s for s in first.sink.samples if s.name.startswith("mlmon.segment.")]
    assert all(first.reports[job].errors == 0 for job in first.reports)
    for job in ("predictions", "quality"):
        stored = json.loads((tmp_path / "state" / "ads" / f"{job}.json").read_text())["segments"][str(int(day))]
        end = first.windows(job)[-1][1]
        p = data.preds
        for model in SHARES:
            rows = p[(p.model == model) & (p.ts >= day) & (p.ts < end)]
            counts = sorted(rows.placement.dropna().value_counts().items(), key=lambda kv: (-kv[1], kv[0]))
            assert stored["models"][model]["placement"]["values"] == [v for v, _ in counts[:TOP_K]], (job, model)

    second = run_agent(config, t2)
    for job, prefix in (("predictions", "mlmon.segment.prediction."), ("quality", "mlmon.segment.online.")):
        stored = json.loads((tmp_path / "state" / "ads" / f"{job}.json").read_text())["segments"][str(int(day))]
        points = segment_points(second.sink, prefix)
        assert points, job
        for model in SHARES:
            sent = {k[4] for k in points if k[1] == model}
            assert sent and sent <= {*stored["models"][model]["placement"]["values"], OTHER, NULL}, (job, model)
        # the values are the kept ones and the numbers the slices' own: counts add up to the model's rows
        if job == "predictions":
            for (name, model, _, _, _, at), value in points.items():
                if name == "count":
                    total = sum(v for k, v in points.items() if k[0] == "count" and k[1] == model and k[5] == at)
                    rows = data.preds[(data.preds.model == model) & (data.preds.ts >= at - PRED_WIDTH)
                                      & (data.preds.ts < at)]
                    assert total == len(rows)
