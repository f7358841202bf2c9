"""Hand-built prediction data with known answers, placed relative to a given clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tests.conftest import utc

WIDTH = 600.0
DAY = 86400.0


@dataclass
class Scenario:
    """Rows to insert and, per (model, version, window end), the raw values they hold."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    values: dict[tuple[str, str, float], list[float]] = field(default_factory=dict)
    references: dict[tuple[str, float], list[float]] = field(default_factory=dict)
    window_ends: list[float] = field(default_factory=list)

    def add(self, model: str, version: str, window_end: float, values: list[float], reference: bool = False) -> None:
        start = window_end - WIDTH
        for i, v in enumerate(values):
            ts = start + (i * 0.7) % WIDTH  # spread over the window, never on its end
            self.rows.append((f"{model}-{window_end}-{reference}-{i}", utc(ts), model, version, v))
        if reference:
            self.references.setdefault((model, window_end + DAY), []).extend(values)
        else:
            self.values.setdefault((model, version, window_end), []).extend(values)


def known_answers(now: float, seed: int = 5) -> Scenario:
    """Three windows well inside the due range: ties, NaN/inf/out-of-range, a single row, a constant
    model that then goes silent, and a day-earlier reference for drift in the last window."""
    rng = np.random.default_rng(seed)
    last_due_end = (now - 300) // WIDTH * WIDTH
    a, b, c = (last_due_end - WIDTH * k for k in (3, 2, 1))
    sc = Scenario(window_ends=[a, b, c])
    sc.add("ctr_a", "v1", a, [0.1, 0.1, 0.1, 0.2, float("nan"), float("inf"), -0.5, 1.5, 0.0, 1.0, 0.35])
    sc.add("ctr_a", "v1", b, [0.42])
    sc.add("ctr_a", "v1", c, [float(x) for x in 1 / (1 + np.exp(-rng.normal(-3.0, 0.8, 500)))])
    sc.add("ctr_a", "v0", c - DAY, [float(x) for x in 1 / (1 + np.exp(-rng.normal(-3.3, 0.8, 400)))], reference=True)
    sc.add("const", "v7", a, [0.0731] * 40)
    sc.add("const", "v7", b, [0.0731] * 25)
    return sc
