"""The ``mlmon`` command line. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlmon import __version__
from mlmon.config import DEFAULT_CONFIG_PATH, Config, ConfigError, PostgresWarehouse, load_config

if TYPE_CHECKING:
    from mlmon.sinks.base import Sink
    from mlmon.state import AgentLock

log = logging.getLogger("mlmon")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: what ``mlmon --help`` says first (plain text: argparse prints it as it is)
DESCRIPTION = ("mlmon reads prediction logs, labels, replays and training metadata from your warehouse, "
               "computes the metrics in the warehouse and sends them to Datadog.")
#: stdout closed by its reader: 128 + SIGPIPE, as the shell reports a command that SIGPIPE ended
EXIT_BROKEN_PIPE = 141


def _secrets(config: Config) -> list[str | None]:
    from mlmon.config import SQLAlchemyWarehouse
    from mlmon.sinks.factory import secrets_of

    urls = [i.warehouse.url.get_secret_value() for i in config.instances
            if isinstance(i.warehouse, PostgresWarehouse | SQLAlchemyWarehouse)]
    return secrets_of(config.init_config.datadog, urls)


def _load(args: argparse.Namespace) -> Config:
    from mlmon.logs import configure_logging

    config = load_config(args.config)
    configure_logging(args.log_level, _secrets(config))
    return config


def _sink_and_lock(config: Config, lock: AgentLock) -> tuple[Sink, AgentLock] | int:
    """The configured sink, with ``lock`` held; or, having said why on stderr, the exit code."""
    from mlmon.sinks.base import SinkError
    from mlmon.sinks.factory import make_sink
    from mlmon.state import LockError

    try:
        sink = make_sink(config.init_config.datadog)
    except SinkError as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        lock.acquire()
    except LockError as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return sink, lock


def _release(sink: Sink, lock: AgentLock) -> None:
    lock.release()
    close = getattr(sink, "close", None)
    if close is not None:
        close()


def cmd_run(args: argparse.Namespace) -> int:
    """Run the agent: every job once (``--once``), or on its schedule until SIGTERM/SIGINT."""
    from mlmon.runner import Agent
    from mlmon.state import AgentLock

    if args.format == "json" and not args.once:
        print("mlmon: --format json: only with --once (the daemon logs one summary line per job run)",
              file=sys.stderr)
        return EXIT_USAGE
    config = _load(args)
    opened = _sink_and_lock(config, AgentLock(config.init_config.state_dir))
    if isinstance(opened, int):
        return opened
    sink, lock = opened
    try:
        agent = Agent(config, sink)
        if args.once:
            from mlmon.scheduler import stop_on_signals

            stop_on_signals(agent)  # a CronJob's pod gets SIGTERM too: stop at a safe point, exit 0
            reports = agent.run_once()
            for r in reports:
                log.info("%s", r.summary())
            if args.format == "json":
                import json

                from mlmon.logs import SecretFilter

                print(SecretFilter(_secrets(config)).scrub(json.dumps([r.as_json() for r in reports], indent=2)))
            return EXIT_FAILURE if any(r.errors for r in reports) else EXIT_OK
        from mlmon.scheduler import run_forever

        run_forever(agent)
        return EXIT_OK
    finally:
        _release(sink, lock)


def cmd_backfill(args: argparse.Namespace) -> int:
    """Send a historical range through the jobs, the delivery and the sink of ``mlmon run``; resumable."""
    import signal

    from mlmon import backfill
    from mlmon.runner import WINDOW_JOBS
    from mlmon.scheduler import stop_on_signals
    from mlmon.state import BackfillLock, StateStore
    from mlmon.times import iso, parse_iso

    now = time.time()
    times = {}
    for flag, text in (("--start", args.start), ("--end", args.end)):
        try:
            times[flag] = parse_iso(text)
        except ValueError as exc:
            print(f"mlmon: {flag}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    start, end = times["--start"], times["--end"]
    if end <= start:
        print(f"mlmon: --end: {iso(end)} is not after --start {iso(start)}", file=sys.stderr)
        return EXIT_USAGE
    if start >= now:
        print(f"mlmon: --start: {iso(start)} is in the future", file=sys.stderr)
        return EXIT_USAGE
    jobs = args.job or list(WINDOW_JOBS)
    if "training" in jobs:
        print("mlmon: --job training: training is a snapshot job (each model's latest version, stamped at send "
              "time); it has no windows to backfill, and every mlmon run sends it", file=sys.stderr)
        return EXIT_USAGE
    config = _load(args)
    names = [i.name for i in config.instances]
    unknown = [n for n in args.instance or () if n not in names]
    if unknown:
        print(f"mlmon: --instance: no instance named {unknown[0]!r} in {args.config} "
              f"(instances: {', '.join(names)})", file=sys.stderr)
        return EXIT_USAGE
    refused = backfill.refusal(config.init_config.datadog)
    if refused:
        print(f"mlmon: {args.config}: {refused}", file=sys.stderr)
        return EXIT_USAGE
    state_dir = config.init_config.state_dir
    opened = _sink_and_lock(config, BackfillLock(state_dir))
    if isinstance(opened, int):
        return opened
    sink, lock = opened
    try:
        try:
            plans, notes = backfill.plan_backfill(config, StateStore(state_dir), start, end, now, jobs,
                                                  args.instance or ())
        except ValueError as exc:  # an unreadable state file
            print(f"mlmon: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        for note in notes:
            print(f"mlmon: {note}", file=sys.stderr)
        if not plans:
            print(f"mlmon: --start/--end: nothing to backfill between {iso(start)} and {iso(end)} "
                  f"for job(s) {', '.join(jobs)}", file=sys.stderr)
            return EXIT_USAGE
        where = f"{iso(start)} to {iso(end)}"
        if all(p.complete for p in plans):
            print(f"nothing to send: every window from {where} was already delivered by an earlier backfill "
                  f"of this range (its state: {state_dir}/<instance>/<job>.backfill-*.json)")
            return EXIT_OK
        total = sum(p.pending for p in plans)
        if not total:
            print(f"nothing to send yet: the windows left from {where} are not due")
            return EXIT_OK
        done = sum(lane.delivered_before for p in plans for lane in p.lanes)
        print(f"mlmon: backfilling {total:,} window(s) from {where}"
              + (f" ({done:,} delivered by an earlier run)" if done else ""), file=sys.stderr)
        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            with backfill.progress_on(sys.stderr, total) as progress:
                runner = backfill.Backfill(config, sink, plans, progress=progress)
                stop_on_signals(runner)  # finish the window in flight, save its watermark, exit 0
                results = runner.run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        print(backfill.format_summary(results, runner.stop.is_set()))
        return EXIT_FAILURE if any(r.report and r.report.errors for r in results) else EXIT_OK
    finally:
        _release(sink, lock)


def cmd_check(args: argparse.Namespace) -> int:
    """Check config, warehouse connectivity, tables and columns, and the Datadog key; report every problem."""
    from mlmon.preflight import preflight

    config = _load(args)
    warnings = 0

    def say(line: str) -> None:
        nonlocal warnings
        warnings += line.startswith("WARNING")
        print(line)

    problems = preflight(config, say)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return EXIT_FAILURE
    print("all checks passed" + (f", with {warnings} warning(s) above" if warnings else ""))
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    """Print how many custom-metric series each job will create; nothing is sent (no sink is built)."""
    from mlmon.config import parse_duration
    from mlmon.plan import format_json, format_text, plan_config

    config = _load(args)
    try:
        lookback = None if args.lookback is None else parse_duration(args.lookback)
    except ValueError as exc:
        print(f"mlmon: --lookback: {exc}", file=sys.stderr)
        return EXIT_USAGE
    plans = plan_config(config, time.time(), lookback=lookback)
    print(format_json(plans) if args.format == "json" else format_text(plans))
    errors = [e for p in plans for e in p.errors]
    for error in errors:
        print(f"mlmon: {error}", file=sys.stderr)
    return EXIT_FAILURE if errors else EXIT_OK


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
    config = parse_config(
        {
            "init_config": {
                "env": "demo",
                "state_dir": str(state),
                "datadog": {"transport": "api" if args.send else "jsonl", "jsonl_path": str(jsonl)},
            },
            "instances": [
                {
                    "name": "demo",
                    "warehouse": {"engine": "duckdb", "path": str(warehouse)},
                    "tags": ["team:ads", "source:mlmon-demo"],
                    "jobs": {
                        "predictions": {"initial_lookback": f"{args.days}d"},
                        # conversions arrive within hours: the CVR model's windows mature after a day
                        "quality": {"initial_lookback": f"{args.days}d", "label_delay": "1h",
                                    "label_delay_by_model": {"cvr_app": "1d"}},
                        "reproducibility": {"initial_lookback": f"{args.days}d"},
                        "training": {"features": ["age", "device", "bid_floor"]},
                    },
                }
            ],
        },
        "mlmon demo",
    )
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
    print("\nTraining lineage (latest version of each model)")
    training = by_job["training"].snapshot if "training" in by_job else []
    print(demo.format_training(demo.summarise_training(training)))
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


def cmd_init(args: argparse.Namespace) -> int:
    """Write a starter config: the shipped conf.yaml.example with --name, --warehouse and --env filled in."""
    import yaml

    from mlmon.config import parse_config
    from mlmon.shipped import EXAMPLE_CONFIG, shipped_root
    from mlmon.starter import starter_config

    path = Path(args.path)
    if path.exists() and not args.force:
        print(f"mlmon: {path} already exists; not overwriting it (--force replaces it)", file=sys.stderr)
        return EXIT_USAGE
    try:
        example = (shipped_root() / EXAMPLE_CONFIG).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    text = starter_config(example, name=args.name, warehouse=args.warehouse, env=args.env, agent=args.agent)
    try:  # what is written loads: a bad --name or URL is refused here, naming the setting
        instance = parse_config(yaml.safe_load(text), f"{path} (not written)").instances[0]
    except ConfigError as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"mlmon: {path}: cannot write ({exc.strerror})", file=sys.stderr)
        return EXIT_FAILURE
    where = getattr(instance.warehouse, "path", None)
    print(f"wrote {path}: instance {instance.name}, engine {instance.warehouse.engine}"
          + (f" ({where})" if where else ""))
    if args.warehouse is None:
        print("  the warehouse is the example's placeholder: edit it, or run again with --warehouse and --force")
    check = "mlmon check" + ("" if path == DEFAULT_CONFIG_PATH else f" --config {path}")
    print(f"check it (config, warehouse, tables and columns, Datadog key): {check}")
    return EXIT_OK


def _assets_root(args: argparse.Namespace) -> Path | None:
    """``--root``, else the assets shipped with mlmon; None, having said why on stderr, when it holds none."""
    from mlmon.shipped import shipped_root

    try:
        root = Path(args.root) if args.root is not None else shipped_root()
    except FileNotFoundError as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return None
    if not (root / "dashboards").is_dir() and not (root / "monitors").is_dir():
        print(f"mlmon: --root {root}: no dashboards/ or monitors/ directory", file=sys.stderr)
        return None
    return root


def _root_help(holding: str) -> str:
    """``--root``'s help: what it holds and the default, the directory :func:`mlmon.shipped.shipped_root` names."""
    from mlmon.shipped import shipped_root

    try:
        where = f"the assets shipped with mlmon, {shipped_root()}".replace("%", "%%")  # argparse formats help
    except FileNotFoundError:
        where = "the assets shipped with mlmon, missing from this installation"
    return f"directory holding {holding} (default: {where}; mlmon assets path prints it)"


def cmd_assets_path(args: argparse.Namespace) -> int:
    """Print the directory of the files shipped with mlmon (the default --root), or the path of one of them."""
    from mlmon.shipped import SHIPPED, shipped_root

    try:
        root = shipped_root()
    except FileNotFoundError as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    path = root / args.file if args.file else root
    if not path.exists():
        print(f"mlmon: {args.file}: not shipped with mlmon (in {root}: {', '.join(SHIPPED)})", file=sys.stderr)
        return EXIT_USAGE
    print(path)
    return EXIT_OK


def cmd_assets_validate(args: argparse.Namespace) -> int:
    """Hold dashboards/*.json and monitors/*.json under --root to Datadog's API models and the catalogue."""
    from mlmon.assets import asset_files, validate_assets

    root = _assets_root(args)
    if root is None:
        return EXIT_USAGE
    problems = validate_assets(root)
    for problem in problems:
        print(problem)
    if problems:
        files = {problem.split(": ", 1)[0] for problem in problems}
        print(f"{len(problems)} problem(s) in {len(files)} file(s)")
        return EXIT_FAILURE
    print(f"{len(asset_files(root))} asset(s) valid")
    return EXIT_OK


def cmd_assets_sync(args: argparse.Namespace) -> int:
    """Create or update the dashboards and monitors under --root in the Datadog account (--dry-run: plan only)."""
    from mlmon.assets import validate_assets
    from mlmon.assets.sync import DatadogAssetsApi, SyncError, apply, desired_assets, plan, summary
    from mlmon.logs import SecretFilter

    config = _load(args)
    scrub = SecretFilter(_secrets(config)).scrub
    datadog = config.init_config.datadog
    api_key, app_key = datadog.resolved_api_key(), datadog.resolved_app_key()
    if not api_key or not app_key:
        missing = ("API key: set init_config.datadog.api_key or DD_API_KEY" if not api_key
                   else "application key: set init_config.datadog.app_key or DD_APP_KEY")
        print(f"mlmon: assets sync needs a Datadog {missing}", file=sys.stderr)
        return EXIT_USAGE
    root = _assets_root(args)
    if root is None:
        return EXIT_USAGE
    problems = validate_assets(root)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"mlmon: not syncing: {len(problems)} problem(s) (see mlmon assets validate)", file=sys.stderr)
        return EXIT_FAILURE
    assets = desired_assets(root, config.init_config.assets, str(args.config))
    api = DatadogAssetsApi(api_key, app_key, datadog.resolved_api_host(), datadog.timeout)
    try:
        changes = plan(assets, api)
        for change in changes:
            print(scrub(change.describe()))
        if not args.dry_run:
            changes = apply(changes, api, lambda line: print(scrub(line)))
    except SyncError as exc:
        print(scrub(f"mlmon: {exc}"), file=sys.stderr)
        return EXIT_FAILURE
    print(summary(changes, args.dry_run))
    return EXIT_OK


def cmd_assets_evaluate(args: argparse.Namespace) -> int:
    """Which shipped monitors fire on recorded metrics (a JSON Lines sink file): per group at --at, or the
    episodes of a replay every --every."""
    import json

    from mlmon.assets import report
    from mlmon.assets.evaluate import EvaluateError, evaluate, load_monitors, replay, unsupported
    from mlmon.assets.recording import Recording, RecordingError
    from mlmon.config import parse_duration
    from mlmon.shipped import shipped_root
    from mlmon.times import iso, parse_time

    try:
        try:
            at = None if args.at is None else parse_time(args.at)
        except ValueError as exc:
            raise ValueError(f"--at: {exc}") from None
        every = None if args.every is None else parse_duration(args.every)
        if every is not None and every <= 0:
            raise ValueError("--every must be a positive duration")
        monitors = load_monitors(args.root if args.root is not None else shipped_root())
    except (ValueError, EvaluateError, FileNotFoundError) as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        recording = Recording.load(args.metrics)
    except RecordingError as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if recording.start is None or recording.end is None:
        print(f"mlmon: {args.metrics}: no metric points or service checks", file=sys.stderr)
        return EXIT_FAILURE
    at = recording.end if at is None else at
    skipped = unsupported(monitors)
    supported = [m for m in monitors if m.name not in skipped]
    if every is None:
        results = report.report_order(evaluate(supported, recording, at))
        if args.format == "json":
            print(json.dumps([*map(report.result_json, results), *report.unsupported_json(skipped)], indent=2))
            return EXIT_OK
        lines = report.format_results(results, skipped)
        firing = sum(r.fires for r in results)
        lines.append(f"{firing} of {len(results)} group(s) firing at {iso(at)}")
    else:
        episodes = replay(supported, recording, recording.start, at, every)
        if args.format == "json":
            print(json.dumps([*map(report.episode_json, episodes), *report.unsupported_json(skipped)], indent=2))
            return EXIT_OK
        lines = report.format_episodes(episodes, skipped)
        lines.append(f"{len(episodes)} episode(s) from {iso(recording.start)} to "
                     f"{iso(at)}, evaluated every {every:g}s")
    print("\n".join(lines))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="mlmon", description=DESCRIPTION,
        epilog="Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. "
        "Run mlmon COMMAND --help for a command's options.")
    parser.add_argument("--version", action="version", version=f"mlmon {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH,
                        help=f"config file (default: {DEFAULT_CONFIG_PATH})")
    common.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log records at this level and above go to stderr (default: INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")

    p = sub.add_parser("run", parents=[common], help="run the agent (scheduler, or --once for cron)")
    p.add_argument("--once", action="store_true", help="run every due window of every job once, then exit")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="with --once: json prints the run's report per job on stdout, for scripts (default: text, "
                   "the summary lines in the log only)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "backfill", parents=[common],
        help="send a past range through the window jobs (resumable, progress on stderr)",
        description="Send the windows of a past range through the same jobs, delivery and sink as mlmon run. "
        "Each job's windows fully inside [--start, --end) are sent, stamped at their end, oldest first; windows "
        "not due yet are left out. Progress goes to stderr (a bar on a terminal, a few lines otherwise; rows are "
        "the prediction rows the windows cover). The same command again continues where an interrupted or "
        "failed run stopped and sends no window twice. Needs transport: jsonl, or historical_ingestion: true.",
    )
    p.add_argument("--start", required=True, metavar="TIME",
                   help="ISO 8601 date or time, e.g. 2026-11-13 or 2026-11-13T14:00:00Z (UTC when no zone)")
    p.add_argument("--end", required=True, metavar="TIME", help="end of the range (exclusive), same forms")
    p.add_argument("--job", nargs="+", action="extend", metavar="JOB",
                   choices=["predictions", "quality", "reproducibility", "training"],
                   help="window job(s) to backfill (default: predictions, quality and reproducibility)")
    p.add_argument("--instance", nargs="+", action="extend", metavar="NAME",
                   help="instance(s) to backfill (default: every instance of the config)")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("check", parents=[common], help="check config, warehouse, tables, columns, Datadog key")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("plan", parents=[common],
                       help="print how many custom-metric series each job will create, before anything is sent")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format (default: text)")
    p.add_argument("--lookback", metavar="DURATION",
                   help="period of the window jobs, e.g. 1h or 1d (default: each job's initial_lookback)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("demo", help="build a demo DuckDB warehouse with incidents and run mlmon over it")
    p.add_argument("--dir", default="mlmon-demo", help="where to write the warehouse and metrics (default: mlmon-demo)")
    p.add_argument("--days", type=int, default=7, help="days of demo data (default: 7)")
    p.add_argument("--send", action="store_true",
                   help="push to Datadog (DD_API_KEY, DD_SITE) instead of writing JSON Lines")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log records at this level and above go to stderr (default: WARNING)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "init", help="write a starter config (the shipped conf.yaml.example, its required values filled in)",
        description="Write the shipped conf.yaml.example to PATH: every option documented, the optional ones "
        "commented out at their default, the required ones (the instance's name and warehouse) set from "
        "--name and --warehouse, so that the file works as written. Refuses to overwrite PATH without --force.",
    )
    p.add_argument("path", nargs="?", type=Path, default=DEFAULT_CONFIG_PATH, metavar="PATH",
                   help=f"where to write it, creating its directories (default: {DEFAULT_CONFIG_PATH})")
    p.add_argument("--warehouse", metavar="FILE_OR_URL",
                   help="a DuckDB file (written as an absolute path), a postgresql:// URL (engine postgres) or "
                   "another SQLAlchemy URL such as snowflake://user@account/db (engine sqlalchemy); single-quote a "
                   "${PGPASSWORD} in it so that mlmon, not the shell, expands it (default: the placeholder "
                   "warehouse.duckdb)")
    p.add_argument("--name", help="instance name, its instance:<name> tag and state folder (default: main)")
    p.add_argument("--env", help="the env:<env> tag of every metric (default: none, left commented out)")
    p.add_argument("--agent", action="store_true",
                   help="for the Datadog Agent check: min_collection_interval: 600, empty_default_hostname: true")
    p.add_argument("--force", action="store_true", help="overwrite PATH when it exists")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("assets", help="the Datadog dashboards and monitors shipped with mlmon")
    assets = p.add_subparsers(dest="assets_command", required=True, metavar="COMMAND", help="one of:")
    p = assets.add_parser("validate", help="check dashboards/ and monitors/ against Datadog's API and metadata.csv")
    p.add_argument("--root", type=Path, help=_root_help("dashboards/, monitors/ and metadata.csv"))
    p.set_defaults(func=cmd_assets_validate)
    p = assets.add_parser("sync", parents=[common],
                          help="create or update the dashboards and monitors in the Datadog account (idempotent)")
    p.add_argument("--root", type=Path, help=_root_help("dashboards/, monitors/ and metadata.csv"))
    p.add_argument("--dry-run", action="store_true", help="read the account and print the plan; write nothing")
    p.set_defaults(func=cmd_assets_sync)
    p = assets.add_parser("evaluate", help="which shipped monitors would fire on recorded metrics (JSON Lines)")
    p.add_argument("--metrics", type=Path, required=True, metavar="FILE",
                   help="the JSON Lines sink's output (transport: jsonl, or mlmon demo's metrics.jsonl)")
    p.add_argument("--root", type=Path, help=_root_help("monitors/"))
    p.add_argument("--at", metavar="TIME",
                   help="evaluation time: Unix seconds or ISO-8601, UTC when no zone (default: the file's last point)")
    p.add_argument("--every", metavar="DURATION",
                   help="replay from the file's first point to --at every DURATION (e.g. 10m) and list the episodes")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format (default: text)")
    p.set_defaults(func=cmd_assets_evaluate)
    p = assets.add_parser("path", help="print where the files shipped with mlmon are (the default --root)",
                          description="Print the directory of the dashboards, monitors, metadata.csv, "
                          "conf.d/mlmon.d/conf.yaml.example and checks.d/mlmon.py installed with mlmon, or the "
                          "path of FILE in it, e.g. cp \"$(mlmon assets path checks.d/mlmon.py)\" "
                          "/etc/datadog-agent/checks.d/")
    p.add_argument("file", nargs="?", metavar="FILE", help="a path below that directory, e.g. checks.d/mlmon.py")
    p.set_defaults(func=cmd_assets_path)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand without a description its one-line help, so that ``mlmon X --help`` says what X does."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                command = action.choices[choice.dest]
                if not command.description and choice.help:
                    command.description = choice.help[0].upper() + choice.help[1:] + "."
                _describe(command)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mlmon`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: Any = args.func(args)
        return int(result)
    except ConfigError as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # the reader went away (`mlmon plan --format json | head`): stop quietly, with the status of a
        # command ended by SIGPIPE; stdout goes to /dev/null so that the interpreter's last flush is quiet too
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
