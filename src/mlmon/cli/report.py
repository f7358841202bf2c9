"""``mlmon report``: an HTML page of charts over a metrics file, with where the shipped monitors would fire."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlmon.cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report of ``--metrics`` to ``--out``; exit 2 without matplotlib (naming the extra) or with a bad
    option, 1 when the metrics file cannot be read or holds nothing."""
    from mlmon.assets.evaluate import EvaluateError, load_monitors
    from mlmon.assets.recording import RecordingError
    from mlmon.config import parse_duration
    from mlmon.html_report import MissingExtra, ReportError, require_matplotlib, write_report
    from mlmon.shipped import shipped_root

    try:
        require_matplotlib()
    except MissingExtra as exc:
        print(f"mlmon report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        every = parse_duration(args.every)
        if every <= 0:
            raise ValueError("--every must be a positive duration")
        monitors = load_monitors(args.root if args.root is not None else shipped_root())
    except (ValueError, EvaluateError, FileNotFoundError) as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    try:
        report = write_report(args.metrics, out, monitors, every)
    except (RecordingError, ReportError) as exc:
        print(f"mlmon: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"mlmon: {out}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"report {out}: {len(report.models)} model(s), {len(report.charts)} chart(s), "
          f"{len(report.episodes)} monitor episode(s), {out.stat().st_size / 1e6:.1f} MB")
    return EXIT_OK
