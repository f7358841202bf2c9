"""The serving_features job: every metric vs pandas/NumPy/SciPy, on DuckDB and PostgreSQL; bounded rows;
every dialect; a run through the agent with the smallest config; ``mlmon plan``; config errors."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlglot
from scipy.special import rel_entr
from tests.helpers import Warehouse, utc
from tests.tables import write_table

from mlmon.config import ConfigError, Instance, parse_config
from mlmon.jobs.serving_features import METRICS, compute
from mlmon.jobs.windows import Lane, Window
from mlmon.plan import plan_config
from mlmon.runner import Agent
from mlmon.samples import MetricType
from mlmon.state import JobState, StateStore
from mlmon.testing import RecordingSink
from mlmon.warehouse.engines import open_engine
from mlmon.warehouse.serving import build_serving_query
from mlmon.warehouse.sql import DIALECTS, render

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600.0
NOW = 1_800_000_123.0  # an arbitrary wall-clock time
END = (NOW - 300) // HOUR * HOUR  # the latest window due (lateness 5m)
#: four hourly windows; the third has no row at all
WINDOWS = [Window(END - (4 - i) * HOUR, END - (3 - i) * HOUR) for i in range(4)]
EMPTY = WINDOWS[2]
TOP_K = 4
MIN_ROWS = 50
EPS = 1e-4

SERVING_COLUMNS = (("request_id", "text"), ("ts", "timestamp"), ("model", "text"), ("model_version", "text"),
                   ("age", "double"), ("stuck", "double"), ("device", "text"), ("segment", "integer"))
TRAINING_COLUMNS = (("model", "text"), ("model_version", "text"), ("age", "double"), ("stuck", "double"),
                    ("device", "text"), ("segment", "integer"))
FEATURES = ("age", "stuck", "device", "segment")
CATEGORICAL = {"device", "segment"}  # device by its type, segment by configuration
DEVICES = [f"d{i:02d}" for i in range(10)]


# --- data ------------------------------------------------------------------------------------------------


def _age(rng: np.random.Generator, i: int, loc: float) -> Any:
    if i % 19 == 0:
        return (np.nan, np.inf, -np.inf, None)[(i // 19) % 4]
    return round(float(rng.normal(loc, 10)), 1)


def serving_rows(n: int, seed: int = 1) -> list[tuple[Any, ...]]:
    """ctr v2 (trained) in windows 0, 1 and 3, ctr v1 (never trained) in window 0, cvr v9 (trained) in window 3,
    with NaN, +-inf and NULL ages, a feature stuck at 0.5, devices beyond K and unseen in training."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[Any, ...]] = []
    plan = [(0, "ctr", "v2", n, 40.0), (1, "ctr", "v2", n, 55.0), (3, "ctr", "v2", n // 5, 40.0),
            (0, "ctr", "v1", n // 2, 40.0), (3, "cvr", "v9", n, 30.0)]
    for w, model, version, count, loc in plan:
        start = WINDOWS[w].start
        devices = [*DEVICES, "new1", "new2"] if w == 1 else DEVICES
        probs = np.arange(len(devices), 0, -1) / sum(range(1, len(devices) + 1))
        for i in range(count):
            device = None if i % 11 == 0 else str(rng.choice(devices, p=probs))
            rows.append((f"{model}-{version}-{w}-{i}", utc(start + i * (HOUR - 1) / count), model, version,
                         _age(rng, i, loc), 0.5, device, i % 8))
    rows.append(("late", utc(END + 10), "ctr", "v2", 1.0, 0.5, "d00", 1))  # after the range: not read
    rows.append(("anon", utc(WINDOWS[0].start + 5), None, "v2", 1.0, 0.5, "d00", 1))  # no model: ignored
    return rows


def training_rows(n: int, seed: int = 2) -> list[tuple[Any, ...]]:
    """ctr v2 and cvr v9, plus ctr v0 (not served: never read)."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[Any, ...]] = []
    for model, version, loc in (("ctr", "v2", 40.0), ("cvr", "v9", 35.0), ("ctr", "v0", 90.0)):
        for i in range(n):
            device = None if i % 13 == 0 else str(rng.choice(DEVICES))
            rows.append((model, version, _age(rng, i, loc), float(rng.normal(0.5, 0.1)), device,
                         int(rng.integers(0, 6))))
    return rows


def write(warehouse: Warehouse, serving: list[tuple[Any, ...]], training: list[tuple[Any, ...]] | None,
          replace: bool = False) -> None:
    write_table(warehouse, "serving", SERVING_COLUMNS, serving, replace=replace)
    if training is not None:
        write_table(warehouse, "training_features", TRAINING_COLUMNS, training, replace=replace)


def instance_dict(warehouse: Warehouse, **job: Any) -> dict[str, Any]:
    return {
        "name": "ads", "warehouse": warehouse.config(),
        "tables": {"serving_features": warehouse.table("serving"),
                   "training_features": warehouse.table("training_features")},
        "jobs": {"serving_features": {"features": list(FEATURES), "categorical": ["segment"], "top_k": TOP_K,
                                      "psi_min_rows": MIN_ROWS, **job}},
    }


def instance_for(warehouse: Warehouse, **job: Any) -> Instance:
    return parse_config({"instances": [instance_dict(warehouse, **job)]}).instances[0]


def run(instance: Instance) -> tuple[dict[tuple[str, ...], float], int]:
    """(name, model, version, window end, feature, value) -> value, and the rows fetched, of one statement."""
    engine = open_engine(instance.warehouse)
    try:
        batch = compute(engine, instance, WINDOWS, Lane("", 300), JobState(), ("env:test",), NOW, {})
    finally:
        engine.close()
    assert batch.problems == []
    out: dict[tuple[str, ...], float] = {}
    for output in batch.outputs:
        for s in output.samples:
            tags = dict(t.split(":", 1) for t in s.tags)
            assert s.timestamp == output.window.end and tags["env"] == "test"
            key = (s.name, tags["model"], tags["model_version"], str(output.window.end), tags.get("feature", ""),
                   tags.get("value", ""))
            assert key not in out, key
            out[key] = s.value
    return out, batch.rows_fetched


# --- independent references (pandas / NumPy / SciPy on raw values) ----------------------------------------


def ref_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI: the sum of both relative entropies of the bin shares, empty shares replaced by EPS."""
    ref = np.where(reference == 0, EPS, reference)
    cur = np.where(current == 0, EPS, current)
    return float(np.sum(rel_entr(cur, ref) + rel_entr(ref, cur)))


def as_text(value: Any) -> Any:
    """A raw value as the engines cast it to text; NULL (None, or pandas' NaN for it) stays missing."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def ranked(values: pd.Series) -> pd.DataFrame:
    """Value counts, most frequent first, ties by value ascending."""
    vc = values.value_counts().rename_axis("v").reset_index(name="n")
    return vc.sort_values(["n", "v"], ascending=[False, True], kind="mergesort").reset_index(drop=True)


def ref_feature(values: list[Any], training: list[Any] | None, categorical: bool) -> dict[str, float]:
    """The metrics of one feature of one window (``value_share:<v>`` keys for the shares), from their definitions."""
    out: dict[str, float] = {}
    if categorical:
        raw = pd.Series([as_text(v) for v in values], dtype=object)
        ok = raw.dropna()
        train = None if training is None else pd.Series([as_text(v) for v in training], dtype=object).dropna()
    else:
        raw = pd.Series([np.nan if v is None else v for v in values], dtype="float64")
        ok = raw[np.isfinite(raw)]
        train = None if training is None else pd.Series(
            [np.nan if v is None else v for v in training], dtype="float64").pipe(lambda s: s[np.isfinite(s)])
    out["null_ratio"] = 1 - len(ok) / len(raw)
    out["distinct_count"] = float(ok.nunique())
    if len(ok):
        out["same_value_ratio"] = float(ok.value_counts().max() / len(ok))
    if not categorical and len(ok):
        out.update(mean=float(ok.mean()), min=float(ok.min()), max=float(ok.max()))
        if len(ok) > 1:
            out["stddev"] = float(ok.std(ddof=1))
    if categorical and len(ok):
        top = ranked(ok).head(TOP_K)
        out.update({f"value_share:{v}": n / len(ok) for v, n in zip(top["v"], top["n"], strict=True)})
        if top["n"].sum() < len(ok):
            out["value_share:__other__"] = 1 - top["n"].sum() / len(ok)
        if training is not None:
            out["unseen_share"] = float((~ok.isin(set(train))).sum() / len(ok))
    if train is not None and min(len(ok), len(train)) >= MIN_ROWS:
        if categorical:
            bins = list(ranked(train)["v"].head(TOP_K))

            def shares(s: pd.Series) -> np.ndarray:
                counts = s.value_counts().reindex(bins, fill_value=0).to_numpy()
                return np.append(counts, len(s) - counts.sum()) / len(s)
        else:
            edges = np.unique(np.quantile(train, np.arange(1, 10) / 10, method="inverted_cdf"))
            cuts = np.concatenate([[-np.inf], edges, [np.inf]])

            def shares(s: pd.Series) -> np.ndarray:
                return pd.cut(s, cuts, right=True).value_counts(sort=False).to_numpy() / len(s)

        out["psi_training"] = ref_psi(shares(train), shares(ok))
    return out


def expected(serving: list[tuple[Any, ...]], training: list[tuple[Any, ...]]) -> dict[tuple[str, ...], float]:
    df = pd.DataFrame(serving, columns=[c for c, _ in SERVING_COLUMNS])
    df = df[df["model"].notna() & (df["ts"] >= utc(WINDOWS[0].start)) & (df["ts"] < utc(WINDOWS[-1].end))]
    df["end"] = [str(w.end) for w in (next(w for w in WINDOWS if utc(w.start) <= t < utc(w.end)) for t in df["ts"])]
    trained = pd.DataFrame(training, columns=[c for c, _ in TRAINING_COLUMNS])
    out: dict[tuple[str, ...], float] = {}
    for (model, version, end), g in df.groupby(["model", "model_version", "end"]):
        out[("mlmon.serving.count", model, version, end, "", "")] = float(len(g))
        t = trained[(trained["model"] == model) & (trained["model_version"] == version)]
        for feature in FEATURES:
            ref = list(t[feature]) if len(t) else None
            for name, value in ref_feature(list(g[feature]), ref, feature in CATEGORICAL).items():
                name, _, v = name.partition(":")
                out[(f"mlmon.serving.feature.{name}", model, version, end, feature, v)] = value
    return out


def assert_close(got: dict[Any, float], want: dict[Any, float], rel: float = 1e-9) -> None:
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=rel, abs=1e-12), key


# --- the statement on both engines -------------------------------------------------------------------------


def test_every_metric_matches_pandas(warehouse: Warehouse) -> None:
    """Every metric of every (model, version, window, feature) equals the pandas/NumPy/SciPy reference."""
    serving, training = serving_rows(400), training_rows(300)
    write(warehouse, serving, training)
    got, _ = run(instance_for(warehouse))
    want = expected(serving, training)
    assert_close(got, want)
    # the cases the data is built for are all there
    v2 = ("ctr", "v2", str(WINDOWS[1].end))
    assert not any(key[3] == str(EMPTY.end) for key in got)  # the empty window: no series
    assert got[("mlmon.serving.feature.same_value_ratio", *v2, "stuck", "")] == 1.0
    assert got[("mlmon.serving.feature.distinct_count", *v2, "stuck", "")] == 1.0
    assert got[("mlmon.serving.feature.unseen_share", *v2, "device", "")] > 0  # new1, new2
    assert got[("mlmon.serving.feature.psi_training", *v2, "stuck", "")] > 1  # stuck vs trained spread
    assert ("mlmon.serving.feature.value_share", *v2, "device", "__other__") in got  # more than K devices
    v1 = ("ctr", "v1", str(WINDOWS[0].end))
    assert ("mlmon.serving.feature.mean", *v1, "age", "") in got
    assert not any(k[0].endswith(("psi_training", "unseen_share")) and k[1:3] == v1[:2] for k in got)  # untrained
    small = ("ctr", "v2", str(WINDOWS[3].end))  # 80 rows, 76 valid ages >= psi_min_rows; 70 valid devices too
    assert ("mlmon.serving.feature.psi_training", *small, "age", "") in got


@pytest.mark.postgres
def test_duckdb_and_postgres_agree(duckdb_warehouse: Warehouse, postgres_warehouse: Warehouse) -> None:
    """The same rows on both engines: the same series, the same numbers (up to float summation order)."""
    serving, training = serving_rows(300, seed=8), training_rows(300, seed=9)
    got = []
    for warehouse in (duckdb_warehouse, postgres_warehouse):
        write(warehouse, serving, training)
        got.append(run(instance_for(warehouse))[0])
    assert_close(got[1], got[0], rel=1e-12)


@pytest.mark.parametrize(("features", "trained"), [(("age", "stuck"), False), (("age", "stuck"), True),
                                                 (("device", "segment"), False)],
                         ids=["numeric-untrained", "numeric", "categorical-untrained"])
def test_numeric_only_and_categorical_only(warehouse: Warehouse, features: tuple[str, ...], trained: bool) -> None:
    """Only numeric or only categorical features, with and without training rows (so one of the statement's
    two value-count CTEs holds no branch at all): the same numbers as pandas for those features."""
    serving, training = serving_rows(300, seed=3), training_rows(300, seed=4)
    write(warehouse, serving, training)
    data = instance_dict(warehouse, features=list(features),
                         categorical=[f for f in features if f == "segment"])
    if not trained:
        data["tables"]["training_features"] = None
    got, _ = run(parse_config({"instances": [data]}).instances[0])
    want = {k: v for k, v in expected(serving, training if trained else []).items() if k[4] in ("", *features)}
    assert_close(got, want)
    assert any(k[0].endswith("psi_training") for k in got) == trained


def test_psi_needs_min_rows_on_both_sides(duckdb_warehouse: Warehouse) -> None:
    """psi_min_rows above a window's valid values: no psi_training there, the other metrics unchanged."""
    serving, training = serving_rows(400), training_rows(300)
    write(duckdb_warehouse, serving, training)
    got, _ = run(instance_for(duckdb_warehouse, psi_min_rows=200))
    psi = {k[1:5] for k in got if k[0] == "mlmon.serving.feature.psi_training"}
    assert ("ctr", "v2", str(WINDOWS[3].end), "age") not in psi and ("ctr", "v2", str(WINDOWS[0].end), "age") in psi
    everything, _ = run(instance_for(duckdb_warehouse))
    assert {k: v for k, v in everything.items() if not k[0].endswith("psi_training")} == {
        k: v for k, v in got.items() if not k[0].endswith("psi_training")}


def test_rows_fetched_per_window_and_feature_do_not_grow(warehouse: Warehouse) -> None:
    """Each row 10x: the same rows fetched; 10x fresh rows: within the constant bound per (model, window, feature)."""
    serving, training = serving_rows(200), training_rows(200)
    write(warehouse, serving, training)
    _, small = run(instance_for(warehouse))
    write(warehouse, serving * 10, training * 10, replace=True)
    _, repeated = run(instance_for(warehouse))
    assert repeated == small
    write(warehouse, serving_rows(2000, seed=5), training_rows(2000, seed=6), replace=True)
    got, fresh = run(instance_for(warehouse))
    groups = {k[1:4] for k in got if k[0] == "mlmon.serving.count"}
    assert len(groups) == 5  # ctr v2 in three windows, ctr v1 and cvr v9 in one each
    per_window = sum(2 * TOP_K if f in CATEGORICAL else 9 for f in FEATURES)
    per_version = sum(TOP_K if f in CATEGORICAL else 9 for f in FEATURES)
    assert small <= fresh <= len(groups) * per_window + 2 * per_version  # two trained versions served


# --- dialects, agent, plan, config --------------------------------------------------------------------------


def test_statement_renders_in_every_dialect() -> None:
    """With and without the training reference, over a renamed serving table: every dialect, names quoted."""
    inst = parse_config({"instances": [{
        "name": "ads", "warehouse": {"engine": "duckdb", "path": "w.duckdb"},
        "tables": {"serving_features": "ml.serving", "training_features": "ml.train"},
        "columns": {"serving_features": {"ts": "served_at", "age": "user_age"},
                    "training_features": {"age": "train_age"}},
        "partitions": {"serving_features": "dt"},
    }]}).instances[0]
    kinds: dict[str, Any] = {"age": "numeric", "device": "categorical"}
    for reference in ((), ("age", "device")):
        query = build_serving_query(inst, list(kinds), kinds, reference, ["ctr_secret"])
        for dialect in DIALECTS:
            quote = "`" if dialect in {"bigquery", "spark", "databricks"} else '"'
            sql = render(query, dialect)
            sqlglot.parse_one(sql, read=dialect)
            assert f"{quote}served_at{quote}" in sql and f"{quote}user_age{quote}" in sql
            assert f"{quote}dt{quote}" in sql and "ctr_secret" not in sql
            assert (f"{quote}train_age{quote}" in sql) == bool(reference)


def agent_config(tmp_path: Path, warehouse: Warehouse, **instance: Any) -> Any:
    """What a user must set: the features (the rest of the instance is where the warehouse is)."""
    return parse_config({
        "init_config": {"env": "test", "state_dir": str(tmp_path / "state")},
        "instances": [{"name": "ads", "warehouse": warehouse.config(),
                       "jobs": {"serving_features": {"features": ["age", "device"]}}, **instance}],
    })


def prediction_rows() -> list[tuple[Any, ...]]:
    """The latest due hour: served predictions with their feature columns (age with NULL and NaN)."""
    start = END - HOUR
    return [(f"r{i}", utc(start + i * 7), "ctr", "v2", 0.1 + (i % 5) / 10,
             None if i % 10 == 0 else (np.nan if i % 10 == 1 else float(i % 23)), f"d{i % 6}")
            for i in range(500)]


PREDICTION_COLUMNS = (("request_id", "text"), ("ts", "timestamp"), ("model", "text"), ("model_version", "text"),
                      ("prediction", "double"), ("age", "double"), ("device", "text"))


def test_agent_delivers_the_metrics_from_the_predictions_table(duckdb_warehouse: Warehouse, tmp_path: Path) -> None:
    """Only `features` set: the job reads the feature columns of predictions, and delivers; without
    training_features (its default name absent) there is no psi_training nor unseen_share, and no error."""
    rows = prediction_rows()
    write_table(duckdb_warehouse, "predictions", PREDICTION_COLUMNS, rows)
    sink = RecordingSink()
    reports = Agent(agent_config(tmp_path, duckdb_warehouse), sink, clock=lambda: NOW).run_once()
    (report,) = [r for r in reports if r.job == "serving_features"]
    assert report.errors == 0 and report.windows_processed == 1 and not report.messages
    tags = ["model:ctr", "model_version:v2", "env:test"]
    ages = pd.Series([r[5] for r in rows], dtype="float64")
    sink.assert_metric("mlmon.serving.count", 500.0, tags, count=1, timestamp=END)
    sink.assert_metric("mlmon.serving.feature.null_ratio", float(ages.isna().mean()), [*tags, "feature:age"],
                       count=1)
    sink.assert_metric("mlmon.serving.feature.mean", float(ages.mean()), [*tags, "feature:age"], count=1)
    sink.assert_metric("mlmon.serving.feature.value_share", 83 / 500, [*tags, "feature:device", "value:d5"],
                       count=1)
    names = {s.name for s in sink.samples if s.name.startswith("mlmon.serving.")}
    assert names == set(METRICS) - {"mlmon.serving.feature.psi_training", "mlmon.serving.feature.unseen_share"}
    sink.assert_metric("mlmon.agent.windows_processed", 1.0, ["job:serving_features"], count=1)


def test_agent_skips_the_job_without_features(duckdb_warehouse: Warehouse, tmp_path: Path) -> None:
    """No features configured (the default): the job is not run and sends nothing."""
    write_table(duckdb_warehouse, "predictions", PREDICTION_COLUMNS, prediction_rows())
    config = parse_config({"init_config": {"state_dir": str(tmp_path / "state")},
                           "instances": [{"name": "ads", "warehouse": duckdb_warehouse.config()}]})
    sink = RecordingSink()
    reports = Agent(config, sink, clock=lambda: NOW).run_once()
    assert "serving_features" not in {r.job for r in reports}
    assert not [s for s in sink.samples if s.name.startswith("mlmon.serving.") or "job:serving_features" in s.tags]


def test_emitted_metrics_are_catalogued(warehouse: Warehouse, tmp_path: Path) -> None:
    """Every metric the job declares is a gauge row of metadata.csv, and every one is emitted by some run."""
    with (ROOT / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        catalogue = {row["metric_name"]: row for row in csv.DictReader(fh)}
    serving, training = serving_rows(400), training_rows(300)
    write(warehouse, serving, training)
    got, _ = run(instance_for(warehouse))
    assert {k[0] for k in got} == set(METRICS)
    for name in METRICS:
        assert catalogue[name]["metric_type"] == MetricType.GAUGE.value, name


def test_plan_counts_the_series_a_run_emits(warehouse: Warehouse, tmp_path: Path) -> None:
    """`mlmon plan` counts, per metric, the distinct series of a first run over the same warehouse."""
    serving, training = serving_rows(400), training_rows(300)
    write(warehouse, serving, training)
    inst = instance_dict(warehouse, initial_lookback="4h")
    config = parse_config({"init_config": {"env": "test", "state_dir": str(tmp_path / "state"),
                                           "datadog": {"historical_ingestion": True}},
                           "instances": [{**inst, "tables": {**inst["tables"], "predictions": None}}]})
    (plan,) = plan_config(config, NOW)
    (job,) = [j for j in plan.jobs if j.job == "serving_features"]
    assert job.status == "planned" and not plan.errors
    sink = RecordingSink(config.init_config.datadog.horizon)
    agent = Agent(config, sink, clock=lambda: NOW, store=StateStore(tmp_path / "agent"))
    agent.run_job(config.instances[0], "serving_features")
    sent = Counter(name for name, _ in {(s.name, s.tags) for s in sink.samples if s.name.startswith("mlmon.serving")})
    assert Counter({m.name: m.series for m in job.metrics if m.name.startswith("mlmon.serving") and m.series}) == sent
    assert sent["mlmon.serving.count"] == 3  # ctr v1, ctr v2, cvr v9
    assert sent["mlmon.serving.feature.value_share"] > 3 * 2 * TOP_K  # device and segment, per version
    assert job.periods[0].windows == 4


JOB_PATH = "instances -> 0 -> jobs -> serving_features"


@pytest.mark.parametrize(("settings", "path", "words"), [
    ({"top_k": 0}, f"{JOB_PATH} -> top_k", "greater than"),
    ({"features": ["age"], "categorical": ["device"]}, JOB_PATH, "not in features: device"),
    ({"features": ["age; DROP TABLE x"]}, f"{JOB_PATH} -> features", "identifier"),
    ({"psi_min_rows": -1}, f"{JOB_PATH} -> psi_min_rows", "greater than"),
    ({"lateness": "soon"}, f"{JOB_PATH} -> lateness", "duration"),
], ids=["top-k", "categorical-not-a-feature", "bad-identifier", "psi-min-rows", "lateness"])
def test_config_errors_name_the_path(settings: dict[str, Any], path: str, words: str) -> None:
    """A bad serving_features value is reported at its YAML path with what was expected."""
    jobs = {"serving_features": settings}
    with pytest.raises(ConfigError) as err:
        parse_config({"instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": "w"}, "jobs": jobs}]})
    assert path in str(err.value) and words in str(err.value), str(err.value)


def test_defaults() -> None:
    """Hourly windows due 5 minutes after their end, top 10, PSI from 300 values, no features, predictions read."""
    inst = parse_config({"instances": [{"name": "a", "warehouse": {"engine": "duckdb", "path": "w"}}]}).instances[0]
    job = inst.jobs.serving_features
    assert (job.window, job.interval, job.lateness, job.top_k, job.psi_min_rows, job.features) == (
        3600, 3600, 300, 10, 300, ())
    assert inst.tables.serving_features is None


def test_check_probes_the_feature_columns(duckdb_warehouse: Warehouse) -> None:
    """`mlmon check`: a serving feature the serving table lacks is a problem naming table and column."""
    from mlmon.preflight import check_instance

    write(duckdb_warehouse, serving_rows(20), training_rows(20))
    said: list[str] = []
    assert check_instance(instance_for(duckdb_warehouse), said.append, now=NOW) == []
    inst = instance_for(duckdb_warehouse, features=["age", "no_such_col"], categorical=[])
    (problem,) = check_instance(inst, said.append, now=NOW)
    assert "serving" in problem and "no_such_col" in problem and "serving_features" in problem, problem
