"""``mlmon demo``: a week of realistic ad-tech data in DuckDB, with planted incidents, run through mlmon.

Three models (two CTR, one CVR), retrained daily at 02:00 UTC, serve predictions every minute of
the week; clicks are labeled within minutes, conversions within hours; a batch pipeline replays
98 % of requests. Planted incidents, by model:

* ``cvr_app``: predictions stuck at one value for 3 hours two days ago (same-value ratio 1.0);
  latest version's offline logloss 8 % worse than the previous one's (offline regression);
  replays of 30 % of the last day's requests differ by 5 % (reproducibility drop).
* ``ctr_video``: no predictions for an hour yesterday (unavailable); the latest version trained on
  40 % fewer rows (training-row drop, vs the previous version and vs 30 days ago).
* ``ctr_banner``: predictions shifted upward for the last 6 hours (drift, and online logloss worse
  than offline); a few NaN, negative and > 1 predictions every hour (invalid rows); training
  feature ``bid_floor`` stuck at one value in the latest version.

Offline ``valid_logloss``/``valid_auc`` come from a validation sample drawn like the serving
traffic, so online and offline quality agree when nothing is wrong.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

DAY = 86400
HOUR = 3600


@dataclass(frozen=True)
class DemoModel:
    """One demo model: its name, base rate and traffic per minute."""

    name: str
    base_rate: float
    per_minute: float


MODELS = (
    DemoModel("ctr_banner", 0.02, 60.0),
    DemoModel("ctr_video", 0.035, 40.0),
    DemoModel("cvr_app", 0.08, 25.0),
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _version_at(ts: np.ndarray) -> np.ndarray:
    """Daily retrain at 02:00 UTC: the version serving at ``ts`` is named after that training day."""
    trained = np.floor((ts - 2 * HOUR) / DAY) * DAY
    return np.array(
        [dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("v%Y%m%d") for t in trained], dtype=object
    )


def _validation_metrics(model: DemoModel, rng: np.random.Generator, n: int = 50_000) -> tuple[float, float]:
    """Offline logloss and AUC of ``model`` on a validation sample drawn like its serving traffic."""
    from mlmon.metrics.quality import QualityAggregate, online_quality

    score = _logit(model.base_rate) + rng.normal(0.0, 0.9, n)
    y = (rng.random(n) < _sigmoid(score + rng.normal(0.0, 0.3, n))).astype(float)
    quality = online_quality(QualityAggregate.from_values(_sigmoid(score), y))
    assert quality.logloss is not None and quality.auc is not None
    return quality.logloss, quality.auc


def build_frames(end: float, days: int = 7, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Every table of the data contract for the ``days`` before ``end`` (Unix seconds, UTC)."""
    rng = np.random.default_rng(seed)
    start = end - days * DAY
    preds, labels, replays, runs, feats = [], [], [], [], []
    for m_index, model in enumerate(MODELS):
        minutes = np.arange(start, end, 60.0)
        diurnal = 1.0 + 0.5 * np.sin(2 * np.pi * ((minutes % DAY) / DAY - 0.25))
        per_minute = rng.poisson(model.per_minute * diurnal)
        ts = np.repeat(minutes, per_minute) + rng.uniform(0, 60, per_minute.sum())
        if model.name == "ctr_video":  # outage: an hour without predictions yesterday
            gap_start = math.floor((end - DAY - 4 * HOUR) / HOUR) * HOUR
            ts = ts[(ts < gap_start) | (ts >= gap_start + HOUR)]
        n = ts.size
        z = rng.normal(0.0, 0.9, n)
        score = _logit(model.base_rate) + z
        true_p = _sigmoid(score + rng.normal(0.0, 0.3, n))
        if model.name == "ctr_banner":  # drift: the last 6 hours shifted upward
            score = np.where(ts >= end - 6 * HOUR, score + 1.2, score)
        pred = _sigmoid(score)
        if model.name == "cvr_app":  # stuck: one value for 3 hours two days ago
            stuck_start = math.floor((end - 2 * DAY) / HOUR) * HOUR
            pred = np.where((ts >= stuck_start) & (ts < stuck_start + 3 * HOUR), 0.0731, pred)
        if model.name == "ctr_banner":  # invalid rows: NaN, negative, above one
            bad = rng.random(n) < 0.0005
            pred = np.where(bad, rng.choice([np.nan, -0.5, 1.5], n), pred)
        request_id = np.char.add(f"{model.name}-", np.arange(n).astype(str))
        versions = _version_at(ts)
        preds.append(pd.DataFrame({
            "request_id": request_id,
            "ts": pd.to_datetime(ts, unit="s"),
            "model": model.name,
            "model_version": versions,
            "prediction": pred,
            "device": rng.choice(["ios", "android", "web"], n, p=[0.4, 0.45, 0.15]),
        }))
        y = (rng.random(n) < true_p).astype(np.int64)
        delay = rng.exponential(20 * 60 if model.name.startswith("ctr") else 6 * HOUR, n)
        labels.append(pd.DataFrame({
            "request_id": request_id, "label": y, "label_ts": pd.to_datetime(ts + delay, unit="s"),
        }))
        replay = np.where(np.isfinite(pred), pred, np.nan)
        if model.name == "cvr_app":  # reproducibility drop in the last day
            drift_mask = (ts >= end - DAY) & (rng.random(n) < 0.3)
            replay = np.where(drift_mask, np.clip(replay * 1.05, 0, 1), replay)
        keep = rng.random(n) < 0.98  # the batch pipeline misses a few requests
        replays.append(pd.DataFrame({
            "request_id": request_id[keep], "model_version": versions[keep], "prediction": replay[keep],
        }))
        base_logloss, base_auc = _validation_metrics(model, rng)
        # training history: 40 daily versions so that the 30-day comparison has data
        first_day = math.floor((end - 40 * DAY) / DAY) * DAY
        for d in range(41):
            trained_at = first_day + d * DAY + 2 * HOUR
            if trained_at > end:
                break
            latest = trained_at + DAY > end
            version = dt.datetime.fromtimestamp(trained_at - 2 * HOUR, dt.timezone.utc).strftime("v%Y%m%d")
            rows = int(1_000_000 * (1 + 0.15 * m_index) * (1 + rng.normal(0, 0.01)))
            if latest and model.name == "ctr_video":
                rows = int(rows * 0.6)
            logloss = base_logloss * (1 + rng.normal(0, 0.005))
            if latest and model.name == "cvr_app":
                logloss *= 1.08
            runs.append({
                "model": model.name, "model_version": version,
                "trained_at": pd.Timestamp(trained_at, unit="s"),
                "train_rows": rows, "valid_rows": rows // 10,
                "valid_logloss": logloss, "valid_auc": base_auc + rng.normal(0, 0.002),
            })
            k = 500
            bid_floor = rng.gamma(2.0, 0.5, k)
            if latest and model.name == "ctr_banner":
                bid_floor = np.full(k, 0.5)
            feats.append(pd.DataFrame({
                "model": model.name, "model_version": version,
                "age": np.where(rng.random(k) < 0.05, np.nan, rng.integers(18, 70, k).astype(float)),
                "device": rng.choice(["ios", "android", "web"], k, p=[0.4, 0.45, 0.15]),
                "bid_floor": bid_floor,
            }))
    return {
        "predictions": pd.concat(preds, ignore_index=True),
        "labels": pd.concat(labels, ignore_index=True),
        "replays": pd.concat(replays, ignore_index=True),
        "training_runs": pd.DataFrame(runs),
        "training_features": pd.concat(feats, ignore_index=True),
    }


def build_warehouse(path: Path, end: float, days: int = 7) -> dict[str, int]:
    """Write the demo tables into a fresh DuckDB file; returns row counts per table."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    frames = build_frames(end, days)
    con = duckdb.connect(str(path))
    try:
        for name, frame in frames.items():
            con.register("frame", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
            con.unregister("frame")
    finally:
        con.close()
    return {name: len(frame) for name, frame in frames.items()}


# Thresholds the demo summary flags; the shipped monitors carry their own.
SAME_VALUE_ALERT = 0.9
PSI_ALERT = 0.2
#: PSI must stay above PSI_ALERT this many consecutive windows (30 minutes) to count as a shift:
#: single windows of a few hundred rows cross 0.2 by chance
PSI_SUSTAINED = 3


@dataclass
class ModelSummary:
    """What the demo prints for one model."""

    rows: int = 0
    invalid: int = 0
    windows: int = 0
    unavailable: int = 0
    last_mean: float | None = None
    last_p95: float | None = None
    max_same_value: float = 0.0
    stuck_windows: int = 0
    max_psi: float = 0.0
    drifted_windows: int = 0
    psi_run: int = 0


def _model_of(tags: tuple[str, ...]) -> str | None:
    return next((t.removeprefix("model:") for t in tags if t.startswith("model:")), None)


def summarise(outputs: list) -> dict[str, ModelSummary]:  # type: ignore[type-arg]
    """Fold window outputs into per-model figures (window order is preserved)."""
    from mlmon.samples import CheckStatus

    out: dict[str, ModelSummary] = {}
    for window_out in outputs:
        for check in window_out.checks:
            model = _model_of(check.tags)
            if model:
                s = out.setdefault(model, ModelSummary())
                s.windows += 1
                s.unavailable += check.status == CheckStatus.CRITICAL
        for sample in window_out.samples:
            model = _model_of(sample.tags)
            if model is None:
                continue
            s = out.setdefault(model, ModelSummary())
            metric = sample.name.removeprefix("mlmon.prediction.")
            if metric == "count":
                s.rows += int(sample.value)
            elif metric == "invalid_count":
                s.invalid += int(sample.value)
            elif metric == "mean":
                s.last_mean = sample.value
            elif metric == "p95":
                s.last_p95 = sample.value
            elif metric == "same_value_ratio":
                s.max_same_value = max(s.max_same_value, sample.value)
                s.stuck_windows += sample.value >= SAME_VALUE_ALERT
            elif metric == "psi":
                s.max_psi = max(s.max_psi, sample.value)
                s.psi_run = s.psi_run + 1 if sample.value > PSI_ALERT else 0
                if s.psi_run == PSI_SUSTAINED:
                    s.drifted_windows += PSI_SUSTAINED
                elif s.psi_run > PSI_SUSTAINED:
                    s.drifted_windows += 1
    return out


def format_summary(summary: dict[str, ModelSummary]) -> str:
    """A table a person reads in a terminal."""

    def num(x: float | None, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    header = (f"{'model':<12} {'rows':>8} {'invalid':>7} {'mean':>7} {'p95':>7} "
              f"{'max same-value':>14} {'max PSI':>8}  health")
    lines = [header, "-" * len(header)]
    for model, s in sorted(summary.items()):
        flags = []
        if s.unavailable:
            flags.append(f"UNAVAILABLE in {s.unavailable} window(s)")
        if s.stuck_windows:
            flags.append(f"STUCK (same-value ratio >= {SAME_VALUE_ALERT}) in {s.stuck_windows} window(s)")
        if s.drifted_windows:
            flags.append(f"SHIFTED (PSI > {PSI_ALERT} for {PSI_SUSTAINED}+ windows) in {s.drifted_windows} window(s)")
        if s.invalid:
            flags.append(f"{s.invalid} invalid prediction(s)")
        lines.append(
            f"{model:<12} {s.rows:>8} {s.invalid:>7} {num(s.last_mean, '.4f'):>7} {num(s.last_p95, '.4f'):>7} "
            f"{s.max_same_value:>14.3f} {s.max_psi:>8.3f}  {'; '.join(flags) or 'ok'}"
        )
    return "\n".join(lines)


# Thresholds of the online and training sections of the summary.
REPRO_ALERT = 0.9
#: online flags pool this many consecutive hourly windows (weighted by labeled rows): single night
#: windows of a few hundred labeled clicks are too noisy for a ratio of log losses
ONLINE_POOL = 3
LOGLOSS_VS_OFFLINE_ALERT = 1.25
CALIBRATION_BAND = (0.67, 1.5)
ROWS_DROP_ALERT = -0.2
OFFLINE_REGRESSION_ALERT = 0.05
FEATURE_STUCK_ALERT = 0.99


@dataclass
class OnlineSummary:
    """Online quality and reproducibility of one model over the demo's windows."""

    windows: int = 0
    labeled: int = 0
    last: dict[str, float] | None = None
    recent: list[tuple[float, float, float, float]] = field(default_factory=list)  # n, n*ratio, n*mean, n*rate
    worse_windows: int = 0
    miscalibrated_windows: int = 0
    repro_windows: int = 0
    repro_low_windows: int = 0
    min_repro: float | None = None

    def add_window(self, groups: list[dict[str, float]]) -> None:
        """Fold one hourly window (one dict of online values per model version) into the figures."""
        n = sum(g["labeled_count"] for g in groups)
        self.windows += 1
        self.labeled += int(n)
        with_auc = [g for g in groups if "auc" in g]
        if with_auc:
            self.last = max(with_auc, key=lambda g: g["labeled_count"])
        ratio = sum(g["labeled_count"] * g.get("logloss_vs_offline", 0.0) for g in groups)
        mean = sum(g["labeled_count"] * g.get("mean_prediction", 0.0) for g in groups)
        rate = sum(g["labeled_count"] * g.get("positive_rate", 0.0) for g in groups)
        self.recent = [*self.recent, (n, ratio, mean, rate)][-ONLINE_POOL:]
        pooled = [sum(x) for x in zip(*self.recent, strict=True)]
        if len(self.recent) < ONLINE_POOL or pooled[0] == 0:
            return
        self.worse_windows += pooled[1] / pooled[0] > LOGLOSS_VS_OFFLINE_ALERT
        if pooled[3] > 0 and not CALIBRATION_BAND[0] <= pooled[2] / pooled[3] <= CALIBRATION_BAND[1]:
            self.miscalibrated_windows += 1


def _worst(current: float | None, value: float, higher_is_worse: bool = True) -> float:
    if current is None:
        return value
    return max(current, value) if higher_is_worse else min(current, value)


def summarise_online(outputs: list) -> dict[str, OnlineSummary]:  # type: ignore[type-arg]
    """Fold quality and reproducibility window outputs into per-model figures (in window order)."""
    out: dict[str, OnlineSummary] = {}
    for window_out in outputs:
        groups: dict[tuple[str, ...], dict[str, float]] = {}
        for sample in window_out.samples:
            groups.setdefault(sample.tags, {})[sample.name] = sample.value
        online: dict[str, list[dict[str, float]]] = {}
        for tags, values in groups.items():
            model = _model_of(tags)
            if model is None:
                continue
            s = out.setdefault(model, OnlineSummary())
            if "mlmon.online.labeled_count" in values:
                online.setdefault(model, []).append({k.removeprefix("mlmon.online."): v for k, v in values.items()})
            if "mlmon.reproducibility.rate" in values:
                rate = values["mlmon.reproducibility.rate"]
                s.repro_windows += 1
                s.repro_low_windows += rate < REPRO_ALERT
                s.min_repro = _worst(s.min_repro, rate, higher_is_worse=False)
        for model, version_groups in online.items():
            out[model].add_window(version_groups)
    return out


def format_online(summary: dict[str, OnlineSummary]) -> str:
    """Online quality (latest matured window) and reproducibility, per model."""

    def num(values: dict[str, float] | None, key: str, fmt: str) -> str:
        return "-" if not values or key not in values else format(values[key], fmt)

    header = (f"{'model':<12} {'windows':>7} {'labeled':>8} {'logloss':>8} {'AUC':>6} {'calib.':>6} "
              f"{'vs offline':>10} {'min repro':>9}  health")
    lines = [header, "-" * len(header)]
    for model, s in sorted(summary.items()):
        flags = []
        if s.worse_windows:
            flags.append(f"ONLINE WORSE (logloss > {LOGLOSS_VS_OFFLINE_ALERT}x offline over {ONLINE_POOL} hours) "
                         f"in {s.worse_windows} window(s)")
        if s.miscalibrated_windows:
            low, high = CALIBRATION_BAND
            flags.append(f"MISCALIBRATED (mean prediction / positive rate outside [{low}, {high}] over "
                         f"{ONLINE_POOL} hours) in {s.miscalibrated_windows} window(s)")
        if s.repro_low_windows:
            flags.append(f"NOT REPRODUCIBLE (rate < {REPRO_ALERT}) in {s.repro_low_windows} window(s)")
        ratio = num(s.last, "logloss_vs_offline", ".3f")
        lines.append(
            f"{model:<12} {s.windows:>7} {s.labeled:>8} {num(s.last, 'logloss', '.4f'):>8} "
            f"{num(s.last, 'auc', '.3f'):>6} {num(s.last, 'calibration', '.3f'):>6} {ratio + 'x':>10} "
            f"{'-' if s.min_repro is None else format(s.min_repro, '.3f'):>9}  {'; '.join(flags) or 'ok'}"
        )
    return "\n".join(lines)


@dataclass
class TrainingSummary:
    """The latest training run of one model and its feature breakdown."""

    version: str = ""
    values: dict[str, float] = field(default_factory=dict)
    stuck_features: list[str] = field(default_factory=list)


def summarise_training(samples: list) -> dict[str, TrainingSummary]:  # type: ignore[type-arg]
    """Fold a training snapshot into per-model figures."""
    out: dict[str, TrainingSummary] = {}
    for sample in samples:
        model = _model_of(sample.tags)
        if model is None:
            continue
        s = out.setdefault(model, TrainingSummary())
        tags = dict(t.split(":", 1) for t in sample.tags if ":" in t)
        s.version = tags.get("model_version", s.version)
        if sample.name == "mlmon.training.feature.same_value_ratio" and sample.value >= FEATURE_STUCK_ALERT:
            s.stuck_features.append(tags.get("feature", "?"))
        elif not sample.name.startswith("mlmon.training.feature."):
            s.values[sample.name.removeprefix("mlmon.training.")] = sample.value
    return out


def format_training(summary: dict[str, TrainingSummary]) -> str:
    """Training lineage of each model's latest version."""

    def pct(values: dict[str, float], key: str) -> str:
        return "-" if key not in values else f"{values[key]:+.1%}"

    header = (f"{'model':<12} {'version':<10} {'rows':>10} {'vs prev':>8} {'vs 30d':>8} {'logloss':>8} "
              f"{'vs prev':>8} {'AUC':>6} {'age h':>6}  health")
    lines = [header, "-" * len(header)]
    for model, s in sorted(summary.items()):
        v = s.values
        flags = []
        if v.get("rows_change_prev", 0.0) < ROWS_DROP_ALERT:
            flags.append(f"TRAINING ROWS DROPPED {v['rows_change_prev']:+.0%} vs previous version")
        if v.get("rows_change_30d", 0.0) < ROWS_DROP_ALERT:
            flags.append(f"TRAINING ROWS DROPPED {v['rows_change_30d']:+.0%} vs 30 days ago")
        if v.get("valid_logloss_change_prev", 0.0) > OFFLINE_REGRESSION_ALERT:
            flags.append(f"OFFLINE REGRESSION (valid logloss {v['valid_logloss_change_prev']:+.1%})")
        for feature in sorted(s.stuck_features):
            flags.append(f"FEATURE {feature} STUCK at one value")
        rows = "-" if "rows" not in v else f"{v['rows']:,.0f}"
        logloss = "-" if "valid_logloss" not in v else f"{v['valid_logloss']:.4f}"
        auc = "-" if "valid_auc" not in v else f"{v['valid_auc']:.3f}"
        age = "-" if "model_age_hours" not in v else f"{v['model_age_hours']:.1f}"
        lines.append(
            f"{model:<12} {s.version:<10} {rows:>10} {pct(v, 'rows_change_prev'):>8} {pct(v, 'rows_change_30d'):>8} "
            f"{logloss:>8} {pct(v, 'valid_logloss_change_prev'):>8} {auc:>6} {age:>6}  {'; '.join(flags) or 'ok'}"
        )
    return "\n".join(lines)
