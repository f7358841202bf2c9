"""``mlmon check``, ``mlmon plan`` and ``mlmon init``: check a config, count its series, write a starter one."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlmon.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from mlmon.cli.opening import _load, _secrets
from mlmon.config import DEFAULT_CONFIG_PATH, ConfigError


def cmd_check(args: argparse.Namespace) -> int:
    """Check config, warehouse connectivity, tables and columns, and the Datadog key; report every problem.

    ``--format json``: one JSON document on stdout (:func:`mlmon.preflight.preflight_report`), the same exit
    code. Every printed string, text or JSON, goes through the log's scrubber (the config's keys and passwords,
    any URL's ``user:password@``), behind the engines' and sinks' own scrubbing of their messages."""
    from mlmon.logs import SecretFilter
    from mlmon.preflight import preflight, preflight_report

    config = _load(args)
    scrub = SecretFilter(_secrets(config)).scrub
    if args.format == "json":
        import json

        report = _scrubbed(preflight_report(config), scrub)
        print(json.dumps(report, indent=2))
        if report["problems"]:
            print(f"{len(report['problems'])} problem(s) found", file=sys.stderr)
            return EXIT_FAILURE
        return EXIT_OK
    warnings = 0

    def say(line: str) -> None:
        nonlocal warnings
        warnings += line.startswith("WARNING")
        print(scrub(line))

    problems = preflight(config, say)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return EXIT_FAILURE
    print("all checks passed" + (f", with {warnings} warning(s) above" if warnings else ""))
    return EXIT_OK


def _scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    """``value`` (JSON data) with ``scrub`` applied to every string in it."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item, scrub) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, scrub) for item in value]
    return value


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
