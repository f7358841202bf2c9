"""Reproducibility of online predictions by the offline replays of the same model version.

A valid online prediction ``p`` is *checked* when the ``replays`` table has at least one non-NULL
row for its ``request_id`` and ``model_version``, and *reproduced* when every such row ``r`` is a
probability with ``|p - r| <= atol + rtol * |r|`` (several replays that disagree are themselves a
reproducibility problem, so the strictest reading is taken). Its difference is the largest
``|p - r|`` over its valid replay rows; the window's mean and max difference run over those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mlmon.metrics.results import MetricFields


@dataclass(frozen=True)
class ReproducibilityAggregate:
    """What the warehouse returns for one (model, model_version, window)."""

    checked_count: int
    missing_count: int
    reproduced_count: int
    diff_count: int
    sum_abs_diff: float
    max_abs_diff: float | None

    @classmethod
    def from_values(
        cls, online: npt.ArrayLike, replays: list[list[float]], atol: float, rtol: float
    ) -> ReproducibilityAggregate:
        """Aggregate in memory: ``replays[i]`` lists the replay values of prediction ``i`` (tests)."""
        p = np.asarray(online, dtype=np.float64)
        checked = missing = reproduced = 0
        diffs: list[float] = []
        for value, rows in zip(p, replays, strict=True):
            if not 0.0 <= value <= 1.0:
                continue
            rs = np.asarray([r for r in rows if r is not None], dtype=np.float64)
            if rs.size == 0:
                missing += 1
                continue
            checked += 1
            ok = (rs >= 0.0) & (rs <= 1.0)
            if ok.any():
                diffs.append(float(np.max(np.abs(value - rs[ok]))))
            reproduced += bool(ok.all() and np.all(np.abs(value - rs) <= atol + rtol * np.abs(rs)))
        return cls(checked, missing, reproduced, len(diffs), float(sum(diffs)), max(diffs) if diffs else None)


@dataclass(frozen=True)
class Reproducibility(MetricFields):
    """Reported values; ``None`` where undefined (nothing checked)."""

    rate: float | None
    checked_count: int
    missing_count: int
    mean_abs_diff: float | None
    max_abs_diff: float | None


def reproducibility(agg: ReproducibilityAggregate) -> Reproducibility:
    """Rate and differences of one window."""
    return Reproducibility(
        rate=agg.reproduced_count / agg.checked_count if agg.checked_count else None,
        checked_count=agg.checked_count,
        missing_count=agg.missing_count,
        mean_abs_diff=agg.sum_abs_diff / agg.diff_count if agg.diff_count else None,
        max_abs_diff=agg.max_abs_diff if agg.diff_count else None,
    )
