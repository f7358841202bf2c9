"""The serving_features job over one day of predictions, against hand-written DuckDB SQL for the same statistics.

    .venv/bin/python benchmarks/serving.py [--rows 1e7] [--models 8] [--training-rows 20000] [--repeat 3]
        [--dir /tmp/mlmon-serving] [--memory-limit 256MB] [--keep] [--reuse] [--profile] [--json out.json]

Generates, in DuckDB SQL (``range()`` and ``random()``, no Python loop) and in a child process, a warehouse
holding one day of ``--rows`` predictions (default 10^7) spread evenly over ``--models`` models (default 8),
one version ``v1`` each, with three serving feature columns in ``predictions``:

* ``age``: whole years 18..67 (DOUBLE), 3 % NULL and 1 % NaN;
* ``device``: text, ``ios`` 45 %, ``android`` 35 %, ``web`` 14 %, ``tablet`` 5 %, ``desktop`` ~1 % (minus the
  rest), 1 % NULL and 0.05 % ``smart_tv``, a value no training row has;
* ``bid_floor``: a continuous DOUBLE (lognormal, about one distinct value per row), 0.5 % NULL, 0.01 % +inf;

and ``training_features``: ``--training-rows`` rows (default 20 000) per (model, version) for ``v1`` (the serving
version, same distributions without ``smart_tv``) and ``v0`` (an older version, shifted: it must not count).
The day ends at the last whole hour ``H`` with ``H + 5 min`` past (the job's default ``lateness``): a first run
of ``serving_features`` (1 h windows, ``initial_lookback: 1d``) at the wall-clock moment processes exactly the
day's 24 hourly windows (``mlmon.jobs.windows.due_windows``: the 24 latest windows whose end + lateness has
passed). Should a run start after the next ``H + 1 h + 5 min``, its config sets ``lateness`` to ``now - H`` (the
same 24 windows; the output says so).

Then ``--repeat`` times (default 3), alternating, each in its own child process:

* ``agent``: ``mlmon run --once`` with only ``serving_features`` enabled (``features: [age, device, bid_floor]``,
  ``categorical: [device]``, ``timestamp_policy: window_end``, the rest its defaults: top_k 10, psi_min_rows
  300), a fresh state directory and a JSON Lines sink; DuckDB under the agent's ``memory_limit`` (256MB by
  default, ``--memory-limit`` changes it);
* ``floor``: one hand-written DuckDB statement (:func:`floor_sql`) computing the same statistics for the same
  (model, version, window, feature) groups, read-only on the same file with DuckDB's defaults (memory_limit
  80 % of RAM, one thread per core, insertion order kept).

Wall time (spawn to exit: interpreter start-up and imports included), CPU time (user + sys) and peak RSS come
from ``os.wait4`` (``ru_maxrss`` of that child). The parent never opens DuckDB: the build, the floor and the
profile run in child processes, so that no child inherits the parent's high-water RSS. It prints min and median
of each, the ratio agent / floor of the medians (issue 17's target: within 2x), and the cross-check: every value
the agent sent (each run) against the floor's (first run), relative difference at most 1e-9, no value on one
side only. ``--profile`` adds, once, DuckDB's profile (``enable_profiling = 'json'``, the equivalent of EXPLAIN
ANALYZE) of the agent's statement (built by ``mlmon.warehouse.serving.build_serving_query``, rendered with
``mlmon.warehouse.sql.render``, run under the agent's settings) and of the floor's: the costliest operators of
each. A last line ``BENCH_RESULT {json}`` (also written to ``--json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

HOUR = 3600
DAY = 86400
LATENESS = 300  # the serving_features job's default
WINDOWS = 24
NUMERIC = ("age", "bid_floor")
CATEGORICAL = ("device",)
FEATURES = ("age", "device", "bid_floor")  # the job's order
UNSEEN_VALUE = "smart_tv"
TOP_K = 10  # the job's default top_k
PSI_MIN_ROWS = 300  # the job's default psi_min_rows
PSI_BINS = 10
PSI_EPS = 1e-4  # mlmon.metrics.drift.PSI_EPS
OTHER_VALUE = "__other__"
GENERATOR = "serving-1"  # bump when the generated data changes: --reuse then rebuilds
REL_TOL = 1e-9
RESULT_PREFIX = "BENCH_RESULT "
CHILD_PREFIX = "SERVING_CHILD "


# ----------------------------------------------------------------------------------------------- data

# one draw per row and column (r1..r4 uniform, z normal); the same expressions for serving and training rows
_AGE = "CASE WHEN r1 < 0.03 THEN NULL WHEN r1 < 0.04 THEN 'NaN'::DOUBLE ELSE 18 + floor(r2 * 50) END"
_DEVICE = ("CASE WHEN r3 < 0.01 THEN NULL WHEN r3 < 0.46 THEN 'ios' WHEN r3 < 0.81 THEN 'android' "
           "WHEN r3 < 0.95 THEN 'web' WHEN r3 < 0.99 THEN 'tablet' ELSE 'desktop' END")
_BID = "CASE WHEN r4 < 0.005 THEN NULL WHEN r4 < 0.0051 THEN 'inf'::DOUBLE ELSE exp(-0.5 + 0.8 * z) END"
_DRAWS = ("random() AS r1, random() AS r2, random() AS r3, random() AS r4, "
          "sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random()) AS z")


def generate(path: Path, rows: int, models: int, training_rows: int, end: int) -> dict[str, float]:
    """Write the warehouse: the day ``[end - 1 day, end)`` and the training rows; seconds per table."""
    import duckdb

    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    start_us = (end - DAY) * 10**6
    seconds = {}
    t0 = time.perf_counter()
    con.execute(
        f"""
        CREATE TABLE predictions AS
        SELECT 'req-' || i AS request_id,
               make_timestamp(CAST({start_us} + (i::HUGEINT * {DAY * 10**6}) // {rows} AS BIGINT)) AS ts,
               'model_' || (i % {models}) AS model, 'v1' AS model_version,
               1 / (1 + exp(-(-3.0 + 0.9 * z))) AS prediction,
               {_AGE} AS age,
               CASE WHEN r3 >= 0.01 AND r3 < 0.0105 THEN '{UNSEEN_VALUE}' ELSE {_DEVICE} END AS device,
               {_BID} AS bid_floor
        FROM (SELECT range AS i, {_DRAWS} FROM range({rows}))
        """
    )
    seconds["predictions"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    con.execute(
        f"""
        CREATE TABLE training_features AS
        SELECT 'model_' || m AS model, v AS model_version,
               CASE WHEN v = 'v1' THEN {_AGE} ELSE {_AGE} + 5 END AS age,
               {_DEVICE} AS device,
               CASE WHEN v = 'v1' THEN {_BID} ELSE 2 * {_BID} END AS bid_floor
        FROM range({models}) a(m), (VALUES ('v1'), ('v0')) b(v), (SELECT {_DRAWS} FROM range({training_rows}))
        """
    )
    seconds["training_features"] = time.perf_counter() - t0
    con.execute("CREATE TABLE bench_meta AS SELECT $g AS generator, $rows AS rows, $models AS models, "
                "$training AS training_rows, $end AS day_end",
                {"g": GENERATOR, "rows": rows, "models": models, "training": training_rows, "end": end})
    t0 = time.perf_counter()
    con.execute("CHECKPOINT")
    con.close()
    seconds["checkpoint"] = time.perf_counter() - t0
    return seconds


def existing(path: Path, rows: int, models: int, training_rows: int) -> int | None:
    """The day's end of a warehouse built earlier with the same sizes and generator (``--reuse``)."""
    import duckdb

    if not path.exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
        row = con.execute("SELECT generator, rows, models, training_rows, day_end FROM bench_meta").fetchone()
        con.close()
    except duckdb.Error:
        return None
    return int(row[4]) if row and tuple(row[:4]) == (GENERATOR, rows, models, training_rows) else None


def day_end_at(now: float) -> int:
    """The end of the latest hourly window due at ``now`` under the default lateness (``due_windows``)."""
    return math.floor((now - LATENESS) / HOUR) * HOUR


def file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + ".wal")) if p.exists())


# ---------------------------------------------------------------------------------------------- floor


def floor_sql(numeric: tuple[str, ...] = NUMERIC, categorical: tuple[str, ...] = CATEGORICAL,
              top_k: int = TOP_K, min_rows: int = PSI_MIN_ROWS) -> str:
    """One statement, long format: ``model, model_version, window_end, feature, value, metric, x``.

    Written feature by feature the way one would by hand: one pass of aggregates per (model, version, window)
    over the day's rows, one value-count aggregate per feature (distinct count, modal count, top K, PSI bins and
    unseen values all come from it), the training rows' decile edges by ``quantile_disc`` (the inverted CDF,
    as the agent's definition) and their top K, then PSI over the bins with empty shares set to 1e-4.
    """
    def clean(f: str) -> str:  # numeric: NULL, NaN and +-inf are missing
        return f"CASE WHEN isfinite({f}) THEN {f} END AS {f}" if f in numeric else f"CAST({f} AS VARCHAR) AS {f}"

    features = (*numeric, *categorical)
    cleaned = ", ".join(clean(f) for f in features)
    per_feature = ",\n    ".join(
        f"COUNT({f}) AS {f}_valid" + (f", AVG({f}) AS {f}_mean, STDDEV_SAMP({f}) AS {f}_sd, MIN({f}) AS {f}_min, "
                                      f"MAX({f}) AS {f}_max" if f in numeric else "")
        for f in features)
    long_stats = "\n  UNION ALL\n  ".join(
        f"SELECT model, model_version, w, '{f}' AS feature, {f in categorical} AS is_cat, n, {f}_valid AS valid, "
        + (f"{f}_mean AS mean, {f}_sd AS sd, {f}_min AS lo, {f}_max AS hi" if f in numeric
           else "NULL AS mean, NULL AS sd, NULL AS lo, NULL AS hi") + " FROM stats"
        for f in features)
    counts = "\n  UNION ALL\n  ".join(
        f"SELECT model, model_version, w, '{f}' AS feature, {f} AS v, COUNT(*) AS c FROM base "
        f"WHERE {f} IS NOT NULL GROUP BY ALL" for f in numeric)
    cat_counts = "\n  UNION ALL\n  ".join(
        f"SELECT model, model_version, w, '{f}' AS feature, {f} AS v, COUNT(*) AS c FROM base "
        f"WHERE {f} IS NOT NULL GROUP BY ALL" for f in categorical)
    ref_num = "\n  UNION ALL\n  ".join(
        f"SELECT model, model_version, '{f}' AS feature, {f} AS v FROM ref WHERE {f} IS NOT NULL" for f in numeric)
    ref_cat = "\n  UNION ALL\n  ".join(
        f"SELECT model, model_version, '{f}' AS feature, {f} AS v, COUNT(*) AS c FROM ref WHERE {f} IS NOT NULL "
        "GROUP BY ALL" for f in categorical)
    ref_counts = ", ".join(f"COUNT({f}) AS {f}_valid" for f in features)
    ref_valid = "\n  UNION ALL\n  ".join(
        f"SELECT model, model_version, '{f}' AS feature, n, {f}_valid AS valid FROM ref_stats" for f in features)
    deciles = ", ".join(str(k / PSI_BINS) for k in range(1, PSI_BINS))
    edge_columns = ", ".join(f"e[{k}] AS e{k}" for k in range(1, PSI_BINS))  # NULL past the distinct edges
    below = " + ".join(f"CASE WHEN v > e{k} THEN 1 ELSE 0 END" for k in range(1, PSI_BINS))
    return f"""
WITH base AS (
  SELECT model, model_version, CAST(FLOOR(EPOCH(ts) / 3600) AS BIGINT) AS w, {cleaned}
  FROM predictions
  WHERE model IS NOT NULL AND ts >= $start AND ts < $end
),
stats AS (
  SELECT model, model_version, w, COUNT(*) AS n,
    {per_feature}
  FROM base GROUP BY ALL
),
fstats AS (
  {long_stats}
),
num_counts AS (
  {counts}
),
cat_counts AS (
  {cat_counts}
),
shape AS (
  SELECT model, model_version, w, feature, COUNT(*) AS distinct_count, MAX(c) AS mode_count
  FROM (SELECT model, model_version, w, feature, c FROM num_counts
        UNION ALL SELECT model, model_version, w, feature, c FROM cat_counts)
  GROUP BY ALL
),
-- the training rows of every version (only the served ones meet a window below)
ref AS (SELECT model, model_version, {cleaned} FROM training_features),
ref_stats AS (SELECT model, model_version, COUNT(*) AS n, {ref_counts} FROM ref GROUP BY ALL),
ref_valid AS (
  {ref_valid}
),
ref_num AS (
  {ref_num}
),
edges AS (
  SELECT model, model_version, feature, e, {edge_columns}
  FROM (SELECT model, model_version, feature, list_sort(list_distinct(quantile_disc(v, [{deciles}]))) AS e
        FROM ref_num GROUP BY ALL)
),
grid AS (SELECT model, model_version, feature, UNNEST(range(0, len(e) + 1)) AS bin FROM edges),
ref_cat AS (
  {ref_cat}
),
ref_top AS (
  SELECT * FROM ref_cat
  QUALIFY ROW_NUMBER() OVER (PARTITION BY model, model_version, feature ORDER BY c DESC, v) <= {top_k}
),
-- PSI bins: numeric (-inf, e1], (e1, e2], ..., (em, inf) by the number of edges below the value;
-- categorical the training top K (by the value) and one bin for the rest
num_bins AS (
  SELECT n.model, n.model_version, n.w, n.feature, {below} AS bin, SUM(n.c) AS c
  FROM num_counts AS n JOIN edges USING (model, model_version, feature) GROUP BY ALL
),
ref_num_bins AS (
  SELECT r.model, r.model_version, r.feature, {below} AS bin, COUNT(*) AS c
  FROM ref_num AS r JOIN edges USING (model, model_version, feature) GROUP BY ALL
),
bins AS (
  SELECT f.model, f.model_version, f.w, f.feature, COALESCE(b.c, 0) AS cur, COALESCE(r.c, 0) AS ref,
         f.valid AS cur_n, rv.valid AS ref_n
  FROM fstats AS f
  JOIN grid AS g USING (model, model_version, feature)
  JOIN ref_valid AS rv USING (model, model_version, feature)
  LEFT JOIN num_bins AS b ON b.model = f.model AND b.model_version = f.model_version AND b.w = f.w
    AND b.feature = f.feature AND b.bin = g.bin
  LEFT JOIN ref_num_bins AS r ON r.model = f.model AND r.model_version = f.model_version
    AND r.feature = f.feature AND r.bin = g.bin
  UNION ALL
  SELECT f.model, f.model_version, f.w, f.feature, COALESCE(c.c, 0), t.c, f.valid, rv.valid
  FROM fstats AS f
  JOIN ref_top AS t USING (model, model_version, feature)
  JOIN ref_valid AS rv USING (model, model_version, feature)
  LEFT JOIN cat_counts AS c ON c.model = f.model AND c.model_version = f.model_version AND c.w = f.w
    AND c.feature = f.feature AND c.v = t.v
  UNION ALL
  SELECT f.model, f.model_version, f.w, f.feature, f.valid - COALESCE(SUM(c.c), 0), ANY_VALUE(rv.valid) - SUM(t.c),
         f.valid, ANY_VALUE(rv.valid)
  FROM fstats AS f
  JOIN ref_top AS t USING (model, model_version, feature)
  JOIN ref_valid AS rv USING (model, model_version, feature)
  LEFT JOIN cat_counts AS c ON c.model = f.model AND c.model_version = f.model_version AND c.w = f.w
    AND c.feature = f.feature AND c.v = t.v
  GROUP BY f.model, f.model_version, f.w, f.feature, f.valid
),
psi AS (
  SELECT model, model_version, w, feature, SUM((cs - rs) * LN(cs / rs)) AS psi
  FROM (SELECT *, CASE WHEN cur = 0 THEN {PSI_EPS} ELSE cur / cur_n END AS cs,
               CASE WHEN ref = 0 THEN {PSI_EPS} ELSE ref / ref_n END AS rs
        FROM bins WHERE cur_n >= {max(min_rows, 1)} AND ref_n >= {max(min_rows, 1)})
  GROUP BY ALL
),
unseen AS (
  SELECT c.model, c.model_version, c.w, c.feature, SUM(c.c) AS n_unseen
  FROM cat_counts AS c
  ANTI JOIN ref_cat AS r ON r.model = c.model AND r.model_version = c.model_version AND r.feature = c.feature
    AND r.v = c.v
  GROUP BY ALL
),
ranked AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY model, model_version, w, feature ORDER BY c DESC, v) AS k
  FROM cat_counts
),
metrics AS (
  SELECT f.model, f.model_version, f.w, f.feature, '' AS value,
    (f.n - f.valid) / f.n AS null_ratio,
    CAST(COALESCE(h.distinct_count, 0) AS DOUBLE) AS distinct_count,
    h.mode_count / NULLIF(f.valid, 0) AS same_value_ratio,
    f.mean, CASE WHEN f.valid > 1 THEN f.sd END AS stddev, f.lo AS min, f.hi AS max,
    CASE WHEN f.is_cat AND f.valid > 0 AND rv.n > 0 THEN COALESCE(u.n_unseen, 0) / f.valid END AS unseen_share,
    p.psi AS psi_training
  FROM fstats AS f
  LEFT JOIN shape AS h USING (model, model_version, w, feature)
  LEFT JOIN unseen AS u USING (model, model_version, w, feature)
  LEFT JOIN psi AS p USING (model, model_version, w, feature)
  LEFT JOIN ref_valid AS rv USING (model, model_version, feature)
)
SELECT model, model_version, (w + 1) * 3600 AS window_end, feature, value, metric, x
FROM (UNPIVOT metrics ON null_ratio, distinct_count, same_value_ratio, mean, stddev, min, max, unseen_share,
      psi_training INTO NAME metric VALUE x)
UNION ALL
SELECT r.model, r.model_version, (r.w + 1) * 3600, r.feature, r.v, 'value_share', r.c / f.valid
FROM ranked AS r JOIN fstats AS f USING (model, model_version, w, feature) WHERE r.k <= {top_k}
UNION ALL
SELECT r.model, r.model_version, (r.w + 1) * 3600, r.feature, '{OTHER_VALUE}', 'value_share',
       SUM(r.c) / ANY_VALUE(f.valid)
FROM ranked AS r JOIN fstats AS f USING (model, model_version, w, feature) WHERE r.k > {top_k} GROUP BY ALL
UNION ALL
SELECT model, model_version, (w + 1) * 3600, '', '', 'count', n FROM stats
"""


def utc(ts: float) -> datetime:
    """A naive UTC datetime, how the warehouse's TIMESTAMP columns are compared."""
    return datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None)


def child_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """The floor statement, read-only, DuckDB's defaults; its values written to ``spec['out']``."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(spec["warehouse"], read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                "('threads', 'memory_limit', 'preserve_insertion_order')").fetchall())
    opened = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = con.execute(floor_sql(), {"start": utc(spec["start"]), "end": utc(spec["end"])}).fetchall()
    query_s = time.perf_counter() - t0
    con.close()
    values = {}
    for model, version, end, feature, value, metric, x in rows:
        name = "mlmon.serving.count" if metric == "count" else f"mlmon.serving.feature.{metric}"
        values[key(name, model, version, end, feature, value)] = float(x)
    Path(spec["out"]).write_text(json.dumps(values))
    return {"seconds": {"open": opened, "statement": query_s}, "result_rows": len(rows), "settings": settings}


def key(*parts: Any) -> str:
    """``metric|model|version|window end|feature|value`` ('' where a tag is absent)."""
    return "|".join(str(int(p)) if isinstance(p, float) else str(p) for p in parts)


# ---------------------------------------------------------------------------------------------- agent


def agent_config(
    run_dir: Path, warehouse: Path, day_end: int, now: float, memory_limit: str | None
) -> tuple[Path, int | None]:
    """Only serving_features, 1 d first-run lookback, window-end stamps, JSON Lines (JSON is YAML); the lateness
    set only when the default would no longer make ``day_end`` the latest due window end."""
    job: dict[str, Any] = {"features": list(FEATURES), "categorical": list(CATEGORICAL), "initial_lookback": "1d",
                           "timestamp_policy": "window_end"}
    lateness = None
    if day_end_at(now) != day_end:
        lateness = math.floor(now - day_end)  # floor((now - lateness) / 1 h) * 1 h == day_end
        job["lateness"] = lateness
    warehouse_cfg: dict[str, Any] = {"engine": "duckdb", "path": str(warehouse)}
    if memory_limit:
        warehouse_cfg["memory_limit"] = memory_limit
    config = {
        "init_config": {"state_dir": str(run_dir / "state"),
                        "datadog": {"transport": "jsonl", "jsonl_path": str(run_dir / "metrics.jsonl")}},
        "instances": [{
            "name": "serving", "warehouse": warehouse_cfg,
            "jobs": {"predictions": {"enabled": False}, "quality": {"enabled": False},
                     "reproducibility": {"enabled": False}, "training": {"enabled": False},
                     "serving_features": job},
        }],
    }
    path = run_dir / "conf.yaml"
    path.write_text(json.dumps(config, indent=1))
    return path, lateness


def wait_child(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` to completion: wall time, CPU time, peak RSS (``os.wait4`` of that child), exit code."""
    with log.open("w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "user_s": usage.ru_utime,
            "sys_s": usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "returncode": os.waitstatus_to_exitcode(status), "load_1m": os.getloadavg()[0]}


def tail(log: Path, lines: int = 10) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def run_agent(run_dir: Path, warehouse: Path, day_end: int, memory_limit: str | None) -> dict[str, Any]:
    """``mlmon run --once`` in a child process, fresh state: its figures, self-metrics and values."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    config, lateness = agent_config(run_dir, warehouse, day_end, time.time(), memory_limit)
    log = run_dir / "agent.log"
    run = wait_child([sys.executable, "-m", "mlmon", "run", "--once", "--config", str(config),
                      "--log-level", "WARNING"], log)
    run["lateness_set"] = lateness
    if run["returncode"] != 0:
        sys.exit(f"serving.py: the agent failed (exit {run['returncode']}):\n{tail(log)}")
    text = log.read_text(errors="replace").strip()
    if text:
        run["log_tail"] = tail(log, 8)
    run.update(read_agent_output(run_dir / "metrics.jsonl"))
    return run


def read_agent_output(path: Path) -> dict[str, Any]:
    """The job's self-metrics, and every serving metric keyed like the floor's."""
    job: dict[str, float] = {}
    values: dict[str, float] = {}
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if "metric" not in obj:
            continue
        tags = dict(t.split(":", 1) for t in obj["tags"] if ":" in t)
        ts, value = obj["points"][0]
        name = obj["metric"]
        if name.startswith("mlmon.agent."):
            if tags.get("job") == "serving_features":
                job[name.removeprefix("mlmon.agent.")] = value
        elif name.startswith("mlmon.serving."):
            values[key(name, tags["model"], tags.get("model_version", ""), int(ts), tags.get("feature", ""),
                       tags.get("value", ""))] = value
    return {"job": job, "values": values}


def run_floor(run_dir: Path, warehouse: Path, day_end: int) -> dict[str, Any]:
    """The floor in a child process of this script."""
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / "floor-values.json"
    spec = {"warehouse": str(warehouse), "start": day_end - DAY, "end": day_end, "out": str(out)}
    log = run_dir / "floor.log"
    run = wait_child([sys.executable, str(Path(__file__).resolve()), "--child", "floor", "--spec", json.dumps(spec)],
                     log)
    if run["returncode"] != 0:
        sys.exit(f"serving.py: the floor failed (exit {run['returncode']}):\n{tail(log)}")
    run.update(child_line(log))
    run["values"] = json.loads(out.read_text())
    return run


def child_line(log: Path) -> dict[str, Any]:
    text = log.read_text(errors="replace")
    line = next(line for line in reversed(text.splitlines()) if line.startswith(CHILD_PREFIX))
    return json.loads(line.removeprefix(CHILD_PREFIX))


def child(workdir: Path, task: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``task`` (build, meta, profile) in a child process of this script; its result and peak RSS."""
    log = workdir / f"{task}.log"
    run = wait_child([sys.executable, str(Path(__file__).resolve()), "--child", task, "--spec", json.dumps(spec)],
                     log)
    if run["returncode"] != 0:
        sys.exit(f"serving.py: {task} failed:\n{tail(log)}")
    result = child_line(log)
    log.unlink()
    return {**result, "peak_rss_mb": run["peak_rss_mb"], "wall_s": run["wall_s"]}


# -------------------------------------------------------------------------------------------- profile


def _operators(node: dict[str, Any], cte: str, out: list[tuple[float, str, int, str]]) -> None:
    """Every operator below ``node``: (its own seconds, summed over threads; label; rows out; the CTE whose
    definition it belongs to, ``main`` for the final SELECT). A ``CTE`` node's first child defines it."""
    extra = node.get("extra_info") or {}
    label = str(node.get("name", "?")).strip()
    outer = cte
    for k in ("Table", "Aggregates", "Join Type", "Projections", "Expression", "Order By"):
        v = extra.get(k) if isinstance(extra, dict) else None
        if v:
            v = ", ".join(v) if isinstance(v, list) else str(v)
            label += f" [{k}: {v[:100]}]"
            break
    if label == "CTE":  # its own time: materializing it
        cte = extra.get("CTE Name", cte)
        label = f"CTE {cte} ({extra.get('Execution Mode', '?')})"
    out.append((float(node.get("timing", 0) or 0), label, int(node.get("intermediate_rows", 0) or 0), cte))
    children = node.get("children", [])
    for i, c in enumerate(children):
        _operators(c, cte if label.startswith("CTE ") and i == 0 else outer, out)


def profile_one(con: Any, sql: str, params: dict[str, Any], path: Path) -> dict[str, Any]:
    """Run ``sql`` with DuckDB's JSON profiler (EXPLAIN ANALYZE's figures): its time, the costliest operators
    and the operator seconds per CTE."""
    con.execute("SET enable_profiling = 'json'")
    con.execute(f"SET profiling_output = '{path}'")
    con.execute("SET profiling_mode = 'detailed'")
    t0 = time.perf_counter()
    con.execute(sql, params).fetchall()
    wall = time.perf_counter() - t0
    con.execute("SET enable_profiling = 'no_output'")
    tree = json.loads(path.read_text())
    ops: list[tuple[float, str, int, str]] = []
    for root in tree.get("operator", []):
        _operators(root, "main", ops)
    by_cte: dict[str, float] = {}
    for t, _, _, cte in ops:
        by_cte[cte] = by_cte.get(cte, 0.0) + t
    query, system = tree.get("query", {}), tree.get("system", {})
    return {"wall_s": wall, "latency_s": query.get("total_time"), "cpu_s": query.get("cpu_time"),
            "peak_buffer_mb": (system.get("peak_buffer_memory") or 0) / 2**20,
            "spilled_mb": (system.get("total_bytes_spilled") or 0) / 2**20,
            "intermediate_rows": query.get("total_intermediate_rows"),
            "operators": sorted(ops, reverse=True),
            "by_cte": dict(sorted(by_cte.items(), key=lambda kv: -kv[1]))}


def merge_profiles(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several statements' profiles as one: times, rows and operator seconds summed (same labels merged)."""
    ops: dict[tuple[str, str], list[float]] = {}
    by_cte: dict[str, float] = {}
    for p in parts:
        for t, label, rows, cte in p["operators"]:
            acc = ops.setdefault((label, cte), [0.0, 0])
            acc[0] += t
            acc[1] += rows
        for c, t in p["by_cte"].items():
            by_cte[c] = by_cte.get(c, 0.0) + t
    return {"wall_s": sum(p["wall_s"] for p in parts), "cpu_s": sum(p["cpu_s"] or 0 for p in parts),
            "latency_s": sum(p["latency_s"] or 0 for p in parts),
            "peak_buffer_mb": max(p["peak_buffer_mb"] for p in parts),
            "spilled_mb": sum(p["spilled_mb"] for p in parts),
            "intermediate_rows": sum(p["intermediate_rows"] or 0 for p in parts),
            "operators": sorted(((t, label, int(rows), cte) for (label, cte), (t, rows) in ops.items()), reverse=True),
            "by_cte": dict(sorted(by_cte.items(), key=lambda kv: -kv[1]))}


def child_profile(spec: dict[str, Any]) -> dict[str, Any]:
    """Profile, in this one child: the agent's statements as the job builds them (``build_serving_query``),
    rendered (``render``) and run under the agent's DuckDB settings, over the windows the runner would give
    each (24 at a time, halved after an out-of-memory error, as ``mlmon.execution`` does); the same statement
    over the 24 windows under DuckDB's defaults (what it costs when memory is no limit); the floor's."""
    import duckdb

    from mlmon.config.load import load_config
    from mlmon.warehouse.serving import build_serving_query, serving_params
    from mlmon.warehouse.sql import render, used_params

    config = load_config(spec["config"])
    instance = config.instances[0]
    job = instance.jobs.serving_features
    kinds = {f: "categorical" if f in CATEGORICAL else "numeric" for f in FEATURES}
    query = build_serving_query(instance, job.features, kinds, FEATURES)
    sql = render(query, "duckdb")
    Path(spec["dir"], "agent-statement.sql").write_text(sql + "\n")
    Path(spec["dir"], "floor-statement.sql").write_text(floor_sql() + "\n")

    def params(start: float, end: float) -> dict[str, Any]:
        return used_params(query, serving_params(instance, start, end, job.window, job.top_k))

    def connect(settings: dict[str, Any]) -> Any:
        con = duckdb.connect(spec["warehouse"], read_only=True, config=settings)
        con.execute("SET TimeZone = 'UTC'")
        return con

    out: dict[str, Any] = {}
    limit = instance.warehouse.memory_limit
    con = connect({"preserve_insertion_order": False, "memory_limit": limit})
    starts = [spec["start"] + i * job.window for i in range(WINDOWS)]
    size, done, parts, ooms = min(job.max_windows_per_query, WINDOWS), 0, [], []
    while done < WINDOWS:
        chunk = starts[done:done + size]
        t0 = time.perf_counter()
        try:
            parts.append(profile_one(con, sql, params(chunk[0], chunk[-1] + job.window),
                                     Path(spec["dir"], f"agent-profile-{done}.json")))
        except duckdb.OutOfMemoryException:
            ooms.append({"windows": len(chunk), "failed_after_s": time.perf_counter() - t0})
            con.execute("SET enable_profiling = 'no_output'")
            if len(chunk) == 1:
                raise
            size = len(chunk) // 2
            continue
        parts[-1]["windows"] = len(chunk)
        done += len(chunk)
    con.close()
    out[f"agent (memory_limit {limit})"] = {**merge_profiles(parts), "statements": [p["windows"] for p in parts],
                                            "out_of_memory": ooms}
    con = connect({"preserve_insertion_order": False})
    out["agent, 24 windows, DuckDB's default memory_limit"] = profile_one(
        con, sql, params(spec["start"], spec["end"]), Path(spec["dir"], "agent-profile-unbounded.json"))
    con.close()
    con = connect({})
    out["floor"] = profile_one(con, floor_sql(), {"start": utc(spec["start"]), "end": utc(spec["end"])},
                               Path(spec["dir"], "floor-profile.json"))
    con.close()
    return out


# ----------------------------------------------------------------------------------------- cross-check


def compare(floor: dict[str, float], agent: dict[str, float]) -> dict[str, Any]:
    """Every key of either side: present on both, equal within :data:`REL_TOL` (relative)."""
    only_floor, only_agent = sorted(set(floor) - set(agent)), sorted(set(agent) - set(floor))
    worst, worst_key, differ, by_metric = 0.0, None, [], {}
    for k in set(floor) & set(agent):
        a, b = floor[k], agent[k]
        rel = 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))
        metric = k.split("|", 1)[0].removeprefix("mlmon.serving.")
        n, w = by_metric.get(metric, (0, 0.0))
        by_metric[metric] = (n + 1, max(w, rel))
        if rel > worst:
            worst, worst_key = rel, k
        if rel > REL_TOL:
            differ.append(k)
    return {"compared": len(set(floor) & set(agent)), "max_rel_diff": worst, "worst": worst_key,
            "differ": sorted(differ), "only_floor": only_floor, "only_agent": only_agent,
            "by_metric": by_metric, "agree": not differ and not only_floor and not only_agent and bool(floor)}


def window_ends(values: dict[str, float]) -> list[int]:
    return sorted({int(k.split("|")[3]) for k in values})


# --------------------------------------------------------------------------------------------- report


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def machine() -> dict[str, Any]:
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
            "python": platform.python_version(), "duckdb": version("duckdb"), "mlmon": version("mlmon")}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(k: str) -> float:
        return statistics.median(r[k] for r in runs)

    return {"runs": len(runs), "wall_s": [r["wall_s"] for r in runs], "cpu_s": [r["cpu_s"] for r in runs],
            "peak_rss_mb": [r["peak_rss_mb"] for r in runs], "load_1m": [r["load_1m"] for r in runs],
            "wall_min_s": min(r["wall_s"] for r in runs), "wall_median_s": med("wall_s"),
            "cpu_min_s": min(r["cpu_s"] for r in runs), "cpu_median_s": med("cpu_s"),
            "peak_rss_min_mb": min(r["peak_rss_mb"] for r in runs), "peak_rss_median_mb": med("peak_rss_mb"),
            "peak_rss_max_mb": max(r["peak_rss_mb"] for r in runs)}


def report(args: argparse.Namespace, info: dict[str, Any], build: dict[str, Any], day_end: int,
           agent: list[dict[str, Any]], floor: list[dict[str, Any]], prof: dict[str, Any] | None) -> dict[str, Any]:
    a, f = summarize(agent), summarize(floor)
    lines = [f"machine: {info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), {info['ram_gb']} GB RAM; "
             f"Python {info['python']}, DuckDB {info['duckdb']}, mlmon {info['mlmon']}; load average "
             f"{info['load_average_1m']} before the runs",
             f"data: {args.rows:,} predictions over {iso(day_end - DAY)} .. {iso(day_end)}, {args.models} models "
             f"(version v1), features {', '.join(FEATURES)}; training_features {args.training_rows:,} rows per "
             f"(model, version) for v1 and v0",
             "build: " + (f"{build['build_s']:.1f} s ("
                          f"{', '.join(f'{k} {v:.1f} s' for k, v in build['seconds'].items())}"
                          f"), peak RSS {build['peak_rss_mb']:.0f} MB" if build.get("build_s") is not None
                          else "reused (--reuse)") + f"; disk {build['bytes'] / 1e6:.0f} MB", ""]
    lines += ["| contender | runs | wall min (s) | wall median (s) | CPU min (s) | CPU median (s) "
              "| peak RSS median (MB) "
              "| peak RSS max (MB) | rows/s (median) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in (("agent", a), ("floor", f)):
        lines.append(f"| {name} | {s['runs']} | {s['wall_min_s']:.2f} | {s['wall_median_s']:.2f} "
                     f"| {s['cpu_min_s']:.2f} "
                     f"| {s['cpu_median_s']:.2f} | {s['peak_rss_median_mb']:.0f} | {s['peak_rss_max_mb']:.0f} | "
                     f"{args.rows / s['wall_median_s']:,.0f} |")
    ratio = {"wall_median": a["wall_median_s"] / f["wall_median_s"], "wall_min": a["wall_min_s"] / f["wall_min_s"],
             "cpu_median": a["cpu_median_s"] / f["cpu_median_s"],
             "peak_rss_median": a["peak_rss_median_mb"] / f["peak_rss_median_mb"]}
    lines += ["", f"ratio agent / floor: wall median {ratio['wall_median']:.2f}x (target: within 2x: "
              f"{'met' if ratio['wall_median'] <= 2 else 'NOT met'}), wall min {ratio['wall_min']:.2f}x, CPU median "
              f"{ratio['cpu_median']:.2f}x, peak RSS median {ratio['peak_rss_median']:.2f}x", ""]
    for i, r in enumerate(agent):
        j = r["job"]
        per = j.get("rows_fetched", 0) / (j.get("windows_processed") or 1) / args.models / len(FEATURES)
        lines.append(f"agent run {i + 1}: wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s (user {r['user_s']:.2f}, "
                     f"sys {r['sys_s']:.2f}), peak RSS {r['peak_rss_mb']:.0f} MB; "
                     f"job {j.get('run.duration_seconds', 0):.2f} s, "
                     f"{j.get('windows_processed', 0):.0f} windows, {j.get('rows_fetched', 0):,.0f} rows fetched "
                     f"({per:.1f} per (model, window, feature)), errors {j.get('run.errors', 0):.0f}"
                     + (f"; lateness set to {r['lateness_set']} s" if r.get("lateness_set") else "")
                     + f"; load after {r['load_1m']:.1f}")
    for i, r in enumerate(floor):
        lines.append(f"floor run {i + 1}: wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s (user {r['user_s']:.2f}, "
                     f"sys {r['sys_s']:.2f}), peak RSS {r['peak_rss_mb']:.0f} MB; "
                     f"statement {r['seconds']['statement']:.2f} s, "
                     f"{r['result_rows']:,} result rows; load after {r['load_1m']:.1f}")
    lines.append(f"floor DuckDB settings: {floor[0]['settings']}")

    # cross-check: each agent run against the first floor run; the floors against each other
    expected = [day_end - i * HOUR for i in range(WINDOWS - 1, -1, -1)]
    checks = [compare(floor[0]["values"], r["values"]) for r in agent]
    floors = [compare(floor[0]["values"], r["values"]) for r in floor[1:]]
    problems = []
    for i, r in enumerate(agent):
        if window_ends(r["values"]) != expected:
            problems.append(f"agent run {i + 1}: windows ending {[iso(e) for e in window_ends(r['values'])]}, "
                            f"expected the day's 24")
        if r["job"].get("run.errors"):
            problems.append(f"agent run {i + 1}: {r['job']['run.errors']:.0f} job errors: {r.get('log_tail', '')}")
    if window_ends(floor[0]["values"]) != expected:
        problems.append("floor: not the day's 24 windows")
    c = checks[0]
    lines += ["", f"windows: {len(window_ends(agent[0]['values']))} (ending {iso(expected[0])} .. {iso(expected[-1])}),"
              f" {args.models} models, features {', '.join(FEATURES)}"]
    lines.append("cross-check, agent run 1 vs floor: " + ", ".join(
        f"{m} {n} (max {w:.1e})" for m, (n, w) in sorted(c["by_metric"].items())))
    for i, c in enumerate(checks):
        lines.append(f"cross-check agent run {i + 1} vs floor: {c['compared']:,} values compared, largest relative "
                     f"difference {c['max_rel_diff']:.1e}" + (f" ({c['worst']})" if c["worst"] else "")
                     + f", {len(c['differ'])} beyond {REL_TOL:g}, {len(c['only_agent'])} only in the agent's output, "
                     f"{len(c['only_floor'])} only in the floor's: {'agree' if c['agree'] else 'DIFFER'}")
        for what in ("differ", "only_agent", "only_floor"):
            if c[what]:
                lines.append(f"  {what}: {c[what][:5]}")
    for i, c in enumerate(floors):
        lines.append(f"floor run {i + 2} vs floor run 1: {c['compared']:,} values, largest relative difference "
                     f"{c['max_rel_diff']:.1e}: {'agree' if c['agree'] else 'DIFFER'}")
    lines += [f"problem: {p}" for p in problems]
    if prof:
        lines += ["", "profile (DuckDB's JSON profiler, one run each; operator seconds summed over threads):"]
        for name, p in prof.items():
            total = sum(t for t, *_ in p["operators"])
            if p.get("statements"):
                lines.append(f"  {name}: statements over {p['statements']} windows; out of memory first: "
                             + (", ".join(f"{o['windows']} windows after {o['failed_after_s']:.2f} s"
                                          for o in p["out_of_memory"]) or "never"))
            lines.append(f"  {name}: statement {p['wall_s']:.2f} s wall, CPU {p['cpu_s'] or 0:.2f} s, operators "
                         f"{total:.2f} s, peak buffer {p['peak_buffer_mb']:.0f} MB, spilled {p['spilled_mb']:.0f} MB, "
                         f"{p['intermediate_rows'] or 0:,} intermediate rows")
            lines.append("    by CTE: " + ", ".join(f"{c} {t:.2f} s" for c, t in p["by_cte"].items() if t >= 0.005))
            for t, label, rows, cte in p["operators"][:12]:
                lines.append(f"    {t:7.2f} s  {rows:>12,} rows  ({cte}) {label}")
    print("\n".join(lines), flush=True)
    return {
        "rows": args.rows, "models": args.models, "training_rows": args.training_rows, "repeat": args.repeat,
        "machine": info, "day_end": day_end, "build_s": build.get("build_s"), "build_parts_s": build.get("seconds"),
        "build_peak_rss_mb": build.get("peak_rss_mb"), "disk_bytes": build["bytes"],
        "agent": {**a, "job": [r["job"] for r in agent], "lateness_set": [r.get("lateness_set") for r in agent]},
        "floor": {**f, "statement_s": [r["seconds"]["statement"] for r in floor],
                  "result_rows": floor[0]["result_rows"], "settings": floor[0]["settings"]},
        "ratio_agent_floor": ratio,
        "cross_check": [{k: v for k, v in c.items() if k not in ("by_metric",)} | {"differ": c["differ"][:20],
                         "only_floor": c["only_floor"][:20], "only_agent": c["only_agent"][:20]} for c in checks],
        "cross_check_by_metric": checks[0]["by_metric"],
        "floors_agree": all(c["agree"] for c in floors), "problems": problems,
        "profile": {n: {**p, "operators": p["operators"][:25]} for n, p in prof.items()} if prof else None,
    }


# ----------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=float, default=1e7, help="predictions of the day (default 1e7)")
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--training-rows", type=int, default=20000, help="training rows per (model, version)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender, alternating (default 3)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mlmon-serving"))
    parser.add_argument("--memory-limit", help="the agent's warehouse memory_limit (default: the agent's, 256MB)")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse and run outputs in --dir")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse --dir's warehouse if built with the same sizes and the day is still due")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the agent's statement and the floor's once (DuckDB's JSON profiler)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child:
        args.rows = int(args.rows)
        if args.rows < 1 or args.models < 1 or args.repeat < 1 or args.training_rows < 1:
            parser.error("--rows, --models, --training-rows and --repeat must be >= 1")
    return args


def child_main(task: str, spec: dict[str, Any]) -> int:
    if task == "build":
        t0 = time.perf_counter()
        seconds = generate(Path(spec["path"]), spec["rows"], spec["models"], spec["training_rows"], spec["end"])
        result: dict[str, Any] = {"seconds": seconds, "build_s": time.perf_counter() - t0}
    elif task == "meta":
        result = {"end": existing(Path(spec["path"]), spec["rows"], spec["models"], spec["training_rows"])}
    elif task == "floor":
        result = child_floor(spec)
    else:
        result = child_profile(spec)
    print(CHILD_PREFIX + json.dumps(result), flush=True)
    return 0


def prepare(args: argparse.Namespace, warehouse: Path) -> tuple[int, dict[str, Any]]:
    """The day's end and the build's figures (a reused warehouse: no build)."""
    spec = {"path": str(warehouse), "rows": args.rows, "models": args.models, "training_rows": args.training_rows}
    end = day_end_at(time.time())
    if args.reuse and child(args.dir, "meta", spec).get("end") == end:
        print(f"reusing {warehouse} (day ending {iso(end)})", flush=True)
        return end, {"bytes": file_bytes(warehouse)}
    print(f"building {warehouse}: {args.rows:,} predictions, day ending {iso(end)} ...", flush=True)
    t0 = time.perf_counter()
    built = child(args.dir, "build", {**spec, "end": end})
    os.sync()  # the file's dirty pages written now, not during the timed runs
    built["build_s"] = time.perf_counter() - t0  # the child's whole life (imports included) and the sync
    built["bytes"] = file_bytes(warehouse)
    print(f"built in {built['build_s']:.1f} s; {built['bytes'] / 1e6:.0f} MB", flush=True)
    return end, built


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, json.loads(args.spec))
    args.dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    warehouse = args.dir / "warehouse.duckdb"
    day_end, build = prepare(args, warehouse)
    agent_runs, floor_runs = [], []
    for i in range(args.repeat):
        print(f"run {i + 1}/{args.repeat}: agent ...", flush=True)
        agent_runs.append(run_agent(args.dir / "agent", warehouse, day_end, args.memory_limit))
        print(f"run {i + 1}/{args.repeat}: floor ...", flush=True)
        floor_runs.append(run_floor(args.dir / "floor", warehouse, day_end))
    prof = None
    if args.profile:
        print("profiling both statements ...", flush=True)
        pdir = args.dir / "profile"
        pdir.mkdir(exist_ok=True)
        config, _ = agent_config(pdir, warehouse, day_end, time.time(), args.memory_limit)
        prof = child(args.dir, "profile", {"config": str(config), "warehouse": str(warehouse), "dir": str(pdir),
                                           "start": day_end - DAY, "end": day_end})
        prof.pop("peak_rss_mb"), prof.pop("wall_s")
    figures = report(args, info, build, day_end, agent_runs, floor_runs, prof)
    print(RESULT_PREFIX + json.dumps(figures, default=str), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    if not args.keep:
        for p in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
            p.unlink(missing_ok=True)
        for d in ("agent", "floor", "profile"):
            shutil.rmtree(args.dir / d, ignore_errors=True)
    ok = all(c["agree"] for c in figures["cross_check"]) and not figures["problems"] and figures["floors_agree"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
