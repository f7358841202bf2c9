"""The segments case: the quality job's run over 10^7 predictions, without and with one 10-value segment column.

    .venv/bin/python benchmarks/segments.py [--rows 1e7] [--models 4] [--values 10] [--repeat 3] [--dir /tmp/mlmon-seg]
        [--keep]

Builds one DuckDB warehouse (in DuckDB SQL, ``range()`` and ``hash()``): ``--rows`` predictions over the 24 hours of
one UTC day D spread over ``--models`` models, one label each (1 to 30 minutes later, stored in arrival order), and a
``placement`` column of ``--values`` values with unequal shares (and 1 % NULL); the day before D holds a tenth as
many rows, for the segment values' choice. Then, in this process, it runs the agent's quality job alone over the
24 hourly windows of D (``initial_lookback: 1d``, ``max_windows_per_query: 24``: one statement), with a fresh state
directory each run, alternating between the config without ``segment_by`` and the one with ``segment_by:
[placement]``, ``--repeat`` times each after one untimed warm-up of each. The run with segments includes its
choice statement (once a day: a first run always makes it); that statement is also timed alone.

Prints, per config, the minimum and median wall time of ``run_once``, the rows fetched and the series sent; the ratio
of the medians; whether the unsegmented ``mlmon.online.*`` points are the same series with equal values (counts
exactly, sums to 1e-12 relative); and a last line ``BENCH_RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.testing import RecordingSink
from mlmon.warehouse.engines import open_engine
from mlmon.warehouse.segments import fetch_choice

DAY = 86400
#: the day D the windows cover (its start); arbitrary, in the past
DAY_START = 1_795_000_000 // DAY * DAY


def build(path: Path, rows: int, models: int, values: int) -> None:
    """The warehouse: day D with ``rows`` predictions, the day before with a tenth as many."""
    con = duckdb.connect(str(path))
    # value v has weight values - v: unequal shares; 1 % NULL
    weights = [values - v for v in range(values)]
    total = sum(weights)
    bounds = [sum(weights[: v + 1]) / total for v in range(values)]
    placement = "CASE " + " ".join(
        f"WHEN u < {b!r} THEN 'p{v}'" for v, b in enumerate(bounds[:-1])) + f" ELSE 'p{values - 1}' END"
    for day, n in ((DAY_START - DAY, rows // 10), (DAY_START, rows)):
        con.execute(f"""
CREATE OR REPLACE TEMP TABLE g AS
SELECT k, to_timestamp({day} + k * {DAY}.0 / {n}) AS ts,
  (hash(k * 7 + {day}) % 1000000) / 1000000.0 AS u,
  (hash(k * 13 + {day}) % 1000000) / 1000000.0 AS z,
  (hash(k * 17 + {day}) % 1000000) / 1000000.0 AS y,
  (hash(k * 19 + {day}) % 1000000) / 1000000.0 AS d
FROM range({n}) AS t(k)""")
        con.execute(f"""
CREATE {"OR REPLACE " if day < DAY_START else ""}TABLE {"predictions" if day < DAY_START else "p_d"} AS
SELECT md5(CAST(k AS VARCHAR) || '{day}') AS request_id, CAST(ts AS TIMESTAMP) AS ts,
  'model_' || CAST(k % {models} AS VARCHAR) AS model, 'v1' AS model_version,
  1 / (1 + exp(-(-2.5 + 3 * (z - 0.5)))) AS prediction,
  CASE WHEN d < 0.01 THEN NULL ELSE {placement} END AS placement, y
FROM g""")
        if day == DAY_START:
            con.execute("INSERT INTO predictions SELECT * FROM p_d")
            con.execute("DROP TABLE p_d")
    con.execute("""
CREATE OR REPLACE TABLE labels AS
SELECT request_id, CASE WHEN y < prediction THEN 1 ELSE 0 END AS label,
  ts + INTERVAL 1 MINUTE * (1 + CAST(hash(request_id) % 30 AS INTEGER)) AS label_ts
FROM predictions ORDER BY label_ts""")
    con.execute("ALTER TABLE predictions DROP COLUMN y")
    con.close()


def config(path: Path, state: Path, segments: bool) -> Any:
    quality: dict[str, Any] = {"initial_lookback": "1d", "max_windows_per_query": 24}
    if segments:
        quality["segment_by"] = ["placement"]
    jobs = {name: {"enabled": False} for name in ("predictions", "reproducibility", "training", "serving_features")}
    return parse_config({
        "init_config": {"state_dir": str(state)},
        "instances": [{"name": "bench", "warehouse": {"engine": "duckdb", "path": str(path)},
                       "jobs": {**jobs, "quality": quality}}],
    })


def run(path: Path, work: Path, segments: bool, now: float) -> tuple[float, Any, RecordingSink]:
    state = Path(tempfile.mkdtemp(dir=work))
    sink = RecordingSink()
    agent = Agent(config(path, state, segments), sink, clock=lambda: now)
    t0 = time.perf_counter()
    reports = agent.run_once()
    wall = time.perf_counter() - t0
    shutil.rmtree(state)
    (report,) = [r for r in reports if r.job == "quality"]
    assert not report.messages, report.messages
    return wall, report, sink


def points(sink: RecordingSink, prefix: str) -> dict[tuple[str, tuple[str, ...], float], float]:
    return {(s.name, tuple(sorted(s.tags)), s.timestamp): s.value for s in sink.samples if s.name.startswith(prefix)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rows", type=float, default=1e7)
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--values", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "mlmon-seg")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / "warehouse.duckdb"
    t0 = time.perf_counter()
    build(path, int(args.rows), args.models, args.values)
    print(f"built {path} ({int(args.rows):,} predictions on day D) in {time.perf_counter() - t0:.1f} s")
    now = DAY_START + DAY + 2 * 3600  # every window of D matured (label_delay 1h)

    engine = open_engine(config(path, args.dir, True).instances[0].warehouse)
    t0 = time.perf_counter()
    choice, _ = fetch_choice(engine, config(path, args.dir, True).instances[0], ["placement"], DAY_START - DAY,
                             DAY_START, 10)
    choice_wall = time.perf_counter() - t0
    engine.close()
    kept = {m: list(c["placement"].values) for m, c in choice.items()}
    print(f"choice statement (the day before, {int(args.rows) // 10:,} rows): {choice_wall:.2f} s; kept {kept}")

    walls: dict[bool, list[float]] = {False: [], True: []}
    last: dict[bool, tuple[Any, RecordingSink]] = {}
    for i in range(args.repeat + 1):
        for segments in (False, True):
            wall, report, sink = run(path, args.dir, segments, now)
            if i:  # the first of each is the warm-up
                walls[segments].append(wall)
            last[segments] = (report, sink)
    result: dict[str, Any] = {"rows": int(args.rows), "models": args.models, "values": args.values,
                              "choice_seconds": round(choice_wall, 3)}
    for segments in (False, True):
        report, sink = last[segments]
        name = "with segment_by" if segments else "without"
        seg = len({(s.name, s.tags) for s in sink.samples if s.name.startswith("mlmon.segment.")})
        print(f"{name:>16}: min {min(walls[segments]):.2f} s, median {statistics.median(walls[segments]):.2f} s, "
              f"rows fetched {report.rows_fetched}, segment series {seg}")
        result["with" if segments else "without"] = {"min": round(min(walls[segments]), 3),
                                                     "median": round(statistics.median(walls[segments]), 3),
                                                     "rows_fetched": report.rows_fetched, "segment_series": seg}
    ratio = statistics.median(walls[True]) / statistics.median(walls[False])
    plain, segmented = points(last[False][1], "mlmon.online."), points(last[True][1], "mlmon.online.")
    same_series = plain.keys() == segmented.keys()
    equal = same_series and all(math.isclose(plain[k], segmented[k], rel_tol=1e-12, abs_tol=1e-15) for k in plain)
    exact = sum(plain[k] == segmented.get(k) for k in plain)
    print(f"ratio of medians (with / without): {ratio:.2f}x")
    print(f"unsegmented mlmon.online.* points: same series {same_series}, equal to 1e-12 {equal}, "
          f"bit-identical {exact} of {len(plain)}")
    result.update(ratio=round(ratio, 3), same_series=same_series, equal=equal, identical=exact, points=len(plain))
    if not args.keep:
        path.unlink()
    print("BENCH_RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
