"""``mlmon demo``: a week of realistic ad-tech data in DuckDB, with planted incidents, run through mlmon.

The warehouse comes from :mod:`mlmon.scenarios` (three models, daily retraining, delayed labels,
replays). Planted incidents, by model:

* ``cvr_app``: predictions stuck at one value for 3 hours two days ago (same-value ratio 1.0);
  latest version's offline logloss 8 % worse than the previous one's (offline regression);
  replays of 30 % of the last day's requests differ by 5 % (reproducibility drop); serving feature
  ``bid_floor`` served in cents (x100) for the last 12 hours, while the model trained on dollars
  (training-serving skew).
* ``ctr_video``: no predictions for an hour yesterday (unavailable); the latest version trained on
  40 % fewer rows (training-row drop, vs the previous version and vs 30 days ago); serving feature
  ``age`` NULL for 4 hours a day and a half ago (its source stopped joining).
* ``ctr_banner``: predictions shifted upward for the last 6 hours (drift, and online logloss worse
  than offline); a few NaN, negative and > 1 predictions every hour (invalid rows); training
  feature ``bid_floor`` stuck at one value in the latest version (so its healthy serving values are
  skewed against that version's training data once it serves); in placement ``search`` (22 % of its
  traffic) outcomes stopped following the score for a day, from two days to one day before the end
  (a segment ranked at random while the model as a whole stays within its thresholds, but for its logloss
  at night: 1.2-1.3x offline over 3 hours, at ``online_quality_degraded``'s threshold).

The prediction log's ``placement`` column is the demo's ``segment_by`` column (:data:`SEGMENTS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmon.scenarios import DAY, HOUR, Incident, build_frames, write_duckdb

DEMO_INCIDENTS = (
    Incident("stuck", "cvr_app", since=2 * DAY, duration=3 * HOUR),
    Incident("offline_regression", "cvr_app"),
    Incident("replays_differ", "cvr_app", since=DAY),
    Incident("unavailable", "ctr_video", since=DAY + 4 * HOUR, duration=HOUR),
    Incident("rows_drop", "ctr_video"),
    Incident("shifted", "ctr_banner", since=6 * HOUR),
    Incident("invalid", "ctr_banner"),
    Incident("feature_collapsed", "ctr_banner"),
    Incident("serving_null", "ctr_video", since=DAY + 12 * HOUR, duration=4 * HOUR, feature="age"),
    Incident("serving_scale", "cvr_app", since=12 * HOUR, feature="bid_floor"),
    Incident("segment_uninformative", "ctr_banner", since=2 * DAY, duration=DAY, placement="search"),
)
#: the serving_features job's settings in the demo: the features of ``training_features``
SERVING_FEATURES = {"features": ["age", "device", "bid_floor"], "categorical": ["device"]}
#: the predictions and quality jobs' segments in the demo: the prediction log's placement column
SEGMENTS = {"segment_by": ["placement"]}


def build_warehouse(path: Path, end: float, days: int = 7) -> dict[str, int]:
    """Write the demo tables into a fresh DuckDB file; returns row counts per table."""
    return write_duckdb(path, build_frames(end, DEMO_INCIDENTS, hours=days * 24))


def config(warehouse: Path, state: Path, jsonl: Path, days: int, send: bool = False) -> dict[str, Any]:
    """The demo's configuration (before :func:`mlmon.config.parse_config`): every job over the ``days`` of the
    warehouse, into ``jsonl`` (or Datadog's API with ``send``)."""
    return {
        "init_config": {
            "env": "demo",
            "state_dir": str(state),
            "datadog": {"transport": "api" if send else "jsonl", "jsonl_path": str(jsonl)},
        },
        "instances": [
            {
                "name": "demo",
                "warehouse": {"engine": "duckdb", "path": str(warehouse)},
                "tags": ["team:ads", "source:mlmon-demo"],
                "jobs": {
                    "predictions": {"initial_lookback": f"{days}d", **SEGMENTS},
                    # conversions arrive within hours: the CVR model's windows mature after a day
                    "quality": {"initial_lookback": f"{days}d", "label_delay": "1h",
                                "label_delay_by_model": {"cvr_app": "1d"}, **SEGMENTS},
                    "reproducibility": {"initial_lookback": f"{days}d"},
                    "training": {"features": ["age", "device", "bid_floor"]},
                    "serving_features": {"initial_lookback": f"{days}d", **SERVING_FEATURES},
                },
            }
        ],
    }


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


# Thresholds of the serving inputs section: the shipped serving monitors' alert thresholds.
SERVING_NULL_ALERT = 0.5
SERVING_PSI_ALERT = 0.25
SERVING_STUCK_ALERT = 0.99
#: skew and stuck flags need this many consecutive hourly windows past the threshold, as their monitors
#: (the minimum over 2 hours) do; a NULL window counts alone (its monitor averages two windows)
SERVING_SUSTAINED = 2


@dataclass
class FeatureSummary:
    """One serving feature of one model over the demo's hourly windows."""

    windows: int = 0
    max_null: float = 0.0
    max_psi: float | None = None
    null_windows: int = 0
    skewed_windows: int = 0
    stuck_windows: int = 0
    runs: dict[str, int] = field(default_factory=dict)

    def add_window(self, values: dict[str, float]) -> None:
        """Fold one window's metrics (suffixes of ``mlmon.serving.feature.``) into the figures."""
        self.windows += 1
        null = values.get("null_ratio", 0.0)
        self.max_null = max(self.max_null, null)
        self.null_windows += null > SERVING_NULL_ALERT
        if "psi_training" in values:
            self.max_psi = _worst(self.max_psi, values["psi_training"])
        self.skewed_windows += self._sustained("skew", values.get("psi_training", 0.0) > SERVING_PSI_ALERT)
        self.stuck_windows += self._sustained("stuck", values.get("same_value_ratio", 0.0) > SERVING_STUCK_ALERT)

    def _sustained(self, flag: str, crossed: bool) -> int:
        """How many windows to count once ``flag``'s run of crossing windows reaches SERVING_SUSTAINED."""
        run = self.runs[flag] = self.runs.get(flag, 0) + 1 if crossed else 0
        return SERVING_SUSTAINED if run == SERVING_SUSTAINED else int(run > SERVING_SUSTAINED)


def summarise_serving(outputs: list) -> dict[str, dict[str, FeatureSummary]]:  # type: ignore[type-arg]
    """Fold serving_features window outputs into figures per model and feature (in window order; the
    versions serving in one window are combined by their worst value)."""
    out: dict[str, dict[str, FeatureSummary]] = {}
    for window_out in outputs:
        merged: dict[tuple[str, str], dict[str, float]] = {}
        for sample in window_out.samples:
            model, name = _model_of(sample.tags), sample.name.removeprefix("mlmon.serving.feature.")
            feature = next((t.removeprefix("feature:") for t in sample.tags if t.startswith("feature:")), None)
            if model is None or feature is None or name == sample.name or name == "value_share":
                continue
            values = merged.setdefault((model, feature), {})
            values[name] = max(values.get(name, sample.value), sample.value)
        for (model, feature), values in sorted(merged.items()):
            out.setdefault(model, {}).setdefault(feature, FeatureSummary()).add_window(values)
    return out


def format_serving(summary: dict[str, dict[str, FeatureSummary]]) -> str:
    """The serving inputs of each model: the worst null ratio and PSI vs training, and the flags."""

    def worst(features: dict[str, FeatureSummary], key: str) -> str:
        found = [(getattr(f, key), name) for name, f in features.items() if getattr(f, key) is not None]
        if not found:
            return "-"
        value, name = max(found)
        return f"{value:.3f} {name}"

    header = (f"{'model':<12} {'windows':>7} {'max null ratio':>20} {'max PSI vs training':>22}  health")
    lines = [header, "-" * len(header)]
    for model, features in sorted(summary.items()):
        flags = []
        for name, f in sorted(features.items()):
            if f.null_windows:
                flags.append(f"FEATURE {name} NULL (null ratio > {SERVING_NULL_ALERT}) in {f.null_windows} window(s)")
            if f.skewed_windows:
                flags.append(f"FEATURE {name} SKEWED vs training (PSI > {SERVING_PSI_ALERT} for {SERVING_SUSTAINED}+ "
                             f"windows) in {f.skewed_windows} window(s)")
            if f.stuck_windows:
                flags.append(f"FEATURE {name} STUCK in serving (same-value ratio > {SERVING_STUCK_ALERT} for "
                             f"{SERVING_SUSTAINED}+ windows) in {f.stuck_windows} window(s)")
        windows = max((f.windows for f in features.values()), default=0)
        lines.append(f"{model:<12} {windows:>7} {worst(features, 'max_null'):>20} {worst(features, 'max_psi'):>22}  "
                     f"{'; '.join(flags) or 'ok'}")
    return "\n".join(lines)


# Thresholds of the segments section: the shipped segment monitors' alert thresholds, over their window.
SEGMENT_GAP_ALERT = -0.12
SEGMENT_CALIBRATION_ALERT = 0.585  # |log2(calibration vs model)|: 1.5x the model's either way
#: the segment monitors average the hourly windows of the last day
SEGMENT_POOL_SECONDS = 24 * HOUR


@dataclass
class SegmentSummary:
    """One segment value (``column:value``) of one model over the demo's hourly windows: its judged windows'
    ``auc_vs_model`` and ``|log2(calibration_vs_model)|`` by window end (windows with ``segment_min_labeled``
    rows)."""

    windows: int = 0
    gaps: list[tuple[float, float]] = field(default_factory=list)
    calibrations: list[tuple[float, float]] = field(default_factory=list)

    @staticmethod
    def _pooled(points: list[tuple[float, float]]) -> list[float]:
        """At each point, the mean of the points of the day up to it (what the monitor averages)."""
        ordered = sorted(points)
        return [sum(v for t, v in ordered if end - SEGMENT_POOL_SECONDS < t <= end)
                / sum(1 for t, _ in ordered if end - SEGMENT_POOL_SECONDS < t <= end) for end, _ in ordered]

    def worst_gap(self) -> float | None:
        return min(self._pooled(self.gaps), default=None)

    def worst_calibration(self) -> float | None:
        return max(self._pooled(self.calibrations), default=None)

    def gap_windows(self) -> int:
        return sum(v < SEGMENT_GAP_ALERT for v in self._pooled(self.gaps))

    def miscalibrated_windows(self) -> int:
        return sum(v > SEGMENT_CALIBRATION_ALERT for v in self._pooled(self.calibrations))


def summarise_segments(outputs: list) -> dict[str, dict[str, SegmentSummary]]:  # type: ignore[type-arg]
    """Fold quality window outputs into figures per model and segment value (``placement:search``); the versions
    of one window are combined by their worst value."""
    import math

    out: dict[str, dict[str, SegmentSummary]] = {}
    for window_out in outputs:
        merged: dict[tuple[str, str], dict[str, float]] = {}
        for sample in window_out.samples:
            name = sample.name.removeprefix("mlmon.segment.online.")
            tags = dict(t.split(":", 1) for t in sample.tags if ":" in t)
            if name == sample.name or "model" not in tags or "segment" not in tags:
                continue
            values = merged.setdefault((tags["model"], f"{tags['segment']}:{tags.get('segment_value', '?')}"), {})
            values[name] = sample.value
            values["end"] = sample.timestamp
        for (model, segment), values in sorted(merged.items()):
            s = out.setdefault(model, {}).setdefault(segment, SegmentSummary())
            s.windows += 1
            if "auc_vs_model" in values:
                s.gaps.append((values["end"], values["auc_vs_model"]))
            if values.get("calibration_vs_model", 0.0) > 0:
                s.calibrations.append((values["end"], abs(math.log2(values["calibration_vs_model"]))))
    return out


def format_segments(summary: dict[str, dict[str, SegmentSummary]]) -> str:
    """Per model: its segment values, those judged (enough labeled rows), the worst segment by AUC vs the model
    and by calibration (each averaged over a day of judged windows, as the monitors do), and the flags."""

    def worst(segments: dict[str, SegmentSummary], key: str, pick: Any) -> str:
        found = [(value, name) for name, s in segments.items() if (value := getattr(s, key)()) is not None]
        if not found:
            return "-"
        value, name = pick(found)
        return f"{value:+.3f} {name}" if key == "worst_gap" else f"{value:.3f} {name}"

    header = (f"{'model':<12} {'values':>6} {'judged':>6} {'worst AUC vs model':>28} {'worst |log2 cal. vs model|':>28}"
              "  health")
    lines = [header, "-" * len(header)]
    for model, segments in sorted(summary.items()):
        flags = []
        for name, s in sorted(segments.items()):
            if s.gap_windows():
                flags.append(f"SEGMENT {name} RANKED WORSE than the model (AUC vs model < {SEGMENT_GAP_ALERT} over "
                             f"{SEGMENT_POOL_SECONDS / HOUR:.0f} h) in {s.gap_windows()} window(s)")
            if s.miscalibrated_windows():
                flags.append(f"SEGMENT {name} MISCALIBRATED against the model (|log2 calibration vs model| > "
                             f"{SEGMENT_CALIBRATION_ALERT}, 1.5x either way, over {SEGMENT_POOL_SECONDS / HOUR:.0f} h) "
                             f"in {s.miscalibrated_windows()} window(s)")
        judged = sum(1 for s in segments.values() if s.gaps or s.calibrations)
        lines.append(f"{model:<12} {len(segments):>6} {judged:>6} {worst(segments, 'worst_gap', min):>28} "
                     f"{worst(segments, 'worst_calibration', max):>28}  {'; '.join(flags) or 'ok'}")
    return "\n".join(lines)
