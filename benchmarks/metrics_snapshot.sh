#!/bin/bash
# Behaviour check for refactors: the metrics a fixed-seed scenario gives through `mlmon run --once`.
#   benchmarks/metrics_snapshot.sh OUT_DIR PYTHON   (PYTHON imports the mlmon to check; needs faketime)
# Builds a 30-hour DuckDB warehouse with the demo's incidents, runs every job once at 2026-11-20 14:03 UTC
# (faketime; DuckDB threads 1 so that float sums are summed in one order) into JSON Lines, and writes
# OUT_DIR/sorted.jsonl: every line sorted, send-time stamps folded onto the run's instant, and the
# wall-clock metrics (run duration, lag, model age) left out. Two versions behave the same when
# `cmp a/sorted.jsonl b/sorted.jsonl` prints nothing.
set -e
out=$1; py=$2
rm -rf $out; mkdir -p $out; cd $out
$py - <<'PY'
from pathlib import Path
from mlmon.scenarios import build_frames, write_duckdb
from mlmon.demo import DEMO_INCIDENTS
import yaml
END = 1_795_183_380.0
write_duckdb(Path("warehouse.duckdb"), build_frames(END, DEMO_INCIDENTS, hours=30))
Path("conf.yaml").write_text(yaml.safe_dump({
  "init_config": {"env": "snap", "state_dir": "state", "datadog": {"transport": "jsonl", "jsonl_path": "metrics.jsonl"}},
  "instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": "warehouse.duckdb", "threads": 1},
                 "jobs": {"predictions": {"initial_lookback": "1d"}, "quality": {"initial_lookback": "1d"},
                          "reproducibility": {"initial_lookback": "1d"}, "training": {"features": ["age", "device", "bid_floor"]}}}]}))
PY
faketime '2026-11-20 14:03:00' $py -m mlmon run --once --config conf.yaml 2> run.err
$py - <<'PY'
import json
END = 1_795_183_380
def t(ts): return END if END <= ts < END + 300 else ts  # send-time stamps: the frozen instant, give or take seconds
out = []
for line in open("metrics.jsonl"):
    o = json.loads(line)
    if o.get("metric") in ("mlmon.agent.run.duration_seconds", "mlmon.agent.lag_seconds", "mlmon.training.model_age_hours"):  # wall-clock dependent
        continue
    if "points" in o:
        o["points"] = [[t(a), b] for a, b in o["points"]]
    if "timestamp" in o:
        o["timestamp"] = t(o["timestamp"])
    out.append(json.dumps(o, sort_keys=True))
open("sorted.jsonl", "w").write("\n".join(sorted(out)) + "\n")
PY
wc -l sorted.jsonl
