"""The history case: an hourly run's cost on a warehouse holding 1 day of history versus one holding 30 days.

    .venv/bin/python benchmarks/history.py [--rows-per-day 2e6] [--days 1,30] [--models 8] [--repeat 3] [--warmup 1]
        [--dir /tmp/mlmon-history] [--keep] [--reuse] [--python .venv/bin/python] [--json out.json]

Builds one DuckDB warehouse per ``--days`` value (default two: 1 day and 30 days of history), each ending at
the same whole hour (the current one when built), with ``--rows-per-day`` predictions a day (default 2·10^6:
the 30-day warehouse holds 6·10^7 predictions, as many labels and 98 % as many replays) spread evenly over
``--models`` models of one version each. Everything is generated in DuckDB SQL (``range()`` and ``hash()``,
no Python loop):

* ``predictions(request_id, ts, model, model_version, prediction)``, stored in ``ts`` order;
* ``labels(request_id, label, label_ts)``, one per prediction, arriving 1 to 30 minutes after it, stored in
  arrival (``label_ts``) order;
* ``replays(request_id, model_version, prediction, ts)`` for 98 % of the predictions (2 % of those off by 1 %),
  ``ts`` the time the replayed request was served, arriving 20 to 60 minutes after it and stored in arrival
  order; so neither labels nor replays are clustered by ``request_id`` (an MD5, like a UUID).

Row ``k`` is served at ``k · 86400 / rows_per_day`` seconds after the epoch and every value of it (its request
id, model, score, label, delays, replay) is a function of ``k`` alone (``hash()``, not ``random()``): two
warehouses hold exactly the same rows for the hours they share, however much history precedes them and
whenever they were built.

Then it runs the agent's hourly jobs, ``mlmon run --once`` (``--python -m mlmon``; ``PYTHONPATH`` passes through,
to measure another checkout), in a child process per run with a fresh state directory, a JSON Lines sink and a
config where only ``quality`` and ``reproducibility`` are enabled, each with ``initial_lookback: 3h`` and the
default delays (1 h): the run, on the wall clock, processes the three hourly windows ``[H-4h, H-1h)`` (``H`` the
current hour), full of data. After ``--warmup`` untimed runs per warehouse, ``--repeat`` runs per warehouse,
alternating between them; wall time (interpreter start-up and imports included), CPU time
(user + sys) and peak RSS come from ``os.wait4`` (``ru_maxrss`` of the child; the parent never opens DuckDB
itself, builds and inspections run in child processes, so that its own peak does not leak into the agent's
figure). It prints the minimum and median wall time, the median CPU time (steadier than wall time on a shared
machine), the peak RSS,
the agent's own per-job durations, the ratio of the medians (each warehouse vs the first), whether every run
computed identical metrics for the same windows (same windows, same rows: the warehouses differ only by their
history), whether those windows were full (every prediction of a window counted), and a last line
``BENCH_RESULT {json}`` (also written to ``--json``).

A warehouse is rebuilt when the wall clock has moved so far that its data no longer covers the due windows
(more than an hour after the hour it ends at); ``--reuse`` keeps one that still does and was built with the same
sizes. Without ``--keep`` the warehouses and run outputs are deleted at the end.
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
LOOKBACK_WINDOWS = 3  # initial_lookback: 3h of hourly windows
DELAY = HOUR  # the default label_delay and replay_delay
JOBS = ("quality", "reproducibility")
GENERATOR = "history-1"  # bump when the generated data changes: --reuse then rebuilds
RESULT_PREFIX = "BENCH_RESULT "
CHILD_PREFIX = "HISTORY_CHILD "
REL_TOL = 1e-9  # float sums in another order (DuckDB aggregates in parallel) may differ in their last bits


# ----------------------------------------------------------------------------------------------- data


def _macros(rows_per_day: int, models: int) -> list[str]:
    """Row ``k``'s values as SQL macros of ``k`` (numbers are this script's own, never user text)."""
    return [
        # a uniform in (0, 1), stream s (0..7) of row k: hash(k, s) combines its arguments too weakly
        # (its streams correlate at 0.6), hash(8k + s) does not
        "CREATE OR REPLACE TEMP MACRO u(k, s) AS ((hash(k * 8 + s) >> 11)::DOUBLE + 0.5) / 9007199254740992.0",
        f"CREATE OR REPLACE TEMP MACRO ts_of(k) AS make_timestamp(CAST((k::HUGEINT * {DAY * 10**6}) // {rows_per_day}"
        " AS BIGINT))",
        "CREATE OR REPLACE TEMP MACRO rid(k) AS md5(k::VARCHAR)",
        f"CREATE OR REPLACE TEMP MACRO model_of(k) AS 'model_' || (k % {models})",
        # a logistic of a normal (Box-Muller): a CTR-like score, mean about 0.06
        "CREATE OR REPLACE TEMP MACRO score(k) AS 1 / (1 + exp(-(-3.0 + 0.9 * sqrt(-2 * ln(u(k, 1)))"
        " * cos(2 * pi() * u(k, 2)))))",
    ]


def slots(end: int, days: int, rows_per_day: int) -> tuple[int, int]:
    """The rows ``k`` served in ``[end - days, end)``: ``k0 <= k < k1`` (exact integer arithmetic)."""
    start = end - days * DAY
    return -(-start * rows_per_day // DAY), -(-end * rows_per_day // DAY)


def generate(path: Path, days: int, rows_per_day: int, models: int, end: int, tmp: Path) -> dict[str, float]:
    """Write the warehouse ``[end - days, end)``; seconds per table."""
    import duckdb

    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    k0, k1 = slots(end, days, rows_per_day)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET temp_directory = '{tmp}'")  # the sorts by arrival may spill
    con.execute("SET preserve_insertion_order = true")  # stored in the order inserted (the default, said)
    for macro in _macros(rows_per_day, models):
        con.execute(macro)
    seconds = {}
    statements = {
        "predictions": f"""
            CREATE TABLE predictions AS
            SELECT rid(range) AS request_id, ts_of(range) AS ts, model_of(range) AS model, 'v1' AS model_version,
                   score(range) AS prediction
            FROM range({k0}, {k1})""",
        "labels": f"""
            CREATE TABLE labels AS
            SELECT request_id, label, label_ts FROM (
              SELECT rid(range) AS request_id, CASE WHEN u(range, 3) < score(range) THEN 1 ELSE 0 END AS label,
                     ts_of(range) + to_microseconds(CAST(60e6 + u(range, 4) * 1740e6 AS BIGINT)) AS label_ts
              FROM range({k0}, {k1}))
            ORDER BY label_ts""",
        "replays": f"""
            CREATE TABLE replays AS
            SELECT request_id, model_version, prediction, ts FROM (
              SELECT rid(range) AS request_id, 'v1' AS model_version,
                     CASE WHEN u(range, 6) < 0.02 THEN score(range) * 1.01 ELSE score(range) END AS prediction,
                     ts_of(range) AS ts,
                     ts_of(range) + to_microseconds(CAST(1200e6 + u(range, 7) * 2400e6 AS BIGINT)) AS arrived
              FROM range({k0}, {k1})
              WHERE u(range, 5) < 0.98)
            ORDER BY arrived""",
    }
    for table, sql in statements.items():
        t0 = time.perf_counter()
        con.execute(sql)
        seconds[table] = time.perf_counter() - t0
    con.execute("CREATE TABLE bench_meta AS SELECT $g AS generator, $days AS days, $rows AS rows_per_day, "
                "$models AS models, $end AS end_ts",
                {"g": GENERATOR, "days": days, "rows": rows_per_day, "models": models, "end": end})
    t0 = time.perf_counter()
    con.execute("CHECKPOINT")
    con.close()
    seconds["checkpoint"] = time.perf_counter() - t0
    shutil.rmtree(tmp, ignore_errors=True)
    return seconds


def existing(path: Path, days: int, rows_per_day: int, models: int) -> int | None:
    """The end of a warehouse built earlier with the same sizes and generator, if any (``--reuse``)."""
    import duckdb

    if not path.exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
        row = con.execute("SELECT generator, days, rows_per_day, models, end_ts FROM bench_meta").fetchone()
        con.close()
    except duckdb.Error:
        return None
    return int(row[4]) if row and tuple(row[:4]) == (GENERATOR, days, rows_per_day, models) else None


def due_windows(now: float) -> list[tuple[int, int]]:
    """The hourly windows a first run at ``now`` processes (``mlmon.jobs.windows.due_windows`` with a 1 h delay
    and a 3 h lookback): the three latest whose end + 1 h has passed."""
    last_end = math.floor((now - DELAY) / HOUR) * HOUR
    return [(last_end - i * HOUR, last_end - (i - 1) * HOUR) for i in range(LOOKBACK_WINDOWS, 0, -1)]


def covers(end: int, days: int, now: float) -> bool:
    """Whether ``[end - days, end)`` holds the windows due at ``now``."""
    windows = due_windows(now)
    return windows[0][0] >= end - days * DAY and windows[-1][1] <= end


def table_rows(path: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    out = {}
    for t in ("predictions", "labels", "replays"):
        row = con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()
        out[t] = int(row[0]) if row else 0
    con.close()
    return out


def file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + ".wal")) if p.exists())


def window_rows(path: Path, windows: list[tuple[int, int]]) -> dict[str, int]:
    """Predictions per ``model|window end`` in ``windows`` (what a full window's counts must add up to)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    out = {}
    for start, end in windows:
        rows = con.execute(
            "SELECT model, COUNT(*) FROM predictions WHERE ts >= make_timestamp($s) AND ts < make_timestamp($e) "
            "GROUP BY model", {"s": start * 10**6, "e": end * 10**6}).fetchall()
        out.update({f"{m}|{end}": n for m, n in rows})
    con.close()
    return out


def prepare(args: argparse.Namespace, cases: list[int], rows_per_day: int) -> dict[int, dict[str, Any]]:
    """Each case's warehouse: reused (``--reuse``, still covering the due windows) or built, all ending at
    the current hour; its path, end, build seconds, the build's peak RSS, rows and size.

    Building and inspecting run in child processes: a parent that grew to the build's gigabytes would pass its
    peak on to every child it starts (Linux carries the high-water RSS across fork/vfork and exec into the
    child's ``ru_maxrss``), and the agent's figure would be the build's.
    """
    end = math.floor(time.time() / HOUR) * HOUR
    out: dict[int, dict[str, Any]] = {}
    per_row: float | None = None  # bytes per prediction (the three tables), measured on the first build
    for days in cases:
        path = args.dir / f"history-{days}d.duckdb"
        spec = {"path": str(path), "days": days, "rows_per_day": rows_per_day, "models": args.models}
        old = child(args.dir, "meta", spec).get("end") if args.reuse else None
        if old is not None and covers(old, days, time.time()):
            out[days] = {"path": path, "end": old, "build_s": None}
            print(f"{days:>3} d: reusing {path} (ends {iso(old)})", flush=True)
        else:
            rows = days * rows_per_day
            free = shutil.disk_usage(args.dir).free
            if per_row is not None and rows * per_row * 1.3 > free:
                sys.exit(f"history.py: not enough disk in {args.dir} for {days} days: about "
                         f"{rows * per_row / 1e9:.1f} GB needed (x1.3 for the sorts' spill), {free / 1e9:.1f} GB free")
            print(f"{days:>3} d: building {path}: {rows:,} predictions ending {iso(end)} ...", flush=True)
            t0 = time.perf_counter()
            built = child(args.dir, "build", {**spec, "end": end, "tmp": str(args.dir / f"tmp-{days}d")})
            os.sync()  # the file's dirty pages written now, not during the timed runs
            build_s = time.perf_counter() - t0
            parts = built["seconds"]
            out[days] = {"path": path, "end": end, "build_s": build_s, "build_parts_s": parts,
                         "build_peak_rss_mb": built["peak_rss_mb"]}
            print(f"       built in {build_s:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in parts.items())}, "
                  f"then sync); {file_bytes(path) / 1e9:.2f} GB; build peak RSS {built['peak_rss_mb']:.0f} MB",
                  flush=True)
            per_row = per_row or file_bytes(path) / rows
        out[days]["rows"] = child(args.dir, "rows", spec)["rows"]
        out[days]["bytes"] = file_bytes(out[days]["path"])
    return out


def child(workdir: Path, task: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``task`` (``build``, ``meta``, ``rows``, ``window_rows``) in a child process of this script; its
    result, and its peak RSS."""
    log = workdir / f"{task}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", task,
                                 "--spec", json.dumps(spec)], stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    text = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"history.py: {task} failed:\n" + "\n".join(text.splitlines()[-10:]))
    line = next(line for line in reversed(text.splitlines()) if line.startswith(CHILD_PREFIX))
    log.unlink()
    return {**json.loads(line.removeprefix(CHILD_PREFIX)), "peak_rss_mb": usage.ru_maxrss / 1024}


def child_main(task: str, spec: dict[str, Any]) -> int:
    """The child's side of :func:`child`: do ``task``, print its result line."""
    path = Path(spec["path"])
    if task == "build":
        result: dict[str, Any] = {"seconds": generate(path, spec["days"], spec["rows_per_day"], spec["models"],
                                                      spec["end"], Path(spec["tmp"]))}
    elif task == "meta":
        result = {"end": existing(path, spec["days"], spec["rows_per_day"], spec["models"])}
    elif task == "rows":
        result = {"rows": table_rows(path)}
    else:
        result = {"rows": window_rows(path, [tuple(w) for w in spec["windows"]])}
    print(CHILD_PREFIX + json.dumps(result), flush=True)
    return 0


# ------------------------------------------------------------------------------------------ the runs


def agent_config(run_dir: Path, warehouse: Path) -> Path:
    """Only the hourly window jobs, 3 h first-run lookback, default delays, JSON Lines (written as JSON,
    which is YAML)."""
    config = {
        "init_config": {"state_dir": str(run_dir / "state"),
                        "datadog": {"transport": "jsonl", "jsonl_path": str(run_dir / "metrics.jsonl")}},
        "instances": [{
            "name": "history",
            "warehouse": {"engine": "duckdb", "path": str(warehouse)},
            "jobs": {"predictions": {"enabled": False}, "training": {"enabled": False},
                     "quality": {"initial_lookback": "3h"}, "reproducibility": {"initial_lookback": "3h"}},
        }],
    }
    path = run_dir / "conf.yaml"
    path.write_text(json.dumps(config, indent=1))
    return path


def run_agent(python: str, run_dir: Path, warehouse: Path) -> dict[str, Any]:
    """``mlmon run --once`` in a child process, fresh state; wall time, peak RSS, exit code and its output."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    config = agent_config(run_dir, warehouse)
    log = run_dir / "agent.log"
    cmd = [python, "-m", "mlmon", "run", "--once", "--config", str(config), "--log-level", "WARNING"]
    started = time.time()
    with log.open("w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    run: dict[str, Any] = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
                           "peak_rss_mb": usage.ru_maxrss / 1024, "returncode": code, "started": started,
                           "load_1m": os.getloadavg()[0], "expected_windows": [e for _, e in due_windows(started)]}
    metrics = run_dir / "metrics.jsonl"
    run.update(read_output(metrics) if metrics.exists() else {"jobs": {}, "values": {}})
    text = log.read_text(errors="replace").strip()
    if text:
        run["log_tail"] = "\n".join(text.splitlines()[-8:])
    return run


def read_output(path: Path) -> dict[str, Any]:
    """The agent's self-metrics per job, and every model metric keyed ``metric|model|version|window end``."""
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
            jobs.setdefault(tags.get("job", "?"), {})[name.removeprefix("mlmon.agent.")] = value
        else:
            values[f"{name}|{tags.get('model', '')}|{tags.get('model_version', '')}|{int(ts)}"] = value
    return {"jobs": jobs, "values": values}


def compare(a: dict[str, float], b: dict[str, float]) -> dict[str, Any]:
    """How two runs' metrics differ: keys only one has, values beyond :data:`REL_TOL`, the largest difference."""
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    common = set(a) & set(b)
    exact = sum(1 for k in common if a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]))
    worst, differ = 0.0, []
    for k in common:
        x, y = a[k], b[k]
        if x == y or (x != x and y != y):
            continue
        rel = abs(x - y) / max(abs(x), abs(y), 1e-300)
        worst = max(worst, rel)
        if rel > REL_TOL:
            differ.append(k)
    return {"values": len(common), "bit_identical": exact, "max_rel_diff": worst, "differ": sorted(differ),
            "only_first": only_a, "only_second": only_b,
            "identical": not only_a and not only_b and not differ and bool(common)}


def window_ends(values: dict[str, float]) -> list[int]:
    return sorted({int(k.rsplit("|", 1)[1]) for k in values})


def fullness(values: dict[str, float], expected: dict[str, int]) -> list[str]:
    """Problems: a (model, window) whose counts do not add up to the predictions it holds (every prediction has a
    label that arrives within the delay; checked + missing replays cover every valid prediction)."""
    problems = []
    groups = {k.split("|", 1)[1] for k in values}  # model|version|end
    seen = set()
    for g in sorted(groups):
        model, _, end = g.split("|")
        n = expected.get(f"{model}|{end}", 0)
        seen.add(f"{model}|{end}")
        labeled = values.get(f"mlmon.online.labeled_count|{g}")
        covered = (values.get(f"mlmon.reproducibility.checked_count|{g}", 0)
                   + values.get(f"mlmon.reproducibility.missing_count|{g}", 0))
        if labeled != n:
            problems.append(f"{model} window ending {iso(int(end))}: labeled_count {labeled}, {n} predictions")
        if covered != n:
            problems.append(f"{model} window ending {iso(int(end))}: checked + missing {covered}, {n} predictions")
    for k in sorted(set(expected) - seen):
        problems.append(f"{k.replace('|', ' window ending ')}: no metrics")
    return problems


# --------------------------------------------------------------------------------------------- report


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def machine(python: str) -> dict[str, Any]:
    """CPU, cores, RAM, load, versions, and which mlmon the child runs (``PYTHONPATH`` may point elsewhere)."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    probe = subprocess.run([python, "-c", "import duckdb, mlmon; print(mlmon.__file__); print(duckdb.__version__)"],
                           capture_output=True, text=True)
    where, duckdb_version = [*probe.stdout.split("\n"), "?", "?"][:2] if probe.returncode == 0 else ("?", "?")
    src = Path(where).resolve().parent.parent if where != "?" else None
    head = None
    if src is not None:
        git = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True)
        if git.returncode == 0:
            head = git.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")
    return {"cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "ram_gb": round(mem_kb / 1024**2, 1), "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "duckdb": duckdb_version, "mlmon": where,
            "mlmon_git": head or "not a git checkout (e.g. an exported snapshot)",
            "mlmon_version": _version("mlmon")}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    rss = [r["peak_rss_mb"] for r in runs]
    cpu = [r["cpu_s"] for r in runs]
    out: dict[str, Any] = {"runs": len(runs), "wall_s": walls, "wall_min_s": min(walls),
                           "wall_median_s": statistics.median(walls), "cpu_s": cpu,
                           "cpu_median_s": statistics.median(cpu), "load_1m": [r["load_1m"] for r in runs],
                           "peak_rss_mb": rss,
                           "peak_rss_median_mb": statistics.median(rss), "peak_rss_max_mb": max(rss), "jobs": {}}
    for job in JOBS:
        per = [r["jobs"].get(job, {}) for r in runs]
        durations = [p["run.duration_seconds"] for p in per if "run.duration_seconds" in p]
        out["jobs"][job] = {
            "duration_median_s": statistics.median(durations) if durations else None,
            "duration_min_s": min(durations) if durations else None,
            "windows_processed": [p.get("windows_processed") for p in per],
            "rows_fetched": [p.get("rows_fetched") for p in per],
            "errors": [p.get("run.errors") for p in per],
        }
    return out


def report(args: argparse.Namespace, rows_per_day: int, built: dict[int, dict[str, Any]],
           runs: dict[int, list[dict[str, Any]]], info: dict[str, Any], expected: dict[str, int]) -> dict[str, Any]:
    cases = list(runs)
    first = cases[0]
    lines = [f"machine: {info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), {info['ram_gb']} GB RAM; "
             f"Python {info['python']}, DuckDB {info['duckdb']}; load average {info['load_average_1m']} before the "
             "runs",
             f"mlmon run: {info['mlmon']} ({info['mlmon_git']})", ""]
    for days in cases:
        b = built[days]
        r = b["rows"]
        how = (f"built in {b['build_s']:.1f} s (peak RSS {b['build_peak_rss_mb']:.0f} MB)" if b["build_s"] is not None
               else "reused (--reuse)")
        lines.append(f"warehouse {days:>2} d: {r['predictions']:,} predictions, {r['labels']:,} labels, "
                     f"{r['replays']:,} replays, ends {iso(b['end'])}; {b['bytes'] / 1e9:.2f} GB; {how}")
    total_build = sum(b["build_s"] or 0 for b in built.values())
    lines.append(f"build time, all warehouses: {total_build:.1f} s; disk: "
                 f"{sum(b['bytes'] for b in built.values()) / 1e9:.2f} GB")
    ends = sorted({e for rs in runs.values() for r in rs for e in window_ends(r["values"])})
    lines += ["", "windows processed: " + ", ".join(f"{iso(e - HOUR)[11:16]}-{iso(e)[11:]}" for e in ends)
              + f" ({iso(ends[0] - HOUR)[:10]})" if ends else "windows processed: none", ""]

    summary = {days: summarize(rs) for days, rs in runs.items()}
    lines += [f"| history | runs | wall min (s) | wall median (s) | CPU median (s) | peak RSS median (MB) "
              f"| quality job median (s) | reproducibility job median (s) | wall median / {first} d |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = summary[first]["wall_median_s"]
    for days, s in summary.items():
        q, rp = (s["jobs"][j]["duration_median_s"] for j in JOBS)
        lines.append(f"| {days} d | {s['runs']} | {s['wall_min_s']:.2f} | {s['wall_median_s']:.2f} | "
                     f"{s['cpu_median_s']:.2f} | {s['peak_rss_median_mb']:.0f} | {_f(q)} | {_f(rp)} | "
                     f"{s['wall_median_s'] / base:.2f} |")
    lines.append("")
    for days, s in summary.items():
        walls = ", ".join(f"{w:.2f}" for w in s["wall_s"])
        rss = ", ".join(f"{m:.0f}" for m in s["peak_rss_mb"])
        jobs = "; ".join(f"{j}: windows {s['jobs'][j]['windows_processed']}, rows fetched "
                         f"{s['jobs'][j]['rows_fetched']}, errors {s['jobs'][j]['errors']}" for j in JOBS)
        cpu = ", ".join(f"{c:.2f}" for c in s["cpu_s"])
        load = ", ".join(f"{x:.1f}" for x in s["load_1m"])
        lines.append(f"{days:>2} d runs: wall {walls} s; CPU (user + sys) {cpu} s; peak RSS {rss} MB; load average "
                     f"after {load}; {jobs}")
    ratios = {}
    for days in cases[1:]:
        s = summary[days]
        ratios[f"{days}d/{first}d"] = {
            "wall_median": s["wall_median_s"] / base,
            "wall_min": s["wall_min_s"] / summary[first]["wall_min_s"],
            "cpu_median": s["cpu_median_s"] / summary[first]["cpu_median_s"],
            **{f"{j}_median": _ratio(s["jobs"][j]["duration_median_s"], summary[first]["jobs"][j]["duration_median_s"])
               for j in JOBS},
        }
        r = ratios[f"{days}d/{first}d"]
        lines.append(f"ratio {days} d / {first} d: wall median {r['wall_median']:.2f}x, wall min {r['wall_min']:.2f}x, "
                     f"CPU median {r['cpu_median']:.2f}x, "
                     + ", ".join(f"{j} job {_f(r[f'{j}_median'])}x" for j in JOBS))

    # the same metrics, the same windows, full windows
    reference = runs[first][0]
    checks: dict[str, Any] = {}
    identical = True
    for days, rs in runs.items():
        for i, r in enumerate(rs):
            if days == first and i == 0:
                continue
            c = compare(reference["values"], r["values"])
            checks[f"{days}d#{i + 1}"] = c
            identical &= c["identical"]
    worst = max((c["max_rel_diff"] for c in checks.values()), default=0.0)
    n_values = len(reference["values"])
    lines.append("")
    if identical:
        lines.append(f"metrics identical in every run ({', '.join(f'{d} d' for d in cases)}): yes, {n_values} values "
                     f"over {len(window_ends(reference['values']))} windows; largest relative difference {worst:.1e} "
                     f"(within {REL_TOL:g}: parallel float sums)")
    else:
        lines.append("metrics identical in every run: NO")
        for name, c in checks.items():
            if not c["identical"]:
                lines.append(f"  {name} vs {first}d#1: {len(c['differ'])} values differ beyond {REL_TOL:g} "
                             f"(e.g. {c['differ'][:3]}), only in {first}d#1: {c['only_first'][:3]} "
                             f"({len(c['only_first'])}), only in {name}: {c['only_second'][:3]} "
                             f"({len(c['only_second'])})")
    problems = []
    for days, rs in runs.items():
        for i, r in enumerate(rs):
            name = f"{days}d#{i + 1}"
            if r["returncode"] != 0:
                problems.append(f"{name}: exit {r['returncode']}: {r.get('log_tail', '')}")
            if window_ends(r["values"]) != r["expected_windows"]:
                problems.append(f"{name}: windows ending {[iso(e) for e in window_ends(r['values'])]}, expected "
                                f"{[iso(e) for e in r['expected_windows']]}")
            errors = [r["jobs"].get(j, {}).get("run.errors") for j in JOBS]
            if any(e for e in errors):
                problems.append(f"{name}: job errors {dict(zip(JOBS, errors, strict=True))}: {r.get('log_tail', '')}")
    full = fullness(reference["values"], expected)
    lines.append("windows full (labeled_count and checked + missing = the window's predictions, every model): "
                 + ("yes" if not full else f"NO: {'; '.join(full[:6])}"))
    lines += [f"problem: {p}" for p in problems]
    print("\n".join(lines), flush=True)
    return {
        "rows_per_day": rows_per_day, "models": args.models, "days": cases, "repeat": args.repeat,
        "machine": info,
        "warehouses": {f"{d}d": {"path": str(b["path"]), "end": b["end"], "rows": b["rows"], "bytes": b["bytes"],
                                 "build_s": b["build_s"], "build_parts_s": b.get("build_parts_s"),
                                 "build_peak_rss_mb": b.get("build_peak_rss_mb")}
                       for d, b in built.items()},
        "build_s": total_build, "windows": ends,
        "results": {f"{d}d": s for d, s in summary.items()}, "ratios": ratios,
        "identical_metrics": identical, "metric_values": n_values, "max_rel_diff": worst,
        "windows_full": not full, "problems": problems + full,
    }


def _f(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else "n/a"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# ----------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows-per-day", type=float, default=2e6, help="predictions a day (default 2e6)")
    parser.add_argument("--days", default="1,30", help="days of history of each warehouse (default 1,30)")
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs per warehouse, alternating (default 3)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs per warehouse before the timed ones (default 1)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mlmon-history"))
    parser.add_argument("--keep", action="store_true", help="keep the warehouses and run outputs in --dir")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse --dir's warehouses built with the same sizes while they cover the due windows")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter whose mlmon is run (default: this one; PYTHONPATH passes through)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return args
    try:
        args.cases = sorted({int(d) for d in args.days.split(",") if d.strip()})
    except ValueError:
        parser.error(f"--days: expected comma-separated whole days, got {args.days!r}")
    if not args.cases or min(args.cases) < 1 or args.repeat < 1:
        parser.error("--days needs at least one value >= 1 and --repeat >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, json.loads(args.spec))
    rows_per_day = int(args.rows_per_day)
    args.dir.mkdir(parents=True, exist_ok=True)
    info = machine(args.python)
    built = prepare(args, args.cases, rows_per_day)
    runs: dict[int, list[dict[str, Any]]] = {d: [] for d in args.cases}
    warmup: dict[int, list[float]] = {d: [] for d in args.cases}
    for i in range(args.warmup):  # untimed: the first run after a build or in a while reads a colder cache
        for days in args.cases:
            print(f"warm-up {i + 1}/{args.warmup}, {days} d ...", flush=True)
            warmup[days].append(run_agent(args.python, args.dir / f"run-{days}d", built[days]["path"])["wall_s"])
    info["load_average_1m"] = round(os.getloadavg()[0], 2)
    for i in range(args.repeat):
        for days in args.cases:
            print(f"run {i + 1}/{args.repeat}, {days} d ...", flush=True)
            runs[days].append(run_agent(args.python, args.dir / f"run-{days}d", built[days]["path"]))
    ends = window_ends(runs[args.cases[0]][0]["values"])
    expected = child(args.dir, "window_rows", {"path": str(built[args.cases[0]]["path"]),
                                               "windows": [(e - HOUR, e) for e in ends]})["rows"]
    figures = report(args, rows_per_day, built, runs, info, expected)
    for days, walls in warmup.items():
        figures["results"][f"{days}d"]["warmup_wall_s"] = walls
    print(RESULT_PREFIX + json.dumps(figures, default=str), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    if not args.keep:
        for days in args.cases:
            for p in (built[days]["path"], built[days]["path"].with_name(built[days]["path"].name + ".wal")):
                p.unlink(missing_ok=True)
            shutil.rmtree(args.dir / f"run-{days}d", ignore_errors=True)
    ok = figures["identical_metrics"] and figures["windows_full"] and not figures["problems"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
