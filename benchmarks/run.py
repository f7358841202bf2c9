"""One day of predictions for 8 models in DuckDB, monitored by the agent and by what it is measured against.

    .venv/bin/python benchmarks/run.py --rows 1e7 [--models 8] [--dir /tmp/mlmon-bench] [--skip pandas,evidently]
        [--keep] [--reuse] [--jobs predictions quality] [--evidently-python /tmp/evbench/bin/python] [--json out.json]

Generates in DuckDB SQL (no Python loop) one day of predictions (0.1 % of them invalid: NaN or 1.5), a label
per prediction arriving within 30 minutes, a replay for 98 % of them (2 % of those off by 1 %), 40 daily
training runs per model and 20 000 training rows for each model's two latest versions (three features). Then
runs each contender in its own child process, one after the other, and reads its wall time and peak RSS
(``os.wait4``'s ``ru_maxrss`` of that child):

* ``agent``: ``mlmon run --once`` over the whole day, all four jobs, JSON Lines sink. Its config makes the
  due windows exactly the day: 144 ten-minute windows, 24 hourly quality and reproducibility windows.
* ``floor``: hand-written DuckDB SQL computing the same metrics for the same windows, one statement per job
  (two for training), read-only on the same file with DuckDB's defaults, as the agent opens it.
* ``pandas``: the day's predictions, labels and replays loaded with ``.df()``, then per model and window
  NumPy statistics and scikit-learn's ``log_loss``, ``roc_auc_score`` and ``brier_score_loss``.
* ``evidently-classification`` / ``evidently-drift``: Evidently's classification-quality report on the day's
  labeled valid predictions (all models pooled, one report) and its data-drift report on the same frame
  (reference: the day's first hour), in ``--evidently-python`` (Evidently 0.7 needs pandas < 3).

The floor's and pandas' numbers are cross-checked against the agent's output, window by window.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

DAY = 86400
PREDICTION_WINDOW = 600
ONLINE_WINDOW = 3600
ATOL, RTOL = 1e-6, 1e-4
TOP_K = 10
PSI_EPS = 1e-4
QUANTILES = (("p05", 0.05), ("p25", 0.25), ("median", 0.5), ("p75", 0.75), ("p95", 0.95), ("p99", 0.99))
NUMERIC_FEATURES = ("age", "bid_floor")
CATEGORICAL_FEATURES = ("device",)
ALL_JOBS = ("predictions", "quality", "reproducibility", "training")
CONTENDERS = ("agent", "floor", "pandas", "evidently-classification", "evidently-drift")
RESULT_PREFIX = "BENCH_RESULT "


# ----------------------------------------------------------------------------------------------- data


def generate(path: Path, rows: int, models: int, end: float) -> None:
    """Write the warehouse: the day ``[end - 1 day, end)`` and the training tables, in SQL."""
    import duckdb

    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        """
        CREATE TABLE predictions AS
        SELECT 'req-' || i AS request_id,
               to_timestamp($end - 86400 + (i * 86400.0 / $rows))::TIMESTAMP AS ts,
               'model_' || (i % $models) AS model,
               'v1' AS model_version,
               CASE WHEN r < 0.0005 THEN 'NaN'::DOUBLE WHEN r < 0.001 THEN 1.5
                    ELSE 1 / (1 + exp(-(-3.0 + 0.9 * sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random()))))
               END AS prediction
        FROM (SELECT range AS i, random() AS r FROM range($rows))
        """,
        {"rows": rows, "models": models, "end": end},
    )
    con.execute(
        """
        CREATE TABLE labels AS
        SELECT request_id, CASE WHEN random() < prediction THEN 1 ELSE 0 END AS label,
               ts + to_seconds(CAST(random() * 1800 AS BIGINT)) AS label_ts
        FROM predictions
        """
    )
    con.execute(
        """
        CREATE TABLE replays AS
        SELECT request_id, model_version,
               CASE WHEN random() < 0.02 THEN prediction * 1.01 ELSE prediction END AS prediction
        FROM predictions WHERE random() < 0.98
        """
    )
    con.execute(
        """
        CREATE TABLE training_runs AS
        SELECT 'model_' || m AS model, CASE WHEN d = 0 THEN 'v1' ELSE 'v1-' || d END AS model_version,
               to_timestamp($end - 86400 * (d + 1))::TIMESTAMP AS trained_at,
               CAST(1000000 * (1 + random() / 100) AS BIGINT) AS train_rows, 100000 AS valid_rows,
               0.12 + random() / 1000 AS valid_logloss, 0.74 + random() / 100 AS valid_auc
        FROM range($models) a(m), range(40) b(d)
        """,
        {"models": models, "end": end},
    )
    con.execute(
        """
        CREATE TABLE training_features AS
        SELECT 'model_' || m AS model, CASE WHEN d = 0 THEN 'v1' ELSE 'v1-' || d END AS model_version,
               CASE WHEN random() < 0.05 THEN NULL ELSE 18 + floor(random() * 50) END AS age,
               ['ios', 'android', 'web'][1 + CAST(floor(random() * 3) AS INTEGER)] AS device,
               random() * 2 AS bid_floor
        FROM range($models) a(m), range(2) b(d), range(20000) c(i)
        """,
        {"models": models},
    )
    con.execute("CREATE TABLE bench_meta AS SELECT $rows AS rows, $models AS models, $end AS day_end",
                {"rows": rows, "models": models, "end": end})
    con.close()


def existing_day(path: Path, rows: int, models: int) -> float | None:
    """The day's end of a warehouse generated earlier with the same size, if any (``--reuse``)."""
    import duckdb

    if not path.exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
        row = con.execute("SELECT rows, models, day_end FROM bench_meta").fetchone()
        con.close()
    except duckdb.Error:
        return None
    return float(row[2]) if row and (row[0], row[1]) == (rows, models) else None


# ----------------------------------------------------------------------------------------- child runs


def run_child(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` to completion; wall time, peak RSS (``ru_maxrss`` of this child) and exit code."""
    with log.open("w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "returncode": proc.returncode}


def child_result(log: Path) -> dict[str, Any]:
    """The JSON a contender child printed on its ``BENCH_RESULT`` line."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    return {}


def log_tail(log: Path, lines: int = 6) -> str:
    """The last lines of a child's output, for a failure message."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def run_contender(name: str, python: str, spec: dict[str, Any], workdir: Path, repeat: int) -> dict[str, Any]:
    """Run ``benchmarks/run.py --child name`` ``repeat`` times; keep the fastest run."""
    log = workdir / f"{name}.log"
    cmd = [python, str(Path(__file__).resolve()), "--child", name, "--spec", json.dumps(spec)]
    best: dict[str, Any] = {}
    for _ in range(repeat):
        run = run_child(cmd, log)
        if run["returncode"] != 0:
            return {"skipped": f"failed (exit {run['returncode']}): {log_tail(log)}"}
        run.update(child_result(log))
        if not best or run["wall_s"] < best["wall_s"]:
            best = run
    return best


# -------------------------------------------------------------------------------------------- agent


def agent_config(
    workdir: Path, warehouse: Path, day_end: float, jobs: list[str], now: float, memory_limit: str
) -> Path:
    """A config whose due windows, at ``now``, are exactly the day's (written as JSON, which is YAML).

    Each job's delay is ``now - day_end`` in whole seconds (its last due window ends at ``day_end``)
    and its lookback one day (a first run takes the latest whole windows covering it: its first starts
    at the day's start), as long as each job starts within a window of ``now``. The quality job's
    delay, at least 30 minutes, lets every label count.
    """
    delay = math.floor(now - day_end)
    window_jobs = {
        "predictions": {"lateness": delay, "initial_lookback": DAY},
        "quality": {"label_delay": delay, "initial_lookback": DAY, "timestamp_policy": "window_end"},
        "reproducibility": {"replay_delay": delay, "initial_lookback": DAY,
                            "timestamp_policy": "window_end", "atol": ATOL, "rtol": RTOL},
    }
    job_cfg: dict[str, Any] = {name: {**cfg, "enabled": name in jobs} for name, cfg in window_jobs.items()}
    job_cfg["training"] = {"features": [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES], "top_k": TOP_K,
                           "enabled": "training" in jobs}
    config = {
        "init_config": {"state_dir": str(workdir / "state"),
                        "datadog": {"transport": "jsonl", "jsonl_path": str(workdir / "metrics.jsonl")}},
        "instances": [{"name": "bench", "jobs": job_cfg,
                       "warehouse": {"engine": "duckdb", "path": str(warehouse), "memory_limit": memory_limit}}],
    }
    path = workdir / "conf.yaml"
    path.write_text(json.dumps(config, indent=1))
    return path


def run_agent(workdir: Path, warehouse: Path, day_end: float, jobs: list[str], models: int,
              repeat: int, memory_limit: str) -> dict[str, Any]:
    """``mlmon run --once`` in a child process (fresh state each time); the fastest of ``repeat`` runs."""
    best: dict[str, Any] = {}
    for _ in range(repeat):
        shutil.rmtree(workdir / "state", ignore_errors=True)
        (workdir / "metrics.jsonl").unlink(missing_ok=True)
        config = agent_config(workdir, warehouse, day_end, jobs, time.time(), memory_limit)
        log = workdir / "agent.log"
        run = run_child([sys.executable, "-m", "mlmon", "run", "--once", "--config", str(config),
                         "--log-level", "WARNING"], log)
        if run["returncode"] != 0:
            return {"skipped": f"failed (exit {run['returncode']}): {log_tail(log)}"}
        if not best or run["wall_s"] < best["wall_s"]:
            best = run
            best.update(read_agent_output(workdir / "metrics.jsonl", models))
    return best


def read_agent_output(path: Path, models: int) -> dict[str, Any]:
    """Self-metrics per job, and every model metric keyed like the floor's results (for the cross-check)."""
    jobs: dict[str, dict[str, float]] = {}
    values: dict[str, float] = {}
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if "metric" not in obj:
            continue
        tags = dict(t.split(":", 1) for t in obj["tags"] if ":" in t)
        ts, value = obj["points"][0]
        name = obj["metric"]
        if name.startswith("mlmon.agent."):
            jobs.setdefault(tags["job"], {})[name.removeprefix("mlmon.agent.")] = value
        elif name.startswith("mlmon.training."):
            values[key(name, tags["model"], tags.get("feature", ""), tags.get("value", ""))] = value
        else:
            values[key(name, tags["model"], tags.get("model_version", ""), ts)] = value
    for job, m in jobs.items():
        groups = models if job == "training" else m.get("windows_processed", 0) * models
        m["rows_per_model_window"] = m.get("rows_fetched", 0) / groups if groups else None
    return {"jobs": jobs, "values": values}


def key(*parts: Any) -> str:
    """``metric|model|version|window end`` (training: ``metric|model|feature|value``)."""
    return "|".join(str(p) for p in parts)


# -------------------------------------------------------------------------------------------- floor

FLOOR_PREDICTIONS = """
WITH base AS (
  SELECT model, model_version, CAST(FLOOR(EPOCH(ts) / 600) AS BIGINT) AS w, prediction AS p,
         COALESCE(prediction >= 0 AND prediction <= 1, false) AS ok
  FROM predictions
  WHERE model IS NOT NULL AND ts >= $start AND ts < $end
),
stats AS (
  SELECT model, model_version, w, COUNT(*) AS n, COUNT(*) FILTER (WHERE ok) AS n_valid,
         AVG(p) FILTER (WHERE ok) AS mean, STDDEV_SAMP(p) FILTER (WHERE ok) AS sd,
         MIN(p) FILTER (WHERE ok) AS lo, MAX(p) FILTER (WHERE ok) AS hi,
         QUANTILE_CONT(p, [0.05, 0.25, 0.5, 0.75, 0.95, 0.99]) FILTER (WHERE ok) AS q
  FROM base GROUP BY model, model_version, w
),
modes AS (
  SELECT model, model_version, w, MAX(c) AS mode_count
  FROM (SELECT model, model_version, w, COUNT(*) AS c FROM base WHERE ok GROUP BY model, model_version, w, p)
  GROUP BY model, model_version, w
)
SELECT s.model, s.model_version, (s.w + 1) * 600 AS window_end, s.n, s.n - s.n_valid, s.mean, s.sd, s.lo, s.hi,
       s.q, m.mode_count / s.n_valid
FROM stats AS s LEFT JOIN modes AS m USING (model, model_version, w)
ORDER BY 1, 2, 3
"""

#: the valid predictions of the day by hourly window, for the quality and reproducibility statements
_FLOOR_HOURLY_PREDS = """
WITH preds AS (
  SELECT request_id, model, model_version, CAST(FLOOR(EPOCH(ts) / 3600) AS BIGINT) AS w, prediction AS p
  FROM predictions
  WHERE model IS NOT NULL AND ts >= $start AND ts < $end AND prediction >= 0 AND prediction <= 1
),"""

# AUC = (rank sum of the positives - P(P+1)/2) / (P N), average ranks for ties: the labeled rows are
# grouped by score, ``upto`` counts the labeled rows at or below each score.
FLOOR_QUALITY = _FLOOR_HOURLY_PREDS + """
matched AS (
  SELECT pr.model, pr.model_version, pr.w, pr.p, MAX(l.label) FILTER (WHERE l.label IN (0, 1)) AS y
  FROM preds AS pr
  LEFT JOIN labels AS l ON l.request_id = pr.request_id
    AND (l.label_ts IS NULL OR EPOCH(l.label_ts) < (pr.w + 1) * 3600 + $label_delay)
  GROUP BY pr.model, pr.model_version, pr.w, pr.request_id, pr.p
),
ties AS (
  SELECT model, model_version, w, p, COUNT(*) AS c, COUNT(y) AS c_lab, COALESCE(SUM(y), 0) AS pos
  FROM matched GROUP BY model, model_version, w, p
),
ranked AS (
  SELECT *, SUM(c_lab) OVER (PARTITION BY model, model_version, w ORDER BY p
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS upto
  FROM ties
),
agg AS (
  SELECT model, model_version, w, SUM(c) AS n_valid, SUM(c_lab) AS n, SUM(pos) AS n_pos,
         SUM(p * c_lab) AS sum_p,
         SUM(-pos * LN(LEAST(GREATEST(p, $eps), 1 - $eps))
             - (c_lab - pos) * LN(LEAST(GREATEST(1 - p, $eps), 1 - $eps))) AS sum_ll,
         SUM(pos * (1 - p) * (1 - p) + (c_lab - pos) * p * p) AS sum_sq,
         SUM(pos * (upto - c_lab + (c_lab + 1) / 2.0)) AS rank_sum
  FROM ranked GROUP BY model, model_version, w
)
SELECT model, model_version, (w + 1) * 3600 AS window_end, n, n / n_valid, n_pos / NULLIF(n, 0),
       sum_p / NULLIF(n, 0), sum_ll / NULLIF(n, 0),
       (rank_sum - n_pos * (n_pos + 1) / 2.0) / NULLIF(n_pos * (n - n_pos), 0), sum_sq / NULLIF(n, 0)
FROM agg ORDER BY 1, 2, 3
"""

FLOOR_REPRODUCIBILITY = _FLOOR_HOURLY_PREDS + """
matched AS (
  SELECT pr.model, pr.model_version, pr.w, COUNT(r.prediction) AS n_rep,
         MAX(ABS(pr.p - r.prediction)) FILTER (WHERE r.prediction >= 0 AND r.prediction <= 1) AS diff,
         BOOL_AND(r.prediction >= 0 AND r.prediction <= 1
                  AND ABS(pr.p - r.prediction) <= $atol + $rtol * ABS(r.prediction))
           FILTER (WHERE r.prediction IS NOT NULL) AS same
  FROM preds AS pr
  LEFT JOIN replays AS r ON r.request_id = pr.request_id AND r.model_version = pr.model_version
  GROUP BY pr.model, pr.model_version, pr.w, pr.request_id, pr.p
)
SELECT model, model_version, (w + 1) * 3600 AS window_end,
       COUNT(*) FILTER (WHERE same) / NULLIF(COUNT(*) FILTER (WHERE n_rep > 0), 0),
       COUNT(*) FILTER (WHERE n_rep > 0), COUNT(*) FILTER (WHERE n_rep = 0), AVG(diff), MAX(diff)
FROM matched GROUP BY model, model_version, w ORDER BY 1, 2, 3
"""

_RUNS_CTE = """
runs AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY model ORDER BY trained_at DESC, model_version DESC) AS rn
  FROM training_runs WHERE model IS NOT NULL AND model_version IS NOT NULL AND trained_at IS NOT NULL
)"""

FLOOR_TRAINING_RUNS = f"""
WITH {_RUNS_CTE},
month AS (
  SELECT r.model, r.train_rows,
         ROW_NUMBER() OVER (PARTITION BY r.model ORDER BY r.trained_at DESC, r.model_version DESC) AS k
  FROM runs AS r JOIN runs AS l ON l.model = r.model AND l.rn = 1
  WHERE r.trained_at <= l.trained_at - INTERVAL 30 DAY
)
SELECT l.model, l.train_rows, l.valid_rows, l.valid_logloss, l.valid_auc,
       l.train_rows / NULLIF(p.train_rows, 0) - 1, l.train_rows / NULLIF(m.train_rows, 0) - 1,
       l.valid_logloss / NULLIF(p.valid_logloss, 0) - 1, l.valid_auc / NULLIF(p.valid_auc, 0) - 1,
       ($now - EPOCH(l.trained_at)) / 3600
FROM runs AS l
LEFT JOIN runs AS p ON p.model = l.model AND p.rn = 2
LEFT JOIN month AS m ON m.model = l.model AND m.k = 1
WHERE l.rn = 1 ORDER BY 1
"""


def floor_features_sql(numeric: tuple[str, ...], categorical: tuple[str, ...], top_k: int) -> str:
    """Feature metrics of each model's latest version (rn 1) vs the previous one (rn 2), long format."""
    num = " UNION ALL ".join(f"SELECT model, rn, '{f}' AS feature, CAST({f} AS DOUBLE) AS x FROM f" for f in numeric)
    cat = " UNION ALL ".join(f"SELECT model, rn, '{f}' AS feature, CAST({f} AS VARCHAR) AS v FROM f"
                             for f in categorical)
    deciles = ", ".join(str(k / 10) for k in range(1, 10))
    edge_columns = ", ".join(f"e[{k}] AS e{k}" for k in range(1, 10))  # NULL past the distinct edges
    below = " + ".join(f"CASE WHEN n.v > d.e{k} THEN 1 ELSE 0 END" for k in range(1, 10))
    return f"""
WITH {_RUNS_CTE},
f AS (SELECT r.rn, t.* FROM training_features AS t
      JOIN runs AS r ON r.model = t.model AND r.model_version = t.model_version AND r.rn <= 2),
num AS ({num}),
cat AS ({cat}),
num_counts AS (SELECT model, rn, feature, x AS v, COUNT(*) AS c FROM num WHERE isfinite(x) GROUP BY ALL),
cat_counts AS (
  SELECT model, rn, feature, v, COUNT(*) AS c,
         ROW_NUMBER() OVER (PARTITION BY model, rn, feature ORDER BY COUNT(*) DESC, v) AS k
  FROM cat WHERE v IS NOT NULL GROUP BY model, rn, feature, v
),
edges AS (
  SELECT model, feature, {edge_columns}
  FROM (SELECT model, feature, list_sort(list_distinct(quantile_disc(x, [{deciles}]))) AS e
        FROM num WHERE rn = 2 AND isfinite(x) GROUP BY ALL)
),
num_bins AS (  -- right-closed bins: the bin of v is the number of (distinct) edges below it
  SELECT n.model, n.rn, n.feature, n.c, {below} AS bin
  FROM num_counts AS n JOIN edges AS d USING (model, feature)
),
bins AS (
  SELECT model, rn, feature, CAST(bin AS VARCHAR) AS bin, SUM(c) AS c FROM num_bins GROUP BY ALL
  UNION ALL
  SELECT c.model, c.rn, c.feature, COALESCE(p.v, '__other__') AS bin, SUM(c.c) AS c
  FROM cat_counts AS c
  LEFT JOIN cat_counts AS p ON p.model = c.model AND p.feature = c.feature AND p.rn = 2 AND p.k <= {top_k}
    AND p.v = c.v
  GROUP BY ALL
),
shares AS (
  SELECT model, feature, bin,
         COALESCE(SUM(c) FILTER (WHERE rn = 1), 0) / SUM(SUM(c) FILTER (WHERE rn = 1)) OVER w AS cur,
         COALESCE(SUM(c) FILTER (WHERE rn = 2), 0) / SUM(SUM(c) FILTER (WHERE rn = 2)) OVER w AS ref
  FROM bins GROUP BY model, feature, bin
  WINDOW w AS (PARTITION BY model, feature)
),
psi AS (
  SELECT model, feature, SUM((cs - rs) * LN(cs / rs)) AS psi
  FROM (SELECT model, feature, CASE WHEN cur = 0 THEN {PSI_EPS} ELSE cur END AS cs,
               CASE WHEN ref = 0 THEN {PSI_EPS} ELSE ref END AS rs FROM shares)
  GROUP BY ALL
),
totals AS (
  SELECT model, feature, COUNT(*) AS n, COUNT(*) FILTER (WHERE isfinite(x)) AS n_valid,
         AVG(x) FILTER (WHERE isfinite(x)) AS mean, STDDEV_SAMP(x) FILTER (WHERE isfinite(x)) AS sd
  FROM num WHERE rn = 1 GROUP BY ALL
  UNION ALL
  SELECT model, feature, COUNT(*), COUNT(v), NULL, NULL FROM cat WHERE rn = 1 GROUP BY ALL
),
counts AS (
  SELECT model, feature, COUNT(*) AS distinct_count, MAX(c) AS mode_count FROM (
    SELECT model, rn, feature, CAST(v AS VARCHAR) AS v, c FROM num_counts UNION ALL
    SELECT model, rn, feature, v, c FROM cat_counts) WHERE rn = 1 GROUP BY ALL
),
metrics AS (
  SELECT t.model, t.feature, '' AS value,
         (t.n - t.n_valid) / t.n AS null_ratio, t.mean, CASE WHEN t.n_valid > 1 THEN t.sd END AS stddev,
         CAST(c.distinct_count AS DOUBLE) AS distinct_count, c.mode_count / t.n_valid AS same_value_ratio,
         p.psi AS psi_prev
  FROM totals AS t LEFT JOIN counts AS c USING (model, feature) LEFT JOIN psi AS p USING (model, feature)
)
SELECT * FROM (UNPIVOT metrics ON null_ratio, mean, stddev, distinct_count, same_value_ratio, psi_prev
               INTO NAME metric VALUE x)
UNION ALL
SELECT c.model, c.feature, c.v, 'value_share', c.c / t.n_valid
FROM cat_counts AS c JOIN totals AS t USING (model, feature) WHERE c.rn = 1 AND c.k <= {top_k}
UNION ALL
SELECT c.model, c.feature, '__other__', 'value_share', SUM(c.c) / ANY_VALUE(t.n_valid)
FROM cat_counts AS c JOIN totals AS t USING (model, feature) WHERE c.rn = 1 AND c.k > {top_k} GROUP BY ALL
"""


def utc(ts: float) -> datetime:
    """A naive UTC datetime, how the warehouse's TIMESTAMP columns are compared."""
    return datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None)


def child_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """The hand-written DuckDB statements, timed one by one; results in the cross-check's format.

    They run under the agent's DuckDB settings (same memory cap, same threads). A statement that runs
    out of memory there is run again, and timed, under DuckDB's default cap (80 % of RAM), and the
    result says so: the floor is then measured with more memory than the agent had.
    """
    import duckdb

    window = {"start": utc(spec["start"]), "end": utc(spec["end"])}
    eps = float(sys.float_info.epsilon)
    statements = {
        "predictions": (FLOOR_PREDICTIONS, window),
        "quality": (FLOOR_QUALITY, {**window, "label_delay": spec["label_delay"], "eps": eps}),
        "reproducibility": (FLOOR_REPRODUCIBILITY, {**window, "atol": ATOL, "rtol": RTOL}),
        "training_runs": (FLOOR_TRAINING_RUNS, {"now": spec["now"]}),
        "training_features": (floor_features_sql(NUMERIC_FEATURES, CATEGORICAL_FEATURES, TOP_K), {}),
    }

    # the agent's DuckDB settings (mlmon.warehouse.engines.DuckDBEngine): same memory cap, same threads
    con = duckdb.connect(spec["warehouse"], read_only=True,
                         config={"memory_limit": spec["memory_limit"], "preserve_insertion_order": False})
    con.execute("SET TimeZone = 'UTC'")
    settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                "('threads', 'memory_limit')").fetchall())
    seconds: dict[str, float] = {}
    rows: dict[str, list[tuple[Any, ...]]] = {}
    out_of_memory: list[str] = []
    for name, (sql, params) in statements.items():
        if name.split("_")[0] not in spec["jobs"]:
            continue
        t0 = time.perf_counter()
        try:
            rows[name] = con.execute(sql, params).fetchall()
        except duckdb.OutOfMemoryException:
            out_of_memory.append(name)
            con.execute("RESET memory_limit")  # DuckDB's default, for this statement only
            t0 = time.perf_counter()
            rows[name] = con.execute(sql, params).fetchall()
            seconds[name] = time.perf_counter() - t0
            con.execute(f"SET memory_limit = '{spec['memory_limit']}'")
            continue
        seconds[name] = time.perf_counter() - t0
    return {"settings": settings, "seconds": seconds, "result_rows": {k: len(v) for k, v in rows.items()},
            "out_of_memory": out_of_memory, "values": floor_values(rows)}


def floor_values(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, float | None]:
    """The floor's rows as ``metric|model|version|window end`` (training: ``|model|feature|value``) -> value."""
    out: dict[str, float | None] = {}
    for model, version, end, n, invalid, mean, sd, lo, hi, q, mode_ratio in rows.get("predictions", []):
        named = {"count": n, "invalid_count": invalid, "mean": mean, "stddev": sd, "min": lo, "max": hi,
                 "same_value_ratio": mode_ratio, **dict(zip((n for n, _ in QUANTILES), q or (), strict=False))}
        out.update({key(f"mlmon.prediction.{m}", model, version, end): v for m, v in named.items()})
    names = ("labeled_count", "label_coverage", "positive_rate", "mean_prediction", "logloss", "auc", "brier")
    for model, version, end, *values in rows.get("quality", []):
        out.update({key(f"mlmon.online.{m}", model, version, end): v for m, v in zip(names, values, strict=True)})
    names = ("rate", "checked_count", "missing_count", "mean_abs_diff", "max_abs_diff")
    for model, version, end, *values in rows.get("reproducibility", []):
        out.update({key(f"mlmon.reproducibility.{m}", model, version, end): v
                    for m, v in zip(names, values, strict=True)})
    names = ("rows", "valid_rows", "valid_logloss", "valid_auc", "rows_change_prev", "rows_change_30d",
             "valid_logloss_change_prev", "valid_auc_change_prev", "model_age_hours")
    for model, *values in rows.get("training_runs", []):
        out.update({key(f"mlmon.training.{m}", model, "", ""): v for m, v in zip(names, values, strict=True)})
    for model, feature, value, metric, x in rows.get("training_features", []):
        out[key(f"mlmon.training.feature.{metric}", model, feature, value)] = x
    return {k: (float(v) if v is not None else None) for k, v in out.items()}


# ------------------------------------------------------------------------------------------- pandas


def child_pandas(spec: dict[str, Any]) -> dict[str, Any]:
    """Load the day with ``.df()``, then per (model, window) NumPy and scikit-learn."""
    import duckdb

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    con = duckdb.connect(spec["warehouse"], read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    window = [utc(spec["start"]), utc(spec["end"])]
    preds = con.execute("SELECT * FROM predictions WHERE ts >= ? AND ts < ?", window).df()
    labels = con.execute("SELECT * FROM labels").df() if "quality" in spec["jobs"] else None
    replays = con.execute("SELECT * FROM replays").df() if "reproducibility" in spec["jobs"] else None
    seconds["load"] = time.perf_counter() - t0
    values: dict[str, float | None] = {}
    sections = {
        "predictions": lambda: pandas_predictions(preds),
        "quality": lambda: pandas_quality(preds, labels, spec["label_delay"]),
        "reproducibility": lambda: pandas_reproducibility(preds, replays),
        "training": lambda: pandas_training(con, spec["now"]),
    }
    for job, compute in sections.items():
        if job in spec["jobs"]:
            t0 = time.perf_counter()
            values.update(compute())
            seconds[job] = time.perf_counter() - t0
    return {"seconds": seconds, "values": values}


def _window_end(ts: Any, width: int) -> Any:
    """Unix time of the end of the ``width``-second window of each timestamp."""
    seconds = ts.astype("datetime64[s]").astype("int64")
    return (seconds // width + 1) * width


def pandas_predictions(preds: Any) -> dict[str, float | None]:
    """Per (model, version, 10-minute window): NumPy statistics of the valid predictions."""
    import numpy as np

    preds["w10"] = _window_end(preds["ts"], PREDICTION_WINDOW)
    out: dict[str, float | None] = {}
    for (model, version, end), g in preds.groupby(["model", "model_version", "w10"], sort=True):
        p = g["prediction"].to_numpy(dtype=float)
        valid = p[(p >= 0) & (p <= 1)]
        stats: dict[str, float | None] = {"count": p.size, "invalid_count": p.size - valid.size}
        if valid.size:
            qs = np.quantile(valid, [q for _, q in QUANTILES])
            stats.update(mean=valid.mean(), min=valid.min(), max=valid.max(),
                         same_value_ratio=np.unique(valid, return_counts=True)[1].max() / valid.size,
                         **{name: q for (name, _), q in zip(QUANTILES, qs, strict=True)})
        if valid.size > 1:
            stats["stddev"] = valid.std(ddof=1)
        out.update({key(f"mlmon.prediction.{m}", model, version, end): float(v) for m, v in stats.items()})
    return out


def _valid(preds: Any) -> Any:
    return preds[(preds["prediction"] >= 0) & (preds["prediction"] <= 1)]


def pandas_quality(preds: Any, labels: Any, label_delay: float) -> dict[str, float | None]:
    """One label row per request is assumed (true of the generated data), as a hand-written job would."""
    import pandas as pd
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    df = _valid(preds)[["request_id", "model", "model_version", "ts", "prediction"]]
    df = df.assign(w60=_window_end(df["ts"], ONLINE_WINDOW)).merge(labels, on="request_id", how="left")
    deadline = pd.to_datetime(df["w60"] + label_delay, unit="s")
    df["label"] = df["label"].astype("float64").where(~(df["label_ts"] >= deadline))  # not matured: no label
    out: dict[str, float | None] = {}
    for (model, version, end), g in df.groupby(["model", "model_version", "w60"], sort=True):
        lab = g[g["label"].isin([0, 1])]
        y, p = lab["label"].to_numpy(dtype=int), lab["prediction"].to_numpy(dtype=float)
        stats: dict[str, float | None] = {"labeled_count": len(y), "label_coverage": len(y) / len(g)}
        if len(y):
            stats.update(positive_rate=y.mean(), mean_prediction=p.mean(), brier=brier_score_loss(y, p),
                         logloss=log_loss(y, p, labels=[0, 1]))
        if 0 < y.sum() < len(y):
            stats["auc"] = roc_auc_score(y, p)
        out.update({key(f"mlmon.online.{m}", model, version, end): float(v) for m, v in stats.items()})
    return out


def pandas_reproducibility(preds: Any, replays: Any) -> dict[str, float | None]:
    """One replay row per request is assumed (true of the generated data)."""
    import numpy as np

    df = _valid(preds)[["request_id", "model", "model_version", "ts", "prediction"]]
    df = df.assign(w60=_window_end(df["ts"], ONLINE_WINDOW)).merge(
        replays, on=["request_id", "model_version"], how="left", suffixes=("", "_replay"))
    r = df["prediction_replay"].to_numpy(dtype=float)
    p = df["prediction"].to_numpy(dtype=float)
    in_range = (r >= 0) & (r <= 1)
    df["checked"] = ~np.isnan(r)
    df["same"] = in_range & np.isclose(p, r, atol=ATOL, rtol=RTOL)
    df["diff"] = np.where(in_range, np.abs(p - r), np.nan)
    out: dict[str, float | None] = {}
    for (model, version, end), g in df.groupby(["model", "model_version", "w60"], sort=True):
        checked = int(g["checked"].sum())
        stats: dict[str, float | None] = {"checked_count": checked, "missing_count": len(g) - checked}
        if checked:
            stats.update(rate=g["same"].sum() / checked, mean_abs_diff=g["diff"].mean(), max_abs_diff=g["diff"].max())
        out.update({key(f"mlmon.reproducibility.{m}", model, version, end): float(v) for m, v in stats.items()})
    return out


def pandas_training(con: Any, now: float) -> dict[str, float | None]:
    """Lineage and feature metrics (tiny data)."""
    import numpy as np

    runs = con.execute("SELECT * FROM training_runs").df().sort_values(
        ["model", "trained_at", "model_version"], ascending=[True, False, False])
    feats = con.execute("SELECT * FROM training_features").df()
    out: dict[str, float | None] = {}
    for model, g in runs.groupby("model"):
        latest, prev = g.iloc[0], g.iloc[1]
        month = g[g["trained_at"] <= latest["trained_at"] - np.timedelta64(30, "D")]
        stats = {"rows": latest["train_rows"], "rows_change_prev": latest["train_rows"] / prev["train_rows"] - 1,
                 "model_age_hours": (now - latest["trained_at"].timestamp()) / 3600}
        if len(month):
            stats["rows_change_30d"] = latest["train_rows"] / month.iloc[0]["train_rows"] - 1
        out.update({key(f"mlmon.training.{m}", model, "", ""): float(v) for m, v in stats.items()})
        cur = feats[(feats["model"] == model) & (feats["model_version"] == latest["model_version"])]
        old = feats[(feats["model"] == model) & (feats["model_version"] == prev["model_version"])]
        for feature in NUMERIC_FEATURES:
            x = cur[feature].to_numpy(dtype=float)
            valid = x[np.isfinite(x)]
            ref = old[feature].to_numpy(dtype=float)
            ref = ref[np.isfinite(ref)]
            edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10, method="inverted_cdf"))
            stats = {"null_ratio": 1 - valid.size / x.size, "mean": valid.mean(), "stddev": valid.std(ddof=1),
                     "distinct_count": np.unique(valid).size,
                     "same_value_ratio": np.unique(valid, return_counts=True)[1].max() / valid.size,
                     "psi_prev": _psi(np.searchsorted(edges, ref, side="left"),
                                      np.searchsorted(edges, valid, side="left"), edges.size + 1)}
            out.update({key(f"mlmon.training.feature.{m}", model, feature, ""): float(v) for m, v in stats.items()})
    return out


def _psi(ref_bins: Any, cur_bins: Any, bins: int) -> float:
    import numpy as np

    ref = np.bincount(ref_bins, minlength=bins) / len(ref_bins)
    cur = np.bincount(cur_bins, minlength=bins) / len(cur_bins)
    ref, cur = np.where(ref == 0, PSI_EPS, ref), np.where(cur == 0, PSI_EPS, cur)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


# ---------------------------------------------------------------------------------------- Evidently

EVIDENTLY_FRAME = """
SELECT p.prediction, l.label, p.ts
FROM predictions AS p JOIN labels AS l USING (request_id)
WHERE p.ts >= ? AND p.ts < ? AND p.prediction >= 0 AND p.prediction <= 1 AND l.label IN (0, 1)
"""


def child_evidently(spec: dict[str, Any], preset: str) -> dict[str, Any]:
    """Evidently's classification-quality or data-drift report over the day's labeled valid predictions."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    import duckdb
    import evidently

    seconds["import"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    con = duckdb.connect(spec["warehouse"], read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    frame = con.execute(EVIDENTLY_FRAME, [utc(spec["start"]), utc(spec["end"])]).df()
    first_hour = frame["ts"] < utc(spec["start"] + ONLINE_WINDOW)
    reference = frame.loc[first_hour].drop(columns="ts") if preset == "drift" else None
    frame = frame.drop(columns="ts")
    seconds["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = _evidently_report(frame, reference, preset)
    seconds["report"] = time.perf_counter() - t0
    return {"version": evidently.__version__, "frame_rows": len(frame), "seconds": seconds, "summary": summary}


def _evidently_report(frame: Any, reference: Any, preset: str) -> dict[str, Any]:
    """Run the report with the installed API (0.7+: Report/Dataset/DataDefinition; older: metric_preset)."""
    try:
        from evidently import BinaryClassification, DataDefinition, Dataset, Report
        from evidently.presets import ClassificationPreset, DataDriftPreset
    except ImportError:
        return _evidently_legacy_report(frame, reference, preset)
    definition = DataDefinition(
        classification=[BinaryClassification(target="label", prediction_probas="prediction")],
        numerical_columns=["prediction"], categorical_columns=["label"])

    def dataset(df: Any) -> Any:
        return Dataset.from_pandas(df, data_definition=definition) if df is not None else None

    report = Report([ClassificationPreset() if preset == "classification" else DataDriftPreset()])
    metrics = report.run(current_data=dataset(frame), reference_data=dataset(reference)).dict()["metrics"]
    wanted = ("RocAuc(", "LogLoss(", "ValueDrift(column=prediction")
    names = [(m.get("metric_name") or m.get("metric_id") or "", m.get("value")) for m in metrics]
    return {name: value for name, value in names if name.startswith(wanted)}


def _evidently_legacy_report(frame: Any, reference: Any, preset: str) -> dict[str, Any]:
    """Evidently before 0.7: ``evidently.report.Report`` with ``metric_preset`` and a column mapping."""
    from evidently.metric_preset import ClassificationPreset, DataDriftPreset
    from evidently.report import Report

    try:
        from evidently import ColumnMapping
    except ImportError:
        from evidently.pipeline.column_mapping import ColumnMapping
    report = Report(metrics=[ClassificationPreset() if preset == "classification" else DataDriftPreset()])
    report.run(reference_data=reference, current_data=frame,
               column_mapping=ColumnMapping(target="label", prediction="prediction"))
    return {"metrics": len(report.as_dict()["metrics"])}


def evidently_version(python: str) -> tuple[str | None, str]:
    """Evidently's version in ``python``, or why it cannot be used there."""
    probe = subprocess.run([python, "-c", "import duckdb, evidently; print(evidently.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"not importable in {python}: {last}"
    return probe.stdout.strip(), ""


# -------------------------------------------------------------------------------------- cross-check


def compare(name: str, ours: dict[str, float | None], theirs: dict[str, float], tol: float = 1e-9) -> list[str]:
    """One line per metric family: groups compared, the largest relative difference, agree/differ."""
    by_family: dict[str, list[float]] = {}
    missing: dict[str, int] = {}
    for k, v in ours.items():
        family = ".".join(k.split("|")[0].split(".")[:2])
        if "model_age_hours" in k:  # depends on when each side read the clock
            continue
        other = theirs.get(k)
        if v is None and other is None:
            continue
        if v is None or other is None:
            missing[family] = missing.get(family, 0) + 1
            continue
        by_family.setdefault(family, []).append(abs(v - other) / max(1.0, abs(v)))
    lines = []
    for family in sorted(set(by_family) | set(missing)):
        diffs = by_family.get(family, [])
        worst = max(diffs, default=0.0)
        verdict = "agree" if worst <= tol and not missing.get(family) else "differ"
        lines.append(f"{name} {family}.*: {len(diffs)} values, max relative difference {worst:.1e}"
                     f"{f', {missing[family]} missing on one side' if missing.get(family) else ''}: {verdict}")
    return lines


def spot_checks(floor: dict[str, float | None], agent: dict[str, float]) -> list[str]:
    """The brief's checks: count and mean per model over the day, logloss of one model-hour."""
    lines = []
    per_model: dict[str, list[float]] = {}
    for source, values in (("floor", floor), ("agent", agent)):
        for k, v in values.items():
            metric, model, _, _ = k.split("|")
            if metric == "mlmon.prediction.count" and v is not None:
                valid = v - (values.get(k.replace(".count|", ".invalid_count|")) or 0)
                mean = values.get(k.replace(".count|", ".mean|")) or 0.0
                acc = per_model.setdefault(f"{source}|{model}", [0.0, 0.0, 0.0])
                acc[0] += v
                acc[1] += valid
                acc[2] += mean * valid
    for model in sorted({k.split("|")[1] for k in per_model}):
        f, a = per_model.get(f"floor|{model}"), per_model.get(f"agent|{model}")
        if f and a:
            same = f[0] == a[0] and math.isclose(f[2] / f[1], a[2] / a[1], rel_tol=1e-9)
            lines.append(f"{model}: count over the day {f[0]:,.0f} / {a[0]:,.0f}, mean {f[2] / f[1]:.9f} / "
                         f"{a[2] / a[1]:.9f} (floor / agent): {'agree' if same else 'differ'}")
            break  # one model is enough on the screen; every window is compared below
    logloss = sorted(k for k in floor if k.startswith("mlmon.online.logloss|"))
    if logloss:
        k = logloss[len(logloss) // 2]
        f, a = floor[k], agent.get(k)
        same = f is not None and a is not None and math.isclose(f, a, rel_tol=1e-9)
        hour = datetime.fromtimestamp(float(k.split("|")[3]) - ONLINE_WINDOW, timezone.utc).strftime("%H:00")
        lines.append(f"{k.split('|')[1]} logloss of the hour from {hour} UTC: {f} / {a} (floor / agent): "
                     f"{'agree' if same else 'differ'}")
    return lines


# ------------------------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    """CPU, cores, RAM and library versions of this machine and interpreter."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "ram_gb": round(mem_kb / 1024**2, 1), "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            **{dist: version(dist) for dist in ("duckdb", "pandas", "scikit-learn", "mlmon")}}


def table(results: dict[str, dict[str, Any]], rows: int) -> list[str]:
    """The comparison table, Markdown."""
    floor_wall = results.get("floor", {}).get("wall_s")
    agent_wall = results.get("agent", {}).get("wall_s")
    out = ["| contender | wall time (s) | rows/s | peak RSS (MB) | wall / floor | agent's rows/s ÷ contender's |",
           "|---|---:|---:|---:|---:|---:|"]
    for name in CONTENDERS:
        r = results.get(name)
        if r is None:
            continue
        if "wall_s" not in r:
            out.append(f"| {name} | skipped: {r.get('skipped', '?').splitlines()[0]} | | | | |")
            continue
        wall = r["wall_s"]
        vs_floor = f"{wall / floor_wall:.2f}" if floor_wall else "n/a"
        speedup = f"{wall / agent_wall:.2f}" if agent_wall else "n/a"
        out.append(f"| {name} | {wall:.2f} | {rows / wall:,.0f} | {r['peak_rss_mb']:.0f} | {vs_floor} | {speedup} |")
    return out


def details(results: dict[str, dict[str, Any]], rows: int) -> list[str]:
    """Per-job and per-phase seconds of each contender, and the agent's rows fetched per (model, window)."""
    lines = []
    agent = results.get("agent", {})
    for job, m in agent.get("jobs", {}).items():
        per = m.get("rows_per_model_window")
        unit = "model" if job == "training" else "(model, window)"
        lines.append(f"agent job {job:<15} {m.get('run.duration_seconds', 0):7.2f} s, "
                     f"{m.get('windows_processed', 0):4.0f} windows, {m.get('rows_fetched', 0):9,.0f} rows fetched"
                     f"{f' = {per:,.1f} per {unit}' if per is not None else ''}, errors {m.get('run.errors', 0):.0f}")
    if agent.get("jobs"):
        busy = sum(m.get("run.duration_seconds", 0) for m in agent["jobs"].values())
        lines.append(f"agent jobs together      {busy:.2f} s of its {agent['wall_s']:.2f} s wall time "
                     "(the rest: interpreter start-up, imports, config, state)")
    for name in CONTENDERS[1:]:
        r = results.get(name, {})
        if r.get("seconds"):
            phases = ", ".join(f"{k} {v:.2f} s" for k, v in r["seconds"].items())
            lines.append(f"{name:<24} {phases}")
    floor = results.get("floor", {})
    if floor.get("result_rows"):
        counts = ", ".join(f"{k} {v:,}" for k, v in floor["result_rows"].items())
        lines.append(f"floor result rows: {counts} (DuckDB settings {floor.get('settings')})")
        if floor.get("out_of_memory"):
            lines.append(f"floor statements out of memory under the agent's memory_limit, run again and timed "
                         f"under DuckDB's default (80 % of RAM): {', '.join(floor['out_of_memory'])}")
    for name in ("evidently-classification", "evidently-drift"):
        r = results.get(name, {})
        if r.get("summary"):
            report_s = r["seconds"]["report"]
            lines.append(f"{name}: {r['frame_rows']:,} rows in the frame, report alone {report_s:.2f} s = "
                         f"{rows / report_s:,.0f} prediction rows/s; {json.dumps(r['summary'])}")
    return lines


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=float, default=1e6, help="prediction rows of the day (default 1e6)")
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mlmon-bench"))
    parser.add_argument("--skip", default="", help="comma-separated contenders to skip: agent, floor, pandas, "
                        "evidently")
    parser.add_argument("--jobs", nargs="+", default=list(ALL_JOBS), choices=ALL_JOBS,
                        help="jobs to run (default: all four); the floor and pandas compute the same ones")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse and outputs in --dir")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse --dir's warehouse if it was generated with the same --rows and --models")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender; the fastest is reported")
    parser.add_argument("--pandas-max-rows", type=float, default=1e7,
                        help="skip pandas above this many rows (default 1e7: it holds the day, labels and replays "
                        "in memory, about 0.7 GB per million rows)")
    parser.add_argument("--evidently-max-rows", type=float, default=3e7,
                        help="skip Evidently above this many rows (default 3e7: about 0.3 GB per million rows)")
    parser.add_argument("--memory-limit",
                        help="DuckDB's memory_limit for the agent (its warehouse setting) and the floor alike "
                        "(default: the agent's default)")
    parser.add_argument("--evidently-python", default=sys.executable,
                        help="interpreter with evidently, duckdb and pandas < 3 (default: this one)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child_main(name: str, spec: dict[str, Any]) -> int:
    """Run one contender in this (child) process and print its result line."""
    run = {"floor": child_floor, "pandas": child_pandas,
           "evidently-classification": lambda s: child_evidently(s, "classification"),
           "evidently-drift": lambda s: child_evidently(s, "drift")}[name]
    result = run(spec)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def prepare(args: argparse.Namespace, rows: int, warehouse: Path) -> tuple[float, float | None]:
    """The day's end and the generation time (None when an earlier warehouse is reused)."""
    day_end = existing_day(warehouse, rows, args.models) if args.reuse else None
    if day_end is not None:
        return day_end, None
    # a whole hour, at least 30 minutes ago: every window of every job is due, every label has arrived
    day_end = math.floor((time.time() - 1800) / ONLINE_WINDOW) * ONLINE_WINDOW
    t0 = time.perf_counter()
    generate(warehouse, rows, args.models, day_end)
    return day_end, time.perf_counter() - t0


def run_all(args: argparse.Namespace, rows: int, warehouse: Path, day_end: float) -> dict[str, dict[str, Any]]:
    """Every contender not skipped, one after the other, each in its own child process."""
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    results: dict[str, dict[str, Any]] = {}
    if "agent" not in skip:
        print("running the agent ...", flush=True)
        results["agent"] = run_agent(args.dir, warehouse, day_end, args.jobs, args.models, args.repeat,
                                     args.memory_limit)
    now = time.time()
    spec = {"warehouse": str(warehouse), "start": day_end - DAY, "end": day_end, "jobs": args.jobs,
            "label_delay": float(math.floor(now - day_end)), "now": now, "memory_limit": args.memory_limit}
    if "floor" not in skip:
        print("running the floor ...", flush=True)
        results["floor"] = run_contender("floor", sys.executable, spec, args.dir, args.repeat)
    if "pandas" not in skip:
        if rows > args.pandas_max_rows:
            results["pandas"] = {"skipped": f"over --pandas-max-rows {args.pandas_max_rows:.0e}"}
        else:
            print("running pandas + scikit-learn ...", flush=True)
            results["pandas"] = run_contender("pandas", sys.executable, spec, args.dir, args.repeat)
    if "evidently" not in skip:
        results.update(run_evidently(args, rows, spec, skip))
    return results


def run_evidently(
    args: argparse.Namespace, rows: int, spec: dict[str, Any], skip: set[str]
) -> dict[str, dict[str, Any]]:
    """The two Evidently reports (classification: for the quality job; drift: for predictions)."""
    wanted = {"evidently-classification": "quality", "evidently-drift": "predictions"}
    names = [n for n, job in wanted.items() if job in args.jobs and n not in skip]
    version, why = evidently_version(args.evidently_python)
    if version is None or rows > args.evidently_max_rows:
        why = why or f"over --evidently-max-rows {args.evidently_max_rows:.0e}"
        return {n: {"skipped": why} for n in names}
    out = {}
    for name in names:
        print(f"running {name} ...", flush=True)
        out[name] = run_contender(name, args.evidently_python, spec, args.dir, args.repeat)
    return out


def report(
    args: argparse.Namespace, rows: int, gen_s: float | None, results: dict[str, dict[str, Any]], info: dict[str, Any]
) -> dict[str, Any]:
    """Print the machine, the table, the details and the cross-checks; return the figures."""
    ev = next((r["version"] for r in results.values() if r.get("version")), None)
    info["evidently"] = ev or "not run"
    lines = [f"machine: {info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), {info['ram_gb']} GB "
             f"RAM; Python {info['python']}, DuckDB {info['duckdb']}, pandas {info['pandas']}, scikit-learn "
             f"{info['scikit-learn']}, Evidently {info['evidently']}; load average {info['load_average_1m']} "
             "before the run (other work on the machine slows every contender)",
             f"data: {rows:,} predictions over one day, {args.models} models; generated in DuckDB SQL in "
             + (f"{gen_s:.1f} s" if gen_s is not None else "an earlier run (--reuse)"),
             "", *table(results, rows), "", *details(results, rows)]
    agent_values = results.get("agent", {}).get("values")
    floor_values = results.get("floor", {}).get("values")
    pandas_values = results.get("pandas", {}).get("values")
    checks: list[str] = []
    if agent_values and floor_values:
        checks += spot_checks(floor_values, agent_values) + compare("floor vs agent", floor_values, agent_values)
    if pandas_values and (agent_values or floor_values):
        versus = "agent" if agent_values else "floor"
        checks += compare(f"pandas vs {versus}", pandas_values, agent_values or floor_values)
    for name, r in results.items():
        if "skipped" in r:
            checks.append(f"{name} skipped: {r['skipped']}")
    print("\n".join([*lines, "", *checks]))
    return {"rows": rows, "models": args.models, "jobs": args.jobs, "generate_s": gen_s, "machine": info,
            "results": {n: {k: v for k, v in r.items() if k != "values"} for n, r in results.items()},
            "checks": checks}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, json.loads(args.spec))
    if args.memory_limit is None:  # here, not at import: Evidently's interpreter has no mlmon
        from mlmon.config import DuckDBWarehouse

        args.memory_limit = DuckDBWarehouse.model_fields["memory_limit"].default
    rows = int(args.rows)
    info = machine()
    args.dir.mkdir(parents=True, exist_ok=True)
    warehouse = args.dir / "warehouse.duckdb"
    day_end, gen_s = prepare(args, rows, warehouse)
    results = run_all(args, rows, warehouse, day_end)
    figures = report(args, rows, gen_s, results, info)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    if not args.keep:
        for name in ("warehouse.duckdb", "warehouse.duckdb.wal", "metrics.jsonl", "conf.yaml", "state",
                     *(f"{c}.log" for c in CONTENDERS)):
            path = args.dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
