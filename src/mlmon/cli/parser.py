"""The argument parser of ``mlmon``: every command, its options and its help."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlmon import __version__
from mlmon.cli.assets import cmd_assets_evaluate, cmd_assets_path, cmd_assets_sync, cmd_assets_validate
from mlmon.cli.demo import cmd_demo
from mlmon.cli.report import cmd_report
from mlmon.cli.run import cmd_backfill, cmd_run
from mlmon.cli.setup import cmd_check, cmd_init, cmd_plan
from mlmon.config import DEFAULT_CONFIG_PATH, Jobs

#: what ``mlmon --help`` says first (plain text: argparse prints it as it is)
DESCRIPTION = ("mlmon reads prediction logs, labels, replays and training metadata from your warehouse, "
               "computes the metrics in the warehouse and sends them to Datadog.")


def _root_help(holding: str) -> str:
    """``--root``'s help: what it holds and the default, the directory :func:`mlmon.shipped.shipped_root` names."""
    from mlmon.shipped import shipped_root

    try:
        where = f"the assets shipped with mlmon, {shipped_root()}".replace("%", "%%")  # argparse formats help
    except FileNotFoundError:
        where = "the assets shipped with mlmon, missing from this installation"
    return f"directory holding {holding} (default: {where}; mlmon assets path prints it)"


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
                   choices=list(Jobs.model_fields),  # every job the config knows; training is refused with why
                   help="window job(s) to backfill (default: predictions, quality and reproducibility)")
    p.add_argument("--instance", nargs="+", action="extend", metavar="NAME",
                   help="instance(s) to backfill (default: every instance of the config)")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("check", parents=[common], help="check config, warehouse, tables, columns, Datadog key")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="json prints one document on stdout, for scripts: ok, the problems, warnings and notes, "
                   "overall and per instance (default: text); the exit code is the same")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("plan", parents=[common],
                       help="print how many custom-metric series each job will create and an estimate of their "
                       "monthly cost, before anything is sent")
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
        "report", help="write an HTML page of charts per model over a metrics file, shading where monitors fire",
        description="Write one self-contained HTML file (no script, nothing fetched) with, per model, charts of the "
        "period a JSON Lines metrics file covers: volume, mean and p95, same-value ratio, PSI, mean ratio, online "
        "logloss, AUC and calibration against offline, reproducibility, training rows by version, and the serving "
        "inputs and segments when the file has them. The shipped monitors are replayed over the file every --every; "
        "where one would fire is shaded on the charts of its model and metric family, and listed in a table. "
        "Needs matplotlib: pip install 'mlmon[report]'.",
    )
    p.add_argument("--metrics", type=Path, required=True, metavar="FILE",
                   help="the JSON Lines sink's output (transport: jsonl, or mlmon demo's metrics.jsonl)")
    p.add_argument("--out", type=Path, default=Path("report.html"), metavar="FILE",
                   help="the HTML file to write (default: report.html)")
    p.add_argument("--root", type=Path, help=_root_help("monitors/"))
    p.add_argument("--every", default="10m", metavar="DURATION",
                   help="replay the monitors every DURATION over the file's period (default: 10m)")
    p.set_defaults(func=cmd_report)

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
    from mlmon.cli.assets import cmd_assets_export

    p = assets.add_parser(
        "export", parents=[common],
        help="write the dashboards and monitors as Terraform JSON files, as sync would send them",
        description="Write the dashboards and monitors under --root as Terraform resources of the DataDog/datadog "
        "provider, for a team that manages Datadog with Terraform instead of mlmon assets sync. Each resource "
        "holds the JSON that sync would send for the same --config (notify handles, tags, thresholds, the "
        "mlmon_asset identity; enabled: false leaves a monitor out). DIR gets two files in Terraform's JSON "
        "syntax: mlmon_versions.tf.json (terraform required_providers: datadog from DataDog/datadog) and "
        "mlmon_assets.tf.json (one datadog_monitor_json per monitor and one datadog_dashboard_json per "
        "dashboard, named mlmon_ and the file name, e.g. datadog_monitor_json.mlmon_predictions_shifted). "
        "Both are rewritten by each export, byte for byte the same for the same input; other files in DIR are "
        "left alone. Use DIR as a module of its own: it declares the provider, not its credentials.",
    )
    p.add_argument("--format", required=True, choices=["terraform"],
                   help="output format: terraform (.tf.json files for the DataDog/datadog provider)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="directory to write the files to, created if missing")
    p.add_argument("--root", type=Path, help=_root_help("dashboards/, monitors/ and metadata.csv"))
    p.set_defaults(func=cmd_assets_export)
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
