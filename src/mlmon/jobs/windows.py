"""Tumbling windows aligned to UTC multiples of their width."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mlmon.samples import Sample, ServiceCheck, make_tags
from mlmon.warehouse.predictions import GroupKey


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in Unix seconds."""

    start: float
    end: float

    @property
    def index(self) -> int:
        """Window number since the epoch (``start / width``)."""
        return round(self.start / (self.end - self.start))


def due_windows(
    now: float, watermark: float | None, width: float, delay: float, initial_lookback: float,
    horizon: float | None = None,
) -> list[Window]:
    """Complete windows not yet delivered, oldest first.

    A window is due once ``end + delay <= now``. Without a watermark (a first run) the job takes the
    latest due windows covering at least ``initial_lookback``, rounded up to whole windows, and never
    fewer than one: whatever the wall-clock time, a first run delivers the latest matured window. With
    a ``horizon`` (the destination drops points stamped more than ``horizon`` seconds before now, and
    the job keeps window-end stamps) a first run leaves out the windows whose points would be dropped.
    """
    last_end = math.floor((now - delay) / width) * width
    if watermark is None:
        count = first_run_windows(width, initial_lookback)
        if horizon is not None:  # window k back from the latest ends at last_end - k * width
            count = min(count, max(1, math.floor((horizon - (now - last_end)) / width) + 1))
        first = last_end - count * width
    else:
        first = math.floor(watermark / width) * width
    count = round((last_end - first) / width)
    return [Window(first + i * width, first + (i + 1) * width) for i in range(max(count, 0))]


def first_run_windows(width: float, initial_lookback: float) -> int:
    """How many windows a first run processes: ``initial_lookback`` in whole windows, rounded up, at least 1."""
    return max(1, math.ceil(initial_lookback / width - 1e-9))


#: what a first run leaves itself, below the destination's horizon, to query and reach the sink
FIRST_RUN_MARGIN = 60.0


def first_run_horizon(timestamp_policy: str, horizon: float | None) -> float | None:
    """The horizon that bounds a first run: the destination's less :data:`FIRST_RUN_MARGIN`, for a job that
    keeps window-end stamps (under ``send_time`` an old window is re-stamped and delivered: no bound)."""
    return horizon - FIRST_RUN_MARGIN if horizon is not None and timestamp_policy == "window_end" else None


@dataclass
class WindowOutput:
    """What one window produced: samples stamped at its end, service checks, models seen."""

    window: Window
    samples: list[Sample] = field(default_factory=list)
    checks: list[ServiceCheck] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)  # model -> version seen in this window


@dataclass(frozen=True)
class Lane:
    """Models of a job that share a delay, and so a watermark.

    ``key`` is ``""`` for a job's main lane (its watermark is the job's); ``include`` restricts the
    lane to those models (empty: every model), ``exclude`` removes models that have a lane of their own.
    """

    key: str
    delay: float
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


#: what one run of a job keeps between its statements (aggregates a later statement would read again, a
#: probe's answer), keyed by the job; a new run starts with an empty one
RunMemo = dict[str, Any]


@dataclass
class Batch:
    """What one statement over a range of windows produced."""

    outputs: list[WindowOutput]
    rows_fetched: int
    problems: list[str] = field(default_factory=list)


def model_tags(base: tuple[str, ...], model: str, version: str = "") -> tuple[str, ...]:
    """``base`` plus ``model:<model>`` and, when known, ``model_version:<version>``."""
    return make_tags(base, f"model:{model}", f"model_version:{version}" if version else ())


A = TypeVar("A")


def group_outputs(
    windows: Sequence[Window],
    groups: Mapping[GroupKey, A],
    base: tuple[str, ...],
    prefix: str,
    values: Callable[[GroupKey, A, Window], Mapping[str, float]],
) -> list[WindowOutput]:
    """One output per window: ``prefix + name`` samples per (model, version) group, at the window end."""
    outputs = []
    for window in windows:
        out = WindowOutput(window)
        here = sorted((k for k in groups if k.window_index == window.index), key=lambda k: (k.model, k.model_version))
        for key in here:
            tags = model_tags(base, key.model, key.model_version)
            for name, value in values(key, groups[key], window).items():
                out.samples.append(Sample(prefix + name, value, tags, window.end))
            out.models[key.model] = key.model_version
        outputs.append(out)
    return outputs


def no_failure_checks(*args: Any) -> list[ServiceCheck]:
    """For jobs without a per-model check: the error count and message say what failed."""
    return []
