"""``instances -> N -> jobs``: each job's settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from mlmon.config.types import Duration, Identifier, _Frozen, parse_duration

TimestampPolicy = Literal["window_end", "send_time"]
#: ``drift_reference``'s entry for the serving version's offline validation predictions
TRAINING_REFERENCE = "training"


def _reference(value: object) -> float | str:
    if value == TRAINING_REFERENCE:
        return TRAINING_REFERENCE
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc} (or {TRAINING_REFERENCE!r})") from None
    if seconds <= 0:
        raise ValueError("a drift reference must be a positive duration")
    return seconds


def _references(value: object) -> object:
    # one reference (``1d``) or a list tried in order (``[7d, 1d, training]``)
    items = list(value) if isinstance(value, list | tuple) else [value]
    return tuple(_reference(v) for v in items)


DriftReferences = Annotated[tuple[float | str, ...], BeforeValidator(_references)]


class _WindowJob(_Frozen):
    """Settings every windowed job shares."""

    enabled: bool = True
    #: at least a second: a sub-second interval (``500ms``) had the scheduler run the job back to back
    interval: Duration = Field(default=3600, ge=1)
    window: Duration = Field(default=3600, ge=60)
    initial_lookback: Duration = Field(default=3600, ge=0)
    timestamp_policy: TimestampPolicy = "send_time"
    max_windows_per_query: int = Field(default=24, ge=1, le=10_000)

    @model_validator(mode="after")
    def _window_divides_day(self) -> _WindowJob:
        if 86400 % self.window:
            raise ValueError("window must divide a day evenly (e.g. 5m, 10m, 15m, 1h)")
        return self


class _Segmented(_Frozen):
    """``segment_by``: the same metrics per value of bounded categorical columns of the prediction log.

    Per model and column the ``segment_top_k`` values with the most predictions in the previous UTC day are
    kept (chosen once a day); the others are ``__other__``, NULL is ``__null__``. A column with more than
    ``segment_max_values`` distinct values for a model in that day is refused for that model (a message
    names it) instead of creating that many series.
    """

    segment_by: tuple[Identifier, ...] = ()
    segment_top_k: int = Field(default=10, ge=1, le=100)
    segment_max_values: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _distinct_segments(self) -> _Segmented:
        twice = sorted({c for c in self.segment_by if self.segment_by.count(c) > 1})
        if twice:
            raise ValueError(f"segment_by lists {', '.join(twice)} more than once")
        return self


class PredictionsJob(_WindowJob, _Segmented):
    """Descriptive statistics, same-value ratio, invalid counts and drift of served predictions."""

    interval: Duration = Field(default=600, ge=1)
    window: Duration = Field(default=600, ge=60)
    lateness: Duration = Field(default=300, ge=0)
    #: tried in order, per model and window: the same window that long ago (all versions of the model merged),
    #: or ``training``, the serving version's offline validation predictions (table ``validation_predictions``);
    #: the first with ``drift_min_rows`` valid rows (pooled over up to ``drift_max_pool``) is the reference
    drift_reference: DriftReferences = (7 * 86400.0, 86400.0, TRAINING_REFERENCE)
    #: the drift metrics are sent only when the window and its reference both hold this many valid rows:
    #: PSI's noise floor is about 9 * (1/n_ref + 1/n_cur), 0.06 at 300 rows, near the alert threshold below
    drift_min_rows: int = Field(default=300, ge=0)
    #: a window short of ``drift_min_rows`` is compared as the union of itself and the windows just before it
    #: (same model version), against the same span of the reference, up to this long in all
    drift_max_pool: Duration = Field(default=3600, gt=0)
    timestamp_policy: TimestampPolicy = "window_end"
    max_windows_per_query: int = Field(default=36, ge=1, le=10_000)

    @model_validator(mode="after")
    def _reference_multiple(self) -> PredictionsJob:
        if not self.drift_reference:
            raise ValueError("drift_reference lists no reference")
        if len(set(self.drift_reference)) < len(self.drift_reference):
            raise ValueError("drift_reference lists a reference more than once")
        for ref in self.drift_reference:
            if not isinstance(ref, str) and ref % self.window:
                raise ValueError(f"drift_reference {ref:g}s is not a multiple of window ({self.window:g}s)")
        if self.drift_max_pool % self.window:
            raise ValueError("drift_max_pool must be a multiple of window")
        return self

    @property
    def drift_offsets(self) -> tuple[float, ...]:
        """The references that are earlier windows, in seconds, in order."""
        return tuple(r for r in self.drift_reference if not isinstance(r, str))


class QualityJob(_WindowJob, _Segmented):
    """Online logloss, AUC, calibration and more on predictions joined with their matured labels.

    A window is processed once ``end + label_delay`` has passed (per model with
    ``label_delay_by_model``); only label rows with ``label_ts`` before that moment count, so a
    window's numbers do not depend on when the agent ran.
    """

    label_delay: Duration = Field(default=3600, ge=0)
    label_delay_by_model: dict[str, Duration] = Field(default_factory=dict)
    #: how far before its prediction's window a label row may be stamped and still count (clocks that
    #: disagree); the statement reads only labels with ``label_ts`` in [window start - label_skew,
    #: window end + label_delay), so a run's cost does not grow with the history kept in the table
    label_skew: Duration = Field(default=3600, ge=0)
    #: a valid prediction with no label row counted for it: ``skip`` leaves it unlabeled (out of every
    #: metric but ``label_coverage``), ``negative`` counts it as label 0 once its window has matured, for
    #: labels tables that hold only the positives (clicks, conversions). Label rows that are all invalid
    #: values stay an invalid label either way.
    missing_label: Literal["skip", "negative"] = "skip"
    #: a segment's ``auc_vs_model``, ``logloss_vs_model`` and ``calibration_vs_model`` are sent only for a window
    #: where it has this many labeled predictions: at a 2-3 % click rate 1000 rows hold 20-30 positives, and below
    #: that one window's AUC or calibration of a slice is mostly noise (measured: monitors/README.md)
    segment_min_labeled: int = Field(default=1000, ge=0)


class ReproducibilityJob(_WindowJob):
    """Share of online predictions that the offline replays reproduce within tolerance."""

    replay_delay: Duration = Field(default=3600, ge=0)
    #: with a ``ts`` column in ``replays`` (when the replayed request was served), only replays with
    #: ``ts`` within this much of the prediction's window count, and the statement reads only those
    replay_skew: Duration = Field(default=3600, ge=0)
    atol: float = Field(default=1e-6, ge=0)
    rtol: float = Field(default=1e-4, ge=0)


class TrainingJob(_Frozen):
    """Offline metrics, training-row trends and feature breakdowns of each model's latest version."""

    enabled: bool = True
    interval: Duration = Field(default=3600, ge=1)
    #: columns of ``training_features`` to break down; numeric columns get mean/stddev, others top-K shares
    features: tuple[Identifier, ...] = ()
    #: features to treat as categorical even when their column is numeric (e.g. integer-coded ids)
    categorical: tuple[Identifier, ...] = ()
    top_k: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _categorical_are_features(self) -> TrainingJob:
        unknown = sorted(set(self.categorical) - set(self.features))
        if unknown:
            raise ValueError(f"categorical lists columns that are not in features: {', '.join(unknown)}")
        return self


class ServingFeaturesJob(_WindowJob):
    """Statistics of the serving inputs per window, and their skew against the serving version's training data.

    Reads ``tables.serving_features`` (``null``, the default: the feature columns of ``predictions``). With
    ``features`` empty (the default) the job has nothing to watch and is skipped, like a job whose table is
    not configured. Numeric features: NULL, NaN and +-inf count as null; categorical ones: NULL.
    """

    lateness: Duration = Field(default=300, ge=0)
    #: serving columns to describe (named as in ``training_features`` for ``psi_training`` and ``unseen_share``)
    features: tuple[Identifier, ...] = ()
    #: features to treat as categorical even when their column is numeric (e.g. integer-coded ids)
    categorical: tuple[Identifier, ...] = ()
    top_k: int = Field(default=10, ge=1, le=100)
    #: ``psi_training`` is sent only when the window and the version's training data both hold this many
    #: valid values of the feature (the predictions job's ``drift_min_rows`` rule)
    psi_min_rows: int = Field(default=300, ge=0)

    @model_validator(mode="after")
    def _categorical_are_features(self) -> ServingFeaturesJob:
        unknown = sorted(set(self.categorical) - set(self.features))
        if unknown:
            raise ValueError(f"categorical lists columns that are not in features: {', '.join(unknown)}")
        return self


class Jobs(_Frozen):
    """Per-job settings."""

    predictions: PredictionsJob = PredictionsJob()
    quality: QualityJob = QualityJob()
    reproducibility: ReproducibilityJob = ReproducibilityJob()
    training: TrainingJob = TrainingJob()
    serving_features: ServingFeaturesJob = ServingFeaturesJob()
