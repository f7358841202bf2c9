"""Synthetic ad-tech warehouses: a healthy baseline, plus the incidents mlmon's monitors exist for.

Three models (:data:`MODELS`: two CTR, one CVR) are retrained daily at 02:00 UTC and serve predictions
every minute. Clicks are labeled within minutes, conversions within hours, and a batch pipeline replays
98 % of requests. The training history goes back 40 days, so the 30-day comparison has data. Offline
``valid_logloss`` and ``valid_auc`` come from a validation sample drawn like the serving traffic,
so online and offline quality agree when nothing is wrong. The table ``validation_predictions``
holds, per trained version, that offline validation sample's predictions (:data:`VALIDATION_ROWS`
rows, drawn like the model's healthy serving predictions: no weekly offset, no incident), so the
serving predictions can be compared with the offline ones. The prediction log carries the serving
values of the features ``age``, ``device`` and ``bid_floor``, drawn like the ``training_features``
rows, so serving and training agree too (``psi_training`` is low) until an incident says otherwise.
It also carries a ``placement`` (where the ad was shown: six values of unequal shares and 2 % NULL,
independent of the score), the segment column of ``segment_by``; healthy placements all have the
model's quality, so a segment incident moves one placement of one model and nothing else.

All randomness is drawn before any incident is applied. Two warehouses built with the same ``end``,
``hours`` and ``seed`` are therefore identical outside their incidents. The serving feature values
come from a generator of their own (seeded from ``seed``), and so do the placements, so adding them
moved none of the other numbers; the validation predictions have their own generator as well.

:data:`EXTRA_MODELS` are built only when ``build_frames(models=...)`` names them, so the demo and the
warehouses of :data:`MODELS` do not change (the shared generator's draws follow the order of ``models``:
with :data:`MODELS` first, their rows are the same with or without extra models after them):

* ``ctr_native``: low traffic, about 100 predictions per 10-minute window on average.
* ``ctr_story``: a young model (``age``: 6 hours). It serves only in the last ``age`` seconds before
  ``end``; its first version is the one trained last at or before its first request (at most a day
  earlier), and it has training runs, training features and validation predictions for that version and
  the later ones only.
* ``ctr_weekend``: weekly seasonality (``weekly``: :data:`WEEKLY_OFFSETS`, a logit offset per UTC weekday
  added to both the served score and the true propensity, so its outcomes follow its predictions and its
  online quality stays healthy). Thursday to Friday moves 0.6 logit, the same weekday a week apart does
  not move.

``mlmon demo`` plants several incidents in one week; the incident suite plants one per warehouse.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DAY = 86400.0
HOUR = 3600.0
HISTORY_DAYS = 40


@dataclass(frozen=True)
class ScenarioModel:
    """One model: its name, base rate, traffic per minute and mean label delay (seconds).

    ``age`` (seconds): the model serves only in the last ``age`` seconds before the end, and its versions
    start with the one trained last at or before its first request (none: it serves the whole time and has
    the whole history). ``weekly``: seven logit offsets, Monday to Sunday (UTC weekday of each request),
    added to the score of the served prediction and of the true propensity alike (none: no seasonality).
    """

    name: str
    base_rate: float
    per_minute: float
    label_delay: float
    age: float | None = None
    weekly: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.age is not None and not self.age > 0:
            raise ValueError(f"model {self.name!r}: age must be positive, not {self.age!r}")
        if self.weekly and len(self.weekly) != 7:
            raise ValueError(f"model {self.name!r}: weekly takes 7 offsets (Monday..Sunday), not {len(self.weekly)}")


MODELS = (
    ScenarioModel("ctr_banner", 0.02, 60.0, 20 * 60),
    ScenarioModel("ctr_video", 0.035, 40.0, 20 * 60),
    ScenarioModel("cvr_app", 0.08, 25.0, 6 * HOUR),
)
#: ``ctr_weekend``'s logit offsets, Monday..Sunday: flat Monday to Thursday, up from Friday (+0.6 Thursday to
#: Friday). Friday is the level of its validation sample (offline numbers, drawn without offset), so on the
#: incident suite's Friday its online quality is its offline quality
WEEKLY_OFFSETS = (-0.6, -0.6, -0.6, -0.6, 0.0, 0.2, 0.1)
#: models built only when ``build_frames(models=...)`` names them: low traffic, young, weekly-seasonal
EXTRA_MODELS = (
    ScenarioModel("ctr_native", 0.02, 10.0, 20 * 60),
    ScenarioModel("ctr_story", 0.03, 40.0, 20 * 60, age=6 * HOUR),
    ScenarioModel("ctr_weekend", 0.03, 40.0, 20 * 60, weekly=WEEKLY_OFFSETS),
)
#: rows of ``validation_predictions`` per (model, version)
VALIDATION_ROWS = 3000

#: incident kind -> what it plants. The prediction-side kinds (stuck, unavailable, shifted,
#: concept_shift, replays_differ), the serving feature kinds (serving_*) and the segment kinds (segment_*,
#: on the labels of one placement) use ``since``/``duration``;
#: ``invalid`` spans the whole traffic; the training kinds act on the latest run (``stale``: on the
#: last ``since`` seconds of the history)
INCIDENTS = {
    "stuck": "predictions stuck at one value",
    "unavailable": "no predictions served",
    "shifted": "predictions shifted upward while outcomes did not move",
    "invalid": "a trickle of NaN, negative and > 1 predictions",
    "concept_shift": "outcomes rose while predictions did not move (online quality degrades, PSI does not)",
    "replays_differ": "30 % of replays differ by 5 % from the online prediction",
    "offline_regression": "latest version's validation logloss 8 % worse than the previous version's",
    "rows_drop": "latest version trained on 40 % fewer rows than the previous one",
    "rows_shrink": "training rows shrink 1.5 % a version: small each time, -36 % over 30 days",
    "stale": "no version trained for `since` seconds",
    "feature_collapsed": "training feature bid_floor at one value in the latest version",
    "serving_null": "a serving feature (default age) NULL: its source stopped joining into the log",
    "serving_scale": "a numeric serving feature (default bid_floor) served x100 (cents; trained in dollars)",
    "serving_stuck": "a serving feature (default device) stuck at one value (a fallback default)",
    "segment_uninformative": "in one placement (default search) outcomes no longer depend on the score: "
                             "labels drawn at the placement's base rate, independent of the prediction",
    "segment_overpredicted": "in one placement (default feed) the positive rate halves while the predictions "
                             "stay: the model over-predicts there by 2x",
}
STUCK_VALUE = 0.0731
#: the feature columns of ``training_features``, also logged with each prediction; ``device`` is categorical
FEATURES = ("age", "device", "bid_floor")
#: the serving feature kinds and the feature each acts on unless the incident names one
SERVING_INCIDENT_FEATURES = {"serving_null": "age", "serving_scale": "bid_floor", "serving_stuck": "device"}
#: what ``serving_stuck`` serves, per feature, and the factor ``serving_scale`` multiplies by
SERVING_STUCK_VALUES: dict[str, float | str] = {"age": 35.0, "device": "android", "bid_floor": 0.5}
SERVING_SCALE = 100.0
DEVICES = ("ios", "android", "web")
DEVICE_SHARES = (0.4, 0.45, 0.15)
#: the prediction log's ``placement`` column and each value's share of the traffic; the rest (2 %) is NULL
PLACEMENTS = ("feed", "search", "article", "video", "sidebar", "footer")
PLACEMENT_SHARES = (0.38, 0.22, 0.15, 0.12, 0.07, 0.04)
#: the segment kinds and the placement each acts on unless the incident names one
SEGMENT_INCIDENT_PLACEMENTS = {"segment_uninformative": "search", "segment_overpredicted": "feed"}
#: the share of a placement's positives that ``segment_overpredicted`` turns into negatives
SEGMENT_LOST_POSITIVES = 0.5


@dataclass(frozen=True)
class Incident:
    """``kind`` planted on ``model``.

    Time-bound kinds start ``since`` seconds before the end (aligned down to 10 minutes) and last
    ``duration`` seconds, or until the end. ``stale`` stops training ``since`` seconds before the end.
    The serving feature kinds act on ``feature`` (default: the kind's, :data:`SERVING_INCIDENT_FEATURES`),
    the segment kinds on the requests of ``placement`` (default: the kind's, :data:`SEGMENT_INCIDENT_PLACEMENTS`)
    served inside the incident.
    """

    kind: str
    model: str
    since: float = 0.0
    duration: float | None = None
    feature: str = ""
    placement: str = ""

    def __post_init__(self) -> None:
        if self.kind not in INCIDENTS:
            raise ValueError(f"unknown incident kind {self.kind!r}; expected one of {', '.join(INCIDENTS)}")
        known = [m.name for m in (*MODELS, *EXTRA_MODELS)]
        if self.model not in known:
            raise ValueError(f"unknown model {self.model!r}; expected one of {', '.join(known)}")
        if self.feature and self.kind not in SERVING_INCIDENT_FEATURES:
            raise ValueError(f"incident {self.kind!r} takes no feature; only {', '.join(SERVING_INCIDENT_FEATURES)} do")
        if self.kind in SERVING_INCIDENT_FEATURES:
            numeric = [f for f in FEATURES if f != "device"] if self.kind == "serving_scale" else list(FEATURES)
            if self.feature and self.feature not in numeric:
                raise ValueError(f"incident {self.kind!r}: unknown feature {self.feature!r}; expected one of "
                                 f"{', '.join(numeric)}")
            object.__setattr__(self, "feature", self.feature or SERVING_INCIDENT_FEATURES[self.kind])
        if self.placement and self.kind not in SEGMENT_INCIDENT_PLACEMENTS:
            segment_kinds = ", ".join(SEGMENT_INCIDENT_PLACEMENTS)
            raise ValueError(f"incident {self.kind!r} takes no placement; only {segment_kinds} do")
        if self.kind in SEGMENT_INCIDENT_PLACEMENTS:
            if self.placement and self.placement not in PLACEMENTS:
                raise ValueError(f"incident {self.kind!r}: unknown placement {self.placement!r}; expected one of "
                                 f"{', '.join(PLACEMENTS)}")
            object.__setattr__(self, "placement", self.placement or SEGMENT_INCIDENT_PLACEMENTS[self.kind])

    def mask(self, ts: np.ndarray, end: float) -> np.ndarray:
        """Which of ``ts`` (Unix seconds) fall inside the incident."""
        start = math.floor((end - self.since) / 600) * 600
        stop = end if self.duration is None else start + self.duration
        out: np.ndarray = (ts >= start) & (ts < stop)
        return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def version_name(trained_at: float) -> str:
    """Versions are named after their training day: trained 2026-11-20T02:00Z -> ``v20261120``."""
    return dt.datetime.fromtimestamp(trained_at - 2 * HOUR, dt.timezone.utc).strftime("v%Y%m%d")


def _training_times(end: float, stale_for: float | None) -> list[float]:
    """Daily training times (02:00 UTC) of the history, none after ``end`` or inside a staleness gap."""
    first_day = math.floor((end - HISTORY_DAYS * DAY) / DAY) * DAY
    times = [first_day + d * DAY + 2 * HOUR for d in range(HISTORY_DAYS + 1)]
    last = end if stale_for is None else end - stale_for
    return [t for t in times if t <= last]


def _weekdays(ts: np.ndarray) -> np.ndarray:
    """The UTC weekday of each ``ts`` (Unix seconds), Monday 0 .. Sunday 6 (1970-01-01 was a Thursday)."""
    out: np.ndarray = (np.floor(ts / DAY).astype(np.int64) + 3) % 7
    return out


def _serving_versions(ts: np.ndarray, trained: list[float]) -> np.ndarray:
    """The version serving at each ``ts``: the latest trained at or before it (the oldest before that)."""
    at = np.asarray(trained)
    index = np.clip(np.searchsorted(at, ts, side="right") - 1, 0, len(at) - 1)
    names = np.array([version_name(t) for t in at], dtype=object)
    out: np.ndarray = names[index]
    return out


def _validation_metrics(model: ScenarioModel, rng: np.random.Generator, n: int = 50_000) -> tuple[float, float]:
    """Offline logloss and AUC of ``model`` on a validation sample drawn like its serving traffic."""
    from mlmon.metrics.quality import QualityAggregate, online_quality

    score = _logit(model.base_rate) + rng.normal(0.0, 0.9, n)
    y = (rng.random(n) < _sigmoid(score + rng.normal(0.0, 0.3, n))).astype(float)
    quality = online_quality(QualityAggregate.from_values(_sigmoid(score), y))
    assert quality.logloss is not None and quality.auc is not None
    return quality.logloss, quality.auc


def build_frames(
    end: float, incidents: Iterable[Incident] = (), hours: float = 7 * 24, seed: int = 7,
    models: Sequence[ScenarioModel] = MODELS,
) -> dict[str, pd.DataFrame]:
    """Every table of the data contract, plus ``validation_predictions``: ``hours`` of traffic of ``models``
    before ``end`` (Unix seconds, UTC), 40 days of training history, and ``incidents`` planted (each on one
    of ``models``)."""
    planted = list(incidents)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"models named twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    absent = sorted({i.model for i in planted} - set(names))
    if absent:
        raise ValueError(f"incidents on models not built: {', '.join(absent)}; name them in models=")
    rng = np.random.default_rng(seed)
    start = end - hours * HOUR
    preds, labels, replays, runs, feats, valid = [], [], [], [], [], []
    for m_index, model in enumerate(models):
        mine = [i for i in planted if i.model == model.name]
        kinds = {i.kind for i in mine}

        def during(kind: str, ts: np.ndarray, mine: list[Incident] = mine) -> np.ndarray:
            out = np.zeros(ts.shape, dtype=bool)
            for incident in (i for i in mine if i.kind == kind):
                out |= incident.mask(ts, end)
            return out

        # every draw first, in a fixed order, so that incidents do not move the healthy data
        minutes = np.arange(start, end, 60.0)
        if model.age is not None:
            minutes = minutes[minutes >= end - model.age]
        diurnal = 1.0 + 0.5 * np.sin(2 * np.pi * ((minutes % DAY) / DAY - 0.25))
        per_minute = rng.poisson(model.per_minute * diurnal)
        ts = np.repeat(minutes, per_minute) + rng.uniform(0, 60, per_minute.sum())
        n = ts.size
        score = _logit(model.base_rate) + rng.normal(0.0, 0.9, n)
        if model.weekly:
            score = score + np.asarray(model.weekly, dtype=float)[_weekdays(ts)]
        noise = rng.normal(0.0, 0.3, n)
        uniform_label = rng.random(n)
        delay = rng.exponential(model.label_delay, n)
        bad = rng.random(n) < 0.0005
        bad_value = rng.choice([np.nan, -0.5, 1.5], n)
        replay_off = rng.random(n) < 0.3
        keep_replay = rng.random(n) < 0.98
        base_logloss, base_auc = _validation_metrics(model, rng)
        history = _training_times(end, None)
        run_noise = rng.normal(0.0, 1.0, (len(history), 3))
        feature_draws = [
            (rng.random(500), rng.integers(18, 70, 500),
             rng.choice(DEVICES, 500, p=DEVICE_SHARES), rng.gamma(2.0, 0.5, 500))
            for _ in history
        ]
        # the serving feature values: their own generator, so the draws above are as they always were
        serving_rng = np.random.default_rng((seed, m_index, 17))
        serving_draws = (serving_rng.random(n), serving_rng.integers(18, 70, n),
                         serving_rng.choice(DEVICES, n, p=DEVICE_SHARES), serving_rng.gamma(2.0, 0.5, n))
        # the placements and the segment incidents' draws: a generator of their own too
        segment_rng = np.random.default_rng((seed, m_index, 29))
        placement = _placements(segment_rng.random(n))
        lost_draw = segment_rng.random(n)
        # the offline validation sample's predictions, per version of the history: their own generator too
        validation_rng = np.random.default_rng((seed, m_index, 41))
        validation_scores = _logit(model.base_rate) + validation_rng.normal(0.0, 0.9, (len(history), VALIDATION_ROWS))

        # outcomes follow the true propensity; under concept_shift they rise while predictions do not
        true_p = _sigmoid(score + noise + np.where(during("concept_shift", ts), 0.8, 0.0))
        y = (uniform_label < true_p).astype(np.int64)
        for incident in (i for i in mine if i.kind in SEGMENT_INCIDENT_PLACEMENTS):
            there = placement == incident.placement
            inside = there & incident.mask(ts, end)
            if incident.kind == "segment_uninformative":
                # the same uniform draws against the placement's base rate instead of each request's propensity
                rate = float(true_p[there].mean()) if there.any() else model.base_rate
                y = np.where(inside, (uniform_label < rate).astype(np.int64), y)
            else:
                y = np.where(inside & (lost_draw < SEGMENT_LOST_POSITIVES), 0, y)
        pred = _sigmoid(np.where(during("shifted", ts), score + 1.2, score))
        pred = np.where(during("stuck", ts), STUCK_VALUE, pred)
        if "invalid" in kinds:
            pred = np.where(bad, bad_value, pred)
        replay = np.where(np.isfinite(pred), pred, np.nan)
        replay = np.where(during("replays_differ", ts) & replay_off, np.clip(replay * 1.05, 0, 1), replay)
        served = ~during("unavailable", ts)

        stale_for = max((i.since for i in mine if i.kind == "stale"), default=None)
        trained = _training_times(end, stale_for)
        if model.age is not None:
            # a young model's first version is the one serving at its first request (trained at most a day before)
            born = [t for t in history if t <= end - model.age]
            trained = [t for t in trained if not born or t >= born[-1]]
            if not trained:
                raise ValueError(f"model {model.name!r} (age {model.age:g} s) has no version left: stale for too long")
        versions = _serving_versions(ts, trained)
        request_id = np.char.add(f"{model.name}-", np.arange(n).astype(str))
        serving = _serving_features(serving_draws, ts, mine, end)
        preds.append(pd.DataFrame({
            "request_id": request_id[served],
            "ts": pd.to_datetime(ts[served], unit="s"),
            "model": model.name,
            "model_version": versions[served],
            "prediction": pred[served],
            **{name: values[served] for name, values in serving.items()},
            "placement": placement[served],
        }))
        labels.append(pd.DataFrame({
            "request_id": request_id[served], "label": y[served],
            "label_ts": pd.to_datetime((ts + delay)[served], unit="s"),
        }))
        kept = served & keep_replay
        replays.append(pd.DataFrame({
            "request_id": request_id[kept], "model_version": versions[kept], "prediction": replay[kept],
            "ts": pd.to_datetime(ts[kept], unit="s"),
        }))

        position = {t: d for d, t in enumerate(history)}  # trained is a part of history: index its draws by it
        for trained_at in trained:
            d, latest = position[trained_at], trained_at == trained[-1]
            rows = 1_000_000 * (1 + 0.15 * m_index) * (1 + 0.01 * run_noise[d, 0])
            if "rows_shrink" in kinds:
                rows *= 0.985 ** d
            if latest and "rows_drop" in kinds:
                rows *= 0.6
            logloss = base_logloss * (1 + 0.005 * run_noise[d, 1])
            if latest and "offline_regression" in kinds:
                logloss *= 1.08
            runs.append({
                "model": model.name, "model_version": version_name(trained_at),
                "trained_at": pd.Timestamp(trained_at, unit="s"),
                "train_rows": int(rows), "valid_rows": int(rows) // 10,
                "valid_logloss": logloss, "valid_auc": base_auc + 0.002 * run_noise[d, 2],
            })
            missing, age, device, bid_floor = feature_draws[d]
            if latest and "feature_collapsed" in kinds:
                bid_floor = np.full(bid_floor.shape, 0.5)
            feats.append(pd.DataFrame({
                "model": model.name, "model_version": version_name(trained_at),
                "age": np.where(missing < 0.05, np.nan, age.astype(float)),
                "device": device,
                "bid_floor": bid_floor,
            }))
            valid.append(pd.DataFrame({
                "model": model.name, "model_version": version_name(trained_at),
                "prediction": _sigmoid(validation_scores[d]),
            }))
    return {
        "predictions": pd.concat(preds, ignore_index=True),
        "labels": pd.concat(labels, ignore_index=True),
        "replays": pd.concat(replays, ignore_index=True),
        "training_runs": pd.DataFrame(runs),
        "training_features": pd.concat(feats, ignore_index=True),
        "validation_predictions": pd.concat(valid, ignore_index=True),
    }


def _placements(draw: np.ndarray) -> np.ndarray:
    """The placement of each request from a uniform draw in [0, 1): :data:`PLACEMENTS` at
    :data:`PLACEMENT_SHARES`, None (NULL) for the rest."""
    values = np.array([*PLACEMENTS, None], dtype=object)
    index = np.searchsorted(np.cumsum(PLACEMENT_SHARES), draw, side="right")
    out: np.ndarray = values[np.minimum(index, len(PLACEMENTS))]
    return out


def _serving_features(
    draws: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ts: np.ndarray, mine: list[Incident], end: float
) -> dict[str, np.ndarray]:
    """The serving values of each feature for requests served at ``ts``, drawn like the training rows
    (``age`` 5 % NULL), with the serving feature incidents of ``mine`` applied."""
    missing, age, device, bid_floor = draws
    columns: dict[str, np.ndarray] = {
        "age": np.where(missing < 0.05, np.nan, age.astype(float)),
        "device": device.astype(object),
        "bid_floor": bid_floor.astype(float),
    }
    for incident in (i for i in mine if i.kind in SERVING_INCIDENT_FEATURES):
        inside, column = incident.mask(ts, end), columns[incident.feature].copy()
        if incident.kind == "serving_null":
            column[inside] = None if column.dtype == object else np.nan
        elif incident.kind == "serving_scale":
            column[inside] *= SERVING_SCALE
        else:
            column[inside] = SERVING_STUCK_VALUES[incident.feature]
        columns[incident.feature] = column
    return columns


def write_duckdb(path: Path, frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Write ``frames`` into a fresh DuckDB file (replacing one there); returns row counts per table."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        for name, frame in frames.items():
            con.register("frame", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
            con.unregister("frame")
    finally:
        con.close()
    return {name: len(frame) for name, frame in frames.items()}
