"""JSON Lines file: one Datadog series (or service check) object per line, appended."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlmon.samples import Point, Sample
from mlmon.sinks.base import SinkError


def to_series(sample: Sample) -> dict[str, Any]:
    """The ``/api/v1/series`` object for one sample (no host: mlmon metrics are not per machine)."""
    return {
        "metric": sample.name,
        "type": sample.type.value,
        "points": [[int(sample.timestamp), sample.value]],
        "tags": list(sample.tags),
    }


class JsonlSink:
    """Appends to ``path``; a dry run, a demo, or input for ``mlmon assets evaluate``."""

    horizon: float | None = None

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def submit(self, points: Sequence[Point]) -> None:
        lines = []
        for p in points:
            if isinstance(p, Sample):
                lines.append(json.dumps(to_series(p)))
            else:
                lines.append(
                    json.dumps(
                        {
                            "check": p.name,
                            "status": int(p.status),
                            "tags": list(p.tags),
                            "timestamp": int(p.timestamp),
                            "message": p.message,
                        }
                    )
                )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in lines))
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror}") from None
