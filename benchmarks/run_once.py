"""Wall time and peak RSS of `mlmon run --once` over one day of predictions in DuckDB.

    python benchmarks/run_once.py --rows 1e6 [--models 8] [--dir /tmp/mlmon-bench]

Generates the day in SQL (fast, no Python loop), writes a config with the JSON Lines sink, runs the
agent in a child process and prints: wall time, peak RSS of the child, windows, points written,
and aggregate rows fetched from the engine per (model, window).
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
        {"rows": rows, "models": models, "end": end},
    )
    con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mlmon-bench"))
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
                       "jobs": {"predictions": {"initial_lookback": "1d"}}}],
    }))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlmon", "run", "--once", "--config", str(config),
                    "--log-level", "WARNING"], check=True)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    agent: dict[str, float] = {}
    points = 0
    for line in metrics.read_text().splitlines():
        obj = json.loads(line)
        if "metric" not in obj:
            continue
        points += 1
        if obj["metric"].startswith("mlmon.agent."):
            agent[obj["metric"]] = obj["points"][0][1]
    windows = agent.get("mlmon.agent.windows_processed", 0)
    fetched = agent.get("mlmon.agent.rows_fetched", 0)
    print(f"rows                         {rows:,}")
    print(f"models                       {args.models}")
    print(f"generate (DuckDB SQL)        {gen_s:.1f} s")
    print(f"mlmon run --once wall time   {wall:.2f} s ({rows / wall:,.0f} rows/s)")
    print(f"peak RSS of the agent        {peak_mb:.0f} MB")
    print(f"windows processed            {windows:.0f}")
    print(f"points written               {points:,}")
    print(f"rows fetched from the engine {fetched:,.0f} "
          f"({fetched / max(windows * args.models, 1):.0f} per (model, window), "
          f"{rows / max(windows * args.models, 1):.0f} predictions per (model, window))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
