"""Hand-built prediction data with known answers, placed relative to a given clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tests.helpers import utc

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


HOUR = 3600.0
PREDICTION_COLUMNS = (("request_id", "text"), ("ts", "timestamp"), ("model", "text"), ("model_version", "text"),
                      ("prediction", "double"))
LABEL_COLUMNS = (("request_id", "text"), ("label", "integer"), ("label_ts", "timestamp"))
REPLAY_COLUMNS = (("request_id", "text"), ("model_version", "text"), ("prediction", "double"))
RUN_COLUMNS = (("model", "text"), ("model_version", "text"), ("trained_at", "timestamp"), ("train_rows", "bigint"),
               ("valid_rows", "bigint"), ("valid_logloss", "double"), ("valid_auc", "double"))


@dataclass
class OnlineScenario:
    """Predictions with labels and replays in hourly windows, and what each window holds."""

    label_delay: float
    predictions: list[tuple[Any, ...]] = field(default_factory=list)
    labels: list[tuple[Any, ...]] = field(default_factory=list)
    replays: list[tuple[Any, ...]] = field(default_factory=list)
    runs: list[tuple[Any, ...]] = field(default_factory=list)
    # (model, version, window end) -> [(prediction, [(label, label_ts)], [replay values])]
    windows: dict[tuple[str, str, float], list[tuple[float, list[Any], list[Any]]]] = field(default_factory=dict)
    offline: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def add(self, model: str, version: str, end: float, prediction: float,
            labels: list[tuple[int, float | None]] = (), replays: list[tuple[str, float | None]] = ()) -> None:
        i = len(self.predictions)
        rid = f"{model}-{i}"
        ts = end - HOUR + (i * 7.3) % HOUR
        self.predictions.append((rid, utc(ts), model, version, prediction))
        for label, label_ts in labels:
            self.labels.append((rid, label, None if label_ts is None else utc(label_ts)))
        for replay_version, value in replays:
            self.replays.append((rid, replay_version, value))
        self.windows.setdefault((model, version, end), []).append((
            prediction, [(float(lab), lts) for lab, lts in labels], [v for rv, v in replays if rv == version],
        ))

    def write(self, warehouse) -> None:
        from tests.tables import write_table

        write_table(warehouse, "predictions", PREDICTION_COLUMNS, self.predictions)
        write_table(warehouse, "labels", LABEL_COLUMNS, self.labels)
        write_table(warehouse, "replays", REPLAY_COLUMNS, self.replays)
        write_table(warehouse, "training_runs", RUN_COLUMNS, self.runs)


def online_answers(now: float, label_delay: float = HOUR, seed: int = 3, scale: int = 1) -> OnlineScenario:
    """Three hourly windows already matured at ``now``:

    * ``ctr`` window A: tied scores, several label rows per request (0 then 1), labels that arrive
      after the window but before maturity (counted) and after maturity (not), labels stamped up to
      label_skew before the window (counted) and earlier (not), undated ones (not), labels of 2, invalid
      predictions; replays equal, slightly off, missing, NULL, duplicated and disagreeing, and of
      another version;
    * ``ctr`` window B: negatives only (one class); window C: predictions and no label at all;
    * ``cvr`` window A: a second model with its offline metrics.
    """
    rng = np.random.default_rng(seed)
    sc = OnlineScenario(label_delay)
    last = (now - label_delay) // HOUR * HOUR
    a, b, c = last - 2 * HOUR, last - HOUR, last
    for k in range(300 * scale):
        p = float(np.round(1 / (1 + np.exp(-rng.normal(-2.0, 1.0))), 2))  # rounding makes ties
        y = int(rng.random() < p)
        kind = k % 10
        labels: list[tuple[int, float | None]] = [(y, a + 60)]
        if kind == 1:
            labels = [(0, a - 100), (y, a + label_delay - 10)]  # a late, still matured, second row
        elif kind == 2:
            labels = [(1, a + label_delay + 60)]  # arrives after maturity: unlabeled
        elif kind == 3 and k % 30 == 3:
            labels = [(2, a + 10)]  # not a label
        elif kind == 4 and k % 20 == 4:
            labels = [(1, None), (y, a - 2 * HOUR)]  # an undated row (never counted); one at the skew bound (counted)
        elif kind == 4:
            labels = [(y, a - 2 * HOUR - 1)]  # stamped more than label_skew before its window: unlabeled
        replays: list[tuple[str, float | None]] = [("v2", p)]
        if kind == 5:
            replays = [("v2", p + 0.003)]  # not reproduced
        elif kind == 6:
            replays = []  # missing
        elif kind == 7:
            replays = [("v2", p), ("v2", p + 0.01)]  # duplicates that disagree
        elif kind == 8:
            replays = [("v1", p)]  # another version's replay: missing for v2
        elif kind == 9 and k % 20 == 9:
            replays = [("v2", None)]
        sc.add("ctr", "v2", a, p, labels, replays)
    for bad in (float("nan"), 1.5, -0.2):
        sc.add("ctr", "v2", a, bad, [(1, a + 5)], [("v2", 0.5)])
    for _ in range(40 * scale):
        p = float(rng.uniform(0.01, 0.2))
        sc.add("ctr", "v2", b, p, [(0, b + 30)], [("v2", p)])
    for _ in range(25 * scale):
        sc.add("ctr", "v2", c, float(rng.uniform(0.01, 0.2)))
    for _ in range(120 * scale):
        p = float(rng.uniform(0.0, 1.0))
        sc.add("cvr", "v9", a, p, [(int(rng.random() < p), a + 120)], [("v9", p)])
    sc.runs = [
        ("ctr", "v2", utc(a - 5 * HOUR), 1000, 100, 0.25, 0.74),
        ("ctr", "v1", utc(a - 29 * HOUR), 1100, 110, 0.24, 0.75),
        ("ctr", "v0", utc(a - 40 * DAY), 2000, 200, 0.23, 0.76),  # the 30-day comparison
        ("cvr", "v9", utc(a - 7 * HOUR), 5000, 500, 0.6, 0.66),
    ]
    sc.offline = {("ctr", "v2"): (0.25, 0.74), ("ctr", "v1"): (0.24, 0.75), ("cvr", "v9"): (0.6, 0.66)}
    return sc


def write_every_table(warehouse, now: float) -> OnlineScenario:
    """Predictions, labels, replays, training runs and features, serving features: every job has work."""
    from tests.tables import write_table

    sc = online_answers(now)
    sc.write(warehouse)
    rng = np.random.default_rng(4)
    rows = []
    for model, versions in (("ctr", ("v1", "v2")), ("cvr", ("v9",))):
        for version in versions:
            for i in range(200):
                age = float("nan") if i % 17 == 0 else (None if i % 23 == 0 else float(rng.integers(18, 70)))
                bid_floor = 0.5 if (model == "ctr" and version == "v2") else float(rng.gamma(2.0, 0.5))
                rows.append((model, version, age, str(rng.choice(["ios", "android", "web"])), bid_floor))
    write_table(warehouse, "training_features", (("model", "text"), ("model_version", "text"), ("age", "double"),
                                                 ("device", "text"), ("bid_floor", "double")), rows)
    # the serving inputs of the predictions, for the serving_features job: some NULL and NaN ages, a device
    # never seen in training (tablet), more devices than a top_k of 3
    devices = ["ios", "android", "web", "ios", "android", "tablet", "tv"]
    serving = [(rid, ts, model, version, None if i % 13 == 0 else float("nan") if i % 29 == 0 else float(18 + i % 50),
                devices[i % len(devices)], 0.5 if model == "ctr" else float(rng.gamma(2.0, 0.5)))
               for i, (rid, ts, model, version, _) in enumerate(sc.predictions)]
    write_table(warehouse, "serving_features", (("request_id", "text"), ("ts", "timestamp"), ("model", "text"),
                                                ("model_version", "text"), ("age", "double"), ("device", "text"),
                                                ("bid_floor", "double")), serving)
    return sc
