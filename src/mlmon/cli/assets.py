"""``mlmon assets validate|sync|export|evaluate|path``: the dashboards and monitors shipped with mlmon."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlmon.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from mlmon.cli.opening import _load, _secrets

if TYPE_CHECKING:
    from mlmon.assets.sync import Asset
    from mlmon.config import Config


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


def _desired_assets(args: argparse.Namespace, config: Config, doing: str) -> list[Asset] | int:
    """The assets under --root with the config's overrides applied, as sync sends them; or, having said
    why on stderr, the exit code (the files must pass mlmon assets validate first)."""
    from mlmon.assets import validate_assets
    from mlmon.assets.sync import desired_assets

    root = _assets_root(args)
    if root is None:
        return EXIT_USAGE
    problems = validate_assets(root)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"mlmon: not {doing}: {len(problems)} problem(s) (see mlmon assets validate)", file=sys.stderr)
        return EXIT_FAILURE
    return desired_assets(root, config.init_config.assets, str(args.config))


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
    from mlmon.assets.sync import DatadogAssetsApi, SyncError, apply, compute_changes, summary
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
    assets = _desired_assets(args, config, "syncing")
    if isinstance(assets, int):
        return assets
    api = DatadogAssetsApi(api_key, app_key, datadog.resolved_api_host(), datadog.timeout)
    try:
        changes = compute_changes(assets, api)
        for change in changes:
            print(scrub(change.describe()))
        if not args.dry_run:
            changes = apply(changes, api, lambda line: print(scrub(line)))
    except SyncError as exc:
        print(scrub(f"mlmon: {exc}"), file=sys.stderr)
        return EXIT_FAILURE
    print(summary(changes, args.dry_run))
    return EXIT_OK


def cmd_assets_export(args: argparse.Namespace) -> int:
    """Write the dashboards and monitors under --root, as sync would send them for --config, as Terraform
    JSON files in --out."""
    from mlmon.assets.terraform import ASSETS_FILE, RESOURCE_TYPES, ExportError, write_terraform

    config = _load(args)
    assets = _desired_assets(args, config, "exporting")
    if isinstance(assets, int):
        return assets
    try:
        written = write_terraform(args.out, assets)
    except ExportError as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        where = exc.filename if exc.filename is not None else args.out
        print(f"mlmon: --out {args.out}: cannot write {where} ({exc.strerror or exc})", file=sys.stderr)
        return EXIT_FAILURE
    for path in written:
        if path.name != ASSETS_FILE:
            print(f"wrote {path}")
            continue
        counts = ", ".join(f"{sum(a.kind == kind and a.payload is not None for a in assets)} {resource}"
                           for kind, resource in RESOURCE_TYPES.items())
        print(f"wrote {path}: {counts}")
    for asset in assets:
        if asset.payload is None:
            print(f"left out {asset.kind} {asset.file} (enabled: false in config)")
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
