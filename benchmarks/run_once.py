"""Wall time and peak RSS of `mlmon run --once` over one day of data in DuckDB, all four jobs.

    python benchmarks/run_once.py --rows 1e6 [--models 8] [--dir /tmp/mlmon-bench] [--jobs predictions]

Generates in SQL (fast, no Python loop) one day of predictions, a label for each (arriving within
30 minutes), a replay for 98 % of them (2 % of those off by 1 %), 40 daily training runs per model
and 20 000 training rows for each of the two latest versions (three features). Writes a config
with the JSON Lines sink, runs the agent in a child process and prints: wall time, peak RSS of the
child, and per job the windows, points, run duration and aggregate rows fetched from the engine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import yaml


def generate(path: Path, rows: int, models: int, end: float) -> None:
    if path.exists():
        path.unlink()
    con = duckdb.connect(str(path))
    params = {"rows": rows, "models": models, "end": end}
    con.execute(
        """
        CREATE TABLE predictions AS
        SELECT 'req-' || i AS request_id,
               to_timestamp($end - 86400 + (i * 86400.0 / $rows))::TIMESTAMP AS ts,
               'model_' || (i % $models) AS model,
               'v1' AS model_version,
               1 / (1 + exp(-(-3.0 + 0.9 * sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random()))))
                 AS prediction
        FROM range($rows) t(i)
        """,
        params,
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
        SELECT request_id, model_version, CASE WHEN random() < 0.02 THEN prediction * 1.01 ELSE prediction END
                 AS prediction
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
    con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mlmon-bench"))
    parser.add_argument("--jobs", nargs="+", default=["predictions", "quality", "reproducibility", "training"],
                        help="jobs to run (default: all four)")
    args = parser.parse_args()
    rows = int(args.rows)
    args.dir.mkdir(parents=True, exist_ok=True)
    warehouse = args.dir / "warehouse.duckdb"
    metrics = args.dir / "metrics.jsonl"
    state = args.dir / "state"
    metrics.unlink(missing_ok=True)
    subprocess.run(["rm", "-rf", str(state)], check=True)
    end = time.time() // 600 * 600 - 600
    t0 = time.perf_counter()
    generate(warehouse, rows, args.models, end)
    gen_s = time.perf_counter() - t0
    config = args.dir / "conf.yaml"
    config.write_text(yaml.safe_dump({
        "init_config": {"state_dir": str(state), "datadog": {"transport": "jsonl", "jsonl_path": str(metrics)}},
        "instances": [{"name": "bench", "warehouse": {"engine": "duckdb", "path": str(warehouse)},
                       "jobs": {
                           "predictions": {"initial_lookback": "1d", "enabled": "predictions" in args.jobs},
                           "quality": {"initial_lookback": "1d", "label_delay": "30m",
                                       "enabled": "quality" in args.jobs},
                           "reproducibility": {"initial_lookback": "1d", "replay_delay": "0s",
                                               "enabled": "reproducibility" in args.jobs},
                           "training": {"features": ["age", "device", "bid_floor"],
                                        "enabled": "training" in args.jobs}}}],
    }))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlmon", "run", "--once", "--config", str(config),
                    "--log-level", "WARNING"], check=True)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    agent: dict[str, dict[str, float]] = {}
    points = 0
    for line in metrics.read_text().splitlines():
        obj = json.loads(line)
        if "metric" not in obj:
            continue
        points += 1
        if obj["metric"].startswith("mlmon.agent."):
            job = next(t.removeprefix("job:") for t in obj["tags"] if t.startswith("job:"))
            agent.setdefault(job, {})[obj["metric"].removeprefix("mlmon.agent.")] = obj["points"][0][1]
    print(f"rows                         {rows:,}")
    print(f"models                       {args.models}")
    print(f"generate (DuckDB SQL)        {gen_s:.1f} s")
    print(f"mlmon run --once wall time   {wall:.2f} s ({rows / wall:,.0f} predictions/s), jobs: {' '.join(args.jobs)}")
    print(f"peak RSS of the agent        {peak_mb:.0f} MB")
    print(f"points written               {points:,}")
    for job, m in agent.items():
        windows = m.get("windows_processed", 0)
        fetched = m.get("rows_fetched", 0)
        groups = max(windows * args.models, 1)
        per = f", {fetched / groups:.0f} per (model, window)" if windows else ""
        print(f"job {job:<16} {m.get('run.duration_seconds', 0):6.2f} s, {windows:.0f} windows, "
              f"{m.get('points_sent', 0):,.0f} points, {fetched:,.0f} rows fetched{per}, "
              f"errors {m.get('run.errors', 0):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
