"""Logging that never shows a secret: every record is scrubbed before any handler formats it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from mlmon.scrub import scrub


class SecretFilter(logging.Filter):
    """Replaces each known secret, and any ``user:password@`` in a URL, with ``***``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with secrets hidden."""
        return scrub(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.scrub(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            message += "\n" + self.scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = message, ()
        return True


def configure_logging(level: str = "INFO", secrets: Iterable[str | None] = ()) -> SecretFilter:
    """Log to stderr with secrets scrubbed from every record of every logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    secret_filter = SecretFilter(secrets)
    handler.addFilter(secret_filter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # the datadog client logs every request URL at INFO; keep it for debugging only
    logging.getLogger("datadog.api").setLevel(max(root.level, logging.WARNING))
    return secret_filter
