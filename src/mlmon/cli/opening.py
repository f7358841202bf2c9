"""What a command opens before it works: the config (and the logging that scrubs its secrets), the sink and
the lock, and their release."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mlmon.cli.exits import EXIT_FAILURE, EXIT_USAGE
from mlmon.config import Config, PostgresWarehouse, load_config

if TYPE_CHECKING:
    from mlmon.sinks.base import Sink
    from mlmon.state import AgentLock


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
