"""``mlmon demo``: a demo warehouse, every job run over it, and what the shipped monitors would have said."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from mlmon.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from mlmon.cli.opening import _secrets


def cmd_demo(args: argparse.Namespace) -> int:
    """Build a demo warehouse, run every job over its week, print the summary."""
    import shutil

    from mlmon import demo
    from mlmon.config import parse_config
    from mlmon.logs import configure_logging
    from mlmon.runner import Agent
    from mlmon.sinks.base import SinkError
    from mlmon.sinks.factory import make_sink

    directory = Path(args.dir)
    warehouse = directory / "warehouse.duckdb"
    jsonl = directory / "metrics.jsonl"
    state = directory / "state"
    shutil.rmtree(state, ignore_errors=True)
    jsonl.unlink(missing_ok=True)
    end = time.time()
    started = time.perf_counter()
    counts = demo.build_warehouse(warehouse, end, days=args.days)
    print(f"demo warehouse {warehouse}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    config = parse_config(demo.config(warehouse, state, jsonl, args.days, send=args.send), "mlmon demo")
    configure_logging(args.log_level, _secrets(config))
    try:
        sink = make_sink(config.init_config.datadog)
    except SinkError as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reports = Agent(config, sink).run_once()
    by_job = {r.job: r for r in reports}

    def outputs(*jobs: str) -> list[Any]:
        return [o for job in jobs if job in by_job for o in by_job[job].outputs]

    print("\nPredictions (10-minute windows over the week)")
    print(demo.format_summary(demo.summarise(outputs("predictions"))))
    print("\nOnline quality (latest hourly window with matured labels) and reproducibility")
    print(demo.format_online(demo.summarise_online(outputs("quality", "reproducibility"))))
    print("\nSegments (placement: hourly windows with matured labels; a slice is judged against its model in the "
          "windows where it has segment_min_labeled labeled rows, averaged over a day)")
    print(demo.format_segments(demo.summarise_segments(outputs("quality"))))
    print("\nTraining lineage (latest version of each model)")
    training = by_job["training"].snapshot if "training" in by_job else []
    print(demo.format_training(demo.summarise_training(training)))
    print("\nServing inputs (hourly windows over the week, against the serving version's training data)")
    print(demo.format_serving(demo.summarise_serving(outputs("serving_features"))))
    print()
    if not args.send:
        print(_demo_monitors(jsonl))
        print()
    for r in reports:
        where = "sent to Datadog" if args.send else f"written to {jsonl}"
        print(f"job {r.job}: {r.windows_processed} window(s), {r.points_sent:,} points {where}, "
              f"{r.points_skipped:,} skipped, {r.rows_fetched:,} aggregate rows fetched, "
              f"{r.errors} error(s) in {time.perf_counter() - started:.1f}s")
        for message in r.messages:
            print(f"  error: {message}")
    if not args.send:
        print(_demo_report(jsonl, directory / "report.html"))
    return EXIT_FAILURE if any(r.errors for r in reports) else EXIT_OK


def _demo_monitors(jsonl: Path) -> str:
    """The shipped monitors replayed every 10 minutes over the demo's metrics: what would have fired."""
    from mlmon.assets import report
    from mlmon.assets.evaluate import Status, evaluate, load_monitors, replay
    from mlmon.assets.recording import Recording
    from mlmon.shipped import shipped_root

    try:
        root = shipped_root()
    except FileNotFoundError as exc:
        return f"Monitors: {exc}"
    recording = Recording.load(jsonl)
    if recording.start is None or recording.end is None:
        return "Monitors: no metrics recorded"
    monitors = load_monitors(root)
    episodes = [e for e in replay(monitors, recording, recording.start, recording.end, 600)
                if e.status is not Status.WARN]
    lines = [f"Monitors that would have fired over the demo ({len(monitors)} shipped monitors replayed every "
             f"10 minutes; `mlmon assets evaluate --metrics {jsonl} --every 10m` for warnings too)",
             "monitor / group / status / first / last evaluation / worst value"]
    lines += report.format_episodes(episodes) or ["none"]
    firing = sorted({(r.monitor, r.group_name) for r in evaluate(monitors, recording, recording.end) if r.fires})
    lines.append(f"firing at the end: {', '.join(f'{m} ({g})' for m, g in firing) or 'none'}")
    return "\n".join(lines)


def _demo_report(jsonl: Path, out: Path) -> str:
    """Write ``mlmon report`` of the demo's metrics next to them; the line saying where (or why not)."""
    from mlmon.assets.evaluate import load_monitors
    from mlmon.html_report import INSTALL_HINT, MissingExtra, ReportError, require_matplotlib, write_report
    from mlmon.shipped import shipped_root

    try:
        require_matplotlib()
    except MissingExtra:
        out.unlink(missing_ok=True)  # not an earlier run's report beside this run's metrics
        return f"report: not written, matplotlib is not installed ({INSTALL_HINT}, then mlmon demo again)"
    try:
        report = write_report(jsonl, out, load_monitors(shipped_root()))
    except (ReportError, FileNotFoundError, OSError, ValueError) as exc:
        return f"report: not written: {exc}"
    models, episodes = len(report.models), len(report.episodes)
    return f"report: {out} ({models} model(s), {episodes} monitor episode(s); open it in a browser)"
