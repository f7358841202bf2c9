"""``mlmon run`` and ``mlmon backfill``: the commands that send metrics through the jobs and the sink."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from mlmon.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from mlmon.cli.opening import _load, _release, _secrets, _sink_and_lock

log = logging.getLogger("mlmon")


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
    from mlmon.jobs import WINDOW_JOBS
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
    snapshots = [job for job in jobs if job not in WINDOW_JOBS]
    if snapshots:
        job = snapshots[0]
        print(f"mlmon: --job {job}: {job} is a snapshot job (each model's latest version, stamped at send "
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
            plans, notes = backfill.plan_ranges(config, StateStore(state_dir), start, end, now, jobs,
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
