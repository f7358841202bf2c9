"""The training job: lineage and feature metrics vs pandas/NumPy/SciPy, on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlglot
from scipy.special import rel_entr
from tests.helpers import Warehouse, utc
from tests.tables import write_table

from mlmon.config import Instance, parse_config
from mlmon.jobs.training import TrainingSnapshot, compute, tag
from mlmon.metrics.training import TrainingRun, feature_aggregates, feature_stats, lineage
from mlmon.warehouse.engines import Engine, QueryError, open_engine
from mlmon.warehouse.features import build_features_query, build_probe_query
from mlmon.warehouse.sql import DIALECTS, render
from mlmon.warehouse.training import build_runs_query

DAY = 86400.0
NOW = 1_790_000_000.0
EPS = 1e-4
TOP_K = 4

RUN_COLUMNS = (
    ("model", "text"), ("model_version", "text"), ("trained_at", "timestamp"), ("train_rows", "bigint"),
    ("valid_rows", "bigint"), ("valid_logloss", "double"), ("valid_auc", "double"),
)
FEATURE_COLUMNS = (
    ("model", "text"), ("model_version", "text"), ("age", "double"), ("clicks", "bigint"), ("device", "text"),
    ("stuck", "double"), ("flag", "boolean"), ("segment", "integer"),
)
FEATURES = tuple(c for c, _ in FEATURE_COLUMNS[2:])
#: categorical by column type (text, boolean) or by configuration (segment)
CATEGORICAL = {"device", "flag", "segment"}


# --- independent references (pandas / NumPy / SciPy on raw values) -----------------------------------


def ref_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI = sum of both relative entropies of the shares, empty shares replaced by EPS."""
    ref = np.where(reference == 0, EPS, reference)
    cur = np.where(current == 0, EPS, current)
    return float(np.sum(rel_entr(cur, ref) + rel_entr(ref, cur)))


def sql_text(value: Any) -> Any:
    """A raw value as the engines cast it to text (None stays missing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ranked_counts(values: pd.Series) -> pd.DataFrame:
    """Value counts, most frequent first, ties by value ascending."""
    vc = values.value_counts().rename_axis("v").reset_index(name="n")
    return vc.sort_values(["n", "v"], ascending=[False, True], kind="mergesort").reset_index(drop=True)


def ref_numeric(latest: Sequence[Any], previous: Sequence[Any] | None) -> dict[str, float]:
    cur = pd.Series(latest, dtype="float64")
    ok = cur[np.isfinite(cur)]
    out: dict[str, float] = {}
    if len(cur):
        out["null_ratio"] = 1 - len(ok) / len(cur)
        out["distinct_count"] = float(ok.nunique())
    if len(ok):
        out["mean"] = float(ok.mean())
        out["same_value_ratio"] = float(ok.value_counts().max() / len(ok))
    if len(ok) > 1:
        out["stddev"] = float(ok.std(ddof=1))
    if previous is not None:
        prev = pd.Series(previous, dtype="float64")
        prev_ok = prev[np.isfinite(prev)]
        if len(ok) and len(prev_ok):
            edges = np.unique(np.quantile(prev_ok, np.arange(1, 10) / 10, method="inverted_cdf"))
            bins = np.concatenate([[-np.inf], edges, [np.inf]])

            def shares(s: pd.Series) -> np.ndarray:
                return pd.cut(s, bins, right=True).value_counts(sort=False).to_numpy() / len(s)

            out["psi_prev"] = ref_psi(shares(prev_ok), shares(ok))
    return out


def ref_categorical(
    latest: Sequence[Any], previous: Sequence[Any] | None, k: int
) -> tuple[dict[str, float], dict[str, float]]:
    cur = pd.Series([sql_text(v) for v in latest], dtype=object)
    ok = cur.dropna()
    out: dict[str, float] = {}
    shares: dict[str, float] = {}
    if len(cur):
        out["null_ratio"] = 1 - len(ok) / len(cur)
        out["distinct_count"] = float(ok.nunique())
    if len(ok):
        counts = ranked_counts(ok)
        out["same_value_ratio"] = float(counts["n"].iloc[0] / len(ok))
        top = counts.head(k)
        shares = {v: n / len(ok) for v, n in zip(top["v"], top["n"])}
        if top["n"].sum() < len(ok):
            shares["__other__"] = 1 - top["n"].sum() / len(ok)
    if previous is not None:
        prev_ok = pd.Series([sql_text(v) for v in previous], dtype=object).dropna()
        if len(ok) and len(prev_ok):
            bins = list(ranked_counts(prev_ok)["v"].head(k))

            def binned(s: pd.Series) -> np.ndarray:
                counts = s.value_counts().reindex(bins, fill_value=0).to_numpy()
                return np.append(counts, len(s) - counts.sum()) / len(s)

            out["psi_prev"] = ref_psi(binned(prev_ok), binned(ok))
    return out, shares


def metric_dict(latest: Sequence[Any], previous: Sequence[Any] | None, categorical: bool, k: int = TOP_K):
    cur, prev = feature_aggregates(latest, previous, categorical, k)
    stats = feature_stats(cur, prev, categorical)
    return stats.values(), dict(stats.value_shares)


def assert_close(got: dict[Any, float], want: dict[Any, float], rel: float = 1e-12) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=rel, abs=1e-12), key


# --- metric functions --------------------------------------------------------------------------------

RNG = np.random.default_rng(7)
NUMERIC_CASES: dict[str, tuple[list[Any], list[Any] | None]] = {
    "ties": ([1, 1, 1, 2, 2, 3, 5, 5, 9, 9, 9, 9], [1, 1, 2, 2, 2, 2, 3, 4, 5, 6, 6]),
    "nan_inf_null": (
        [0.5, np.nan, np.inf, -np.inf, None, 1.5, 2.5, 2.5, -3.0],
        [0.1, None, np.nan, 2.0, 3.0, np.inf, 0.7, 1.9],
    ),
    "stuck": ([0.5] * 40, list(RNG.normal(0.5, 0.1, 60))),
    "continuous": (list(RNG.normal(1, 2, 500)), list(RNG.normal(0, 2, 400))),
    "few_previous_values": (list(RNG.integers(0, 6, 200).astype(float)), [2.0, 2.0, 4.0]),
    "single_valid": ([np.nan, 3.0, None], [1.0, 2.0]),
    "no_previous": ([1.0, 2.0, 2.0], None),
    "previous_all_missing": ([1.0, 2.0], [None, np.nan]),
    "all_missing": ([None, np.nan, np.inf], [1.0, 2.0]),
    "no_rows": ([], [1.0]),
}


@pytest.mark.parametrize(("latest", "previous"), list(NUMERIC_CASES.values()), ids=list(NUMERIC_CASES))
def test_numeric_feature_stats_match_pandas(latest: list[Any], previous: list[Any] | None) -> None:
    """null_ratio, mean, stddev, distinct_count, same_value_ratio, psi_prev equal pandas/NumPy/SciPy."""
    got, shares = metric_dict(latest, previous, categorical=False)
    assert_close(got, ref_numeric(latest, previous))
    assert shares == {}


CATEGORICAL_CASES: dict[str, tuple[list[Any], list[Any] | None]] = {
    "more_than_k_values_with_ties": (
        [*"aaaaabbbbccccdddeeefffgg", None, None],
        [*"aaaabbbcccddddeeeeehhhhh", None],
    ),
    "values_only_in_latest": (list("xxyyzzab"), list("aabbccdd")),
    "at_most_k_values": (list("ababbc"), list("abc")),
    "stuck": (["ios"] * 30, ["ios", "web", "android"] * 10),
    "random": (
        list(RNG.choice(list("abcdefghij"), 300, p=[0.3, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03])),
        list(RNG.choice(list("abcdefghij"), 250)),
    ),
    "no_previous": (list("aab"), None),
    "all_missing": ([None, None], list("ab")),
    "no_rows": ([], list("ab")),
}


@pytest.mark.parametrize(("latest", "previous"), list(CATEGORICAL_CASES.values()), ids=list(CATEGORICAL_CASES))
def test_categorical_feature_stats_match_pandas(latest: list[Any], previous: list[Any] | None) -> None:
    """Shares of the top-K values (ties by value), __other__, and PSI over the previous top K + other."""
    got, shares = metric_dict(latest, previous, categorical=True)
    want, want_shares = ref_categorical(latest, previous, TOP_K)
    assert_close(got, want)
    assert_close(shares, want_shares)


def test_other_share_only_when_other_values_exist() -> None:
    """K or fewer distinct values: no __other__ share."""
    _, shares = metric_dict(list("aabbc"), None, categorical=True, k=3)
    assert set(shares) == {"a", "b", "c"}


def run(version: str, day: float, rows: int | None = 1000, logloss: float | None = 0.2, auc: float | None = 0.7):
    return TrainingRun(version, NOW - 50 * DAY + day * DAY, rows, None if rows is None else rows // 10, logloss, auc)


def test_lineage_changes_match_pandas_pct_change() -> None:
    """Relative changes are pandas' pct_change between the compared runs; age in hours."""
    latest, prev, month = run("c", 40, 1300, 0.25, 0.71), run("b", 31, 1200, 0.2, 0.74), run("a", 10, 1000)
    got = lineage(latest, prev, month, NOW).values()
    pct = pd.DataFrame([vars(month), vars(prev), vars(latest)])[["train_rows", "valid_logloss", "valid_auc"]]
    want = {
        "rows": 1300.0, "valid_rows": 130.0, "valid_logloss": 0.25, "valid_auc": 0.71,
        "rows_change_prev": pct["train_rows"].iloc[1:].pct_change().iloc[-1],
        "rows_change_30d": pct["train_rows"].iloc[[0, 2]].pct_change().iloc[-1],
        "valid_logloss_change_prev": pct["valid_logloss"].iloc[1:].pct_change().iloc[-1],
        "valid_auc_change_prev": pct["valid_auc"].iloc[1:].pct_change().iloc[-1],
        "model_age_hours": pd.Timedelta(seconds=NOW - latest.trained_at) / pd.Timedelta(hours=1),
    }
    assert_close(got, want)


def test_single_version_has_no_comparisons() -> None:
    """Only one run: the latest's values and age, no _prev or _30d metric, no error."""
    got = lineage(run("a", 49), None, None, NOW).values()
    assert set(got) == {"rows", "valid_rows", "valid_logloss", "valid_auc", "model_age_hours"}


def test_zero_and_null_denominators_omit_changes() -> None:
    """Zero or NULL on the old side, or NULL on the new side: the change is absent, not 0 or inf."""
    got = lineage(run("b", 40, None, 0.3, None), run("a", 30, 0, 0.0, 0.7), run("z", 5, 0), NOW).values()
    assert set(got) == {"valid_logloss", "model_age_hours"}


def test_tag_values_are_sanitized() -> None:
    """Commas and whitespace become underscores; tags stop at 200 characters."""
    assert tag("value", "a, b\tc") == "value:a__b_c"
    assert len(tag("value", "x" * 500)) == 200


# --- the statements ---------------------------------------------------------------------------------


def instance_for(warehouse: Warehouse | None, **training: Any) -> Instance:
    table = warehouse.table if warehouse is not None else (lambda name: name)
    config = {
        "name": "ads",
        "warehouse": warehouse.config() if warehouse is not None else {"engine": "duckdb", "path": "w.duckdb"},
        "tables": {"training_runs": table("training_runs"), "training_features": table("training_features")},
        "jobs": {"training": {"features": list(FEATURES), "categorical": ["segment"], "top_k": TOP_K, **training}},
    }
    return parse_config({"instances": [config]}).instances[0]


def test_queries_render_in_every_dialect() -> None:
    """Runs, probe and feature statements render and parse back in every dialect; names stay out of the text."""
    inst = parse_config({"instances": [{
        "name": "ads", "warehouse": {"engine": "duckdb", "path": "w.duckdb"},
        "tables": {"training_runs": "ml.runs", "training_features": "ml.feats"},
        "columns": {"training_runs": {"trained_at": "fit_at"}, "training_features": {"age": "user_age"}},
    }]}).instances[0]
    kinds: dict[str, Any] = {"age": "numeric", "device": "categorical", "odd.name": "numeric"}
    queries = {
        "runs": build_runs_query(inst),
        "runs-filtered": build_runs_query(inst, ["ctr_secret"]),
        "probe": build_probe_query(inst),
        "features": build_features_query(inst, list(kinds), kinds, [2, 1]),
    }
    for dialect in DIALECTS:
        quote = "`" if dialect in {"bigquery", "spark", "databricks"} else '"'
        for name, query in queries.items():
            sql = render(query, dialect)
            sqlglot.parse_one(sql, read=dialect)
            assert "ctr_secret" not in sql
        runs_sql = render(queries["runs"], dialect)
        features_sql = render(queries["features"], dialect)
        assert f"{quote}fit_at{quote}" in runs_sql
        assert f"{quote}user_age{quote}" in features_sql and f"{quote}odd.name{quote}" in features_sql
        assert "'age'" not in features_sql and "'device'" not in features_sql


def runs_rows() -> list[tuple[Any, ...]]:
    """ctr: versions trained on days 0, 10, 25, 31, 40; solo: one version; tie: two at the same time;
    holes: NULL and zero values."""
    rows = [
        ("ctr", f"v{d:02d}", utc(NOW - 50 * DAY + d * DAY), 1000 * (d + 1), 100 * (d + 1), 0.2 + d / 1e3, 0.7 - d / 1e3)
        for d in (25, 0, 40, 10, 31)
    ]
    rows.append(("solo", "s1", utc(NOW - 3 * DAY), 500, 50, 0.3, 0.6))
    rows += [("tie", "va", utc(NOW - DAY), 10, 1, 0.1, 0.9), ("tie", "vb", utc(NOW - DAY), 20, 2, 0.2, 0.8)]
    rows += [
        ("holes", "h2", utc(NOW - DAY), None, 3, 0.4, None),
        ("holes", "h1", utc(NOW - 40 * DAY), 0, 0, 0.0, 0.0),
        ("holes", None, utc(NOW), 5, 5, 0.5, 0.5),  # no version: ignored
    ]
    return rows


def feature_rows(n: int, seed: int = 3) -> list[tuple[Any, ...]]:
    """Latest and previous versions of ctr (plus an older one that must be ignored) and solo's one."""
    rng = np.random.default_rng(seed)
    devices = [f"d{i:02d}" for i in range(12)]
    rows: list[tuple[Any, ...]] = []
    for model, version, shift in (("ctr", "v40", 0.0), ("ctr", "v31", 1.0), ("ctr", "v25", 50.0), ("solo", "s1", 0.0)):
        age = rng.normal(40 + shift, 12, n).round()
        clicks = rng.poisson(2 + shift, n)
        device = rng.choice(devices, n, p=np.arange(12, 0, -1) / 78)
        stuck = np.full(n, 0.5) if version == "v40" else rng.normal(0.5, 0.1, n)
        flag = rng.random(n) < 0.3 + shift / 10
        # latest versions: every segment equally often, so the top K is decided by the value tie-break
        segment = np.arange(n) % 8 if version in ("v40", "s1") else rng.integers(0, 8, n)
        for i in range(n):
            a: Any = float(age[i])
            if i % 17 == 0:
                a = (np.nan, np.inf, -np.inf, None)[(i // 17) % 4]
            rows.append((
                model, version, a,
                None if i % 13 == 0 else int(clicks[i]),
                None if i % 11 == 0 else str(device[i]),
                float(stuck[i]),
                None if i % 7 == 0 else bool(flag[i]),
                int(segment[i]),
            ))
    return rows


def write(warehouse: Warehouse, features: list[tuple[Any, ...]] | None) -> None:
    write_table(warehouse, "training_runs", RUN_COLUMNS, runs_rows())
    if features is not None:
        write_table(warehouse, "training_features", FEATURE_COLUMNS, features)


def snapshot(instance: Instance) -> TrainingSnapshot:
    engine = open_engine(instance.warehouse)
    try:
        return compute(engine, instance, instance.jobs.training, ("env:test",), NOW)
    finally:
        engine.close()


def by_key(snap: TrainingSnapshot) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for s in snap.samples:
        tags = dict(t.split(":", 1) for t in s.tags)
        key = (s.name, tags["model"], tags["model_version"], tags.get("feature", ""), tags.get("value", ""))
        assert key not in out, key
        assert s.timestamp == NOW and tags["env"] == "test"
        out[key] = s.value
    return out


def expected_lineage() -> dict[tuple[str, ...], float]:
    """From the raw runs with pandas: latest, previous and the latest run >= 30 days older."""
    df = pd.DataFrame(runs_rows(), columns=[c for c, _ in RUN_COLUMNS]).dropna(subset=["model_version"])
    df["t"] = (df["trained_at"] - pd.Timestamp(0)).dt.total_seconds()
    out: dict[tuple[str, ...], float] = {}
    for model, g in df.sort_values(["t", "model_version"], ascending=False).groupby("model", sort=False):
        latest = g.iloc[0]
        prev = g.iloc[1] if len(g) > 1 else None
        old = g[g["t"] <= latest["t"] - 30 * DAY]
        month = old.iloc[0] if len(old) else None

        def put(name: str, value: Any) -> None:
            if value is not None and pd.notna(value) and np.isfinite(value):
                out[(f"mlmon.training.{name}", model, latest["model_version"], "", "")] = float(value)

        for col, name in (("train_rows", "rows"), ("valid_rows", "valid_rows"), ("valid_logloss", "valid_logloss"),
                          ("valid_auc", "valid_auc")):
            put(name, latest[col])
        for other, suffix in ((prev, "prev"), (month, "30d")):
            for col, name in (("train_rows", "rows"), ("valid_logloss", "valid_logloss"), ("valid_auc", "valid_auc")):
                if other is not None and (suffix == "prev" or col == "train_rows"):
                    put(f"{name}_change_{suffix}", pd.Series([other[col], latest[col]]).pct_change().iloc[-1])
        put("model_age_hours", (NOW - latest["t"]) / 3600)
    return out


def expected_features(rows: list[tuple[Any, ...]]) -> dict[tuple[str, ...], float]:
    names = [c for c, _ in FEATURE_COLUMNS]
    out: dict[tuple[str, ...], float] = {}
    for model, latest, prev in (("ctr", "v40", "v31"), ("solo", "s1", None)):
        for feature in FEATURES:
            col = names.index(feature)

            def raw(version: str, col: int = col) -> list[Any]:
                return [r[col] for r in rows if r[0] == model and r[1] == version]

            previous = raw(prev) if prev else None
            shares: dict[str, float] = {}
            if feature in CATEGORICAL:
                values, shares = ref_categorical(raw(latest), previous, TOP_K)
            else:
                values = ref_numeric(raw(latest), previous)
            for name, value in values.items():
                out[(f"mlmon.training.feature.{name}", model, latest, feature, "")] = value
            for v, share in shares.items():
                out[("mlmon.training.feature.value_share", model, latest, feature, v)] = share
    return out


def test_snapshot_matches_pandas_reference(warehouse: Warehouse) -> None:
    """Every lineage and feature metric, with NaN/inf/NULL values, equals the pandas reference."""
    rows = feature_rows(400)
    write(warehouse, rows)
    snap = snapshot(instance_for(warehouse))
    assert snap.problems == []
    want = {**expected_lineage(), **expected_features(rows)}
    assert_close(by_key(snap), want, rel=1e-9)


def test_thirty_day_comparison_and_version_tie_break(warehouse: Warehouse) -> None:
    """Days 0/10/25/31/40: latest 40, previous 31, 30-day 10; equal trained_at: higher version wins."""
    write(warehouse, None)
    got = by_key(snapshot(instance_for(warehouse, features=[], categorical=[])))
    assert got[("mlmon.training.rows_change_prev", "ctr", "v40", "", "")] == pytest.approx(41 / 32 - 1)
    assert got[("mlmon.training.rows_change_30d", "ctr", "v40", "", "")] == pytest.approx(41 / 11 - 1)
    assert got[("mlmon.training.rows_change_prev", "tie", "vb", "", "")] == pytest.approx(20 / 10 - 1)
    assert ("mlmon.training.rows_change_prev", "solo", "s1", "", "") not in got


def test_models_setting_restricts_models(duckdb_warehouse: Warehouse) -> None:
    """instance.models: only those models are reported."""
    write(duckdb_warehouse, feature_rows(30))
    inst = instance_for(duckdb_warehouse).model_copy(update={"models": ("solo",)})
    assert {key[1] for key in by_key(snapshot(inst))} == {"solo"}


def test_rows_fetched_do_not_grow_with_training_rows(warehouse: Warehouse) -> None:
    """Each row 10x: no more result rows; 10x fresh rows (more distinct values): within the constant bound."""
    rows = feature_rows(200)
    write(warehouse, rows)
    small = snapshot(instance_for(warehouse)).rows_fetched
    write_table(warehouse, "training_features", FEATURE_COLUMNS, rows * 10, replace=True)
    assert snapshot(instance_for(warehouse)).rows_fetched <= small
    write_table(warehouse, "training_features", FEATURE_COLUMNS, feature_rows(2000, seed=4), replace=True)
    runs = 8  # ctr: latest, previous, 30-day; solo 1; tie 2; holes 2 (previous = 30-day)
    # per (model, feature): 9 edges x 2 versions (numeric) or K + 2K values (categorical), at least 1 per version
    bound = 2 * sum(max(3 * TOP_K if f in CATEGORICAL else 2 * 9, 2) for f in FEATURES)
    assert runs < snapshot(instance_for(warehouse)).rows_fetched <= runs + bound


def test_missing_feature_column_is_a_problem(warehouse: Warehouse) -> None:
    """A configured feature that is not a column: a problem naming table and column; lineage still sent."""
    write(warehouse, feature_rows(20))
    inst = instance_for(warehouse, features=["age", "no_such_col"], categorical=[])
    snap = snapshot(inst)
    assert len(snap.problems) == 1
    assert "no_such_col" in snap.problems[0] and inst.tables.training_features in snap.problems[0]
    assert "instance ads" in snap.problems[0]
    names = {s.name for s in snap.samples}
    assert "mlmon.training.rows" in names and not any(n.startswith("mlmon.training.feature.") for n in names)


def test_missing_feature_table_is_a_problem(duckdb_warehouse: Warehouse) -> None:
    """No training_features table: the error is a problem, the lineage samples are returned."""
    write(duckdb_warehouse, None)
    snap = snapshot(instance_for(duckdb_warehouse))
    assert len(snap.problems) == 1 and "training_features" in snap.problems[0]
    assert any(s.name == "mlmon.training.model_age_hours" for s in snap.samples)


class FailingFeatures:
    """A real engine whose feature statement (the second fetch) fails."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.dialect, self.calls = engine, engine.dialect, 0

    def fetch(self, query: Any, params: Any) -> list[tuple[Any, ...]]:
        self.calls += 1
        if self.calls == 2:
            raise QueryError("duckdb file w.duckdb: Conversion Error: boom")
        return self.engine.fetch(query, params)

    def column_types(self, query: Any, params: Any) -> list[tuple[str, str]]:
        return self.engine.column_types(query, params)

    def close(self) -> None:
        self.engine.close()


def test_failing_feature_statement_is_a_problem(duckdb_warehouse: Warehouse) -> None:
    """The feature statement fails: one problem naming instance, table and error; lineage still there."""
    write(duckdb_warehouse, feature_rows(20))
    inst = instance_for(duckdb_warehouse)
    engine = FailingFeatures(open_engine(inst.warehouse))
    try:
        snap = compute(engine, inst, inst.jobs.training, (), NOW)
    finally:
        engine.close()
    assert snap.problems == ["instance ads, job training, table training_features: duckdb file w.duckdb: "
                             "Conversion Error: boom"]
    assert {s.name for s in snap.samples} >= {"mlmon.training.rows", "mlmon.training.rows_change_prev"}
    assert not any(s.name.startswith("mlmon.training.feature.") for s in snap.samples)


def test_no_features_configured_skips_features(duckdb_warehouse: Warehouse) -> None:
    """Empty features list: lineage only, no problem, and the feature table is not read."""
    write(duckdb_warehouse, None)
    snap = snapshot(instance_for(duckdb_warehouse, features=[], categorical=[]))
    assert snap.problems == []
    assert not any(s.name.startswith("mlmon.training.feature.") for s in snap.samples)



def test_failing_runs_statement_raises(duckdb_warehouse: Warehouse) -> None:
    """No training_runs table: QueryError for the runner to report."""
    write_table(duckdb_warehouse, "other", (("x", "integer"),), [])
    with pytest.raises(QueryError, match="training_runs"):
        snapshot(instance_for(duckdb_warehouse))
