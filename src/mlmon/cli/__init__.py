"""The ``mlmon`` command line. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error."""

from __future__ import annotations

import sys
from typing import Any

from mlmon.cli.exits import EXIT_BROKEN_PIPE, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from mlmon.cli.opening import _secrets as _secrets  # the strings the log scrubs; tests scrub with them too
from mlmon.cli.parser import DESCRIPTION, build_parser
from mlmon.config import ConfigError

__all__ = [
    "DESCRIPTION",
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]


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
