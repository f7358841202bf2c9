"""What every job's result type shares: its dataclass fields are the metric suffixes it reports."""

from __future__ import annotations

from dataclasses import Field, fields
from typing import Any, ClassVar


class MetricFields:
    """Mixed into a frozen result dataclass: each field is a metric suffix (``None``: not reported), less the
    fields named in ``NOT_METRICS`` (flags, per-value mappings). ``names()`` are what ``metadata.csv``, plan
    and the jobs list; ``values()`` what one result sends."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    #: fields that are not metrics
    NOT_METRICS: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every metric suffix it can report, in field order."""
        return tuple(f.name for f in fields(cls) if f.name not in cls.NOT_METRICS)

    def values(self) -> dict[str, float]:
        """Metric suffix -> value, for the defined metrics only."""
        return {name: float(v) for name in self.names() if (v := getattr(self, name)) is not None}
