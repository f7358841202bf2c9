"""Online quality of one window: predictions joined with their matured labels.

The warehouse returns sums, never rows: counts, the sum of predictions, of per-row log losses
(clipped like scikit-learn to ``[eps, 1 - eps]`` with ``eps`` the float64 machine epsilon), of squared
errors, and ``auc_pairs2``, twice the number of (positive, negative) pairs the model orders correctly
with ties counted once (so it is an integer). ROC AUC is ``auc_pairs2 / (2 * P * N)``, the
Mann-Whitney form of the area under the curve scikit-learn integrates, hence exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from mlmon.metrics.results import MetricFields

#: scikit-learn's log-loss clip for float64 predictions
LOGLOSS_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class QualityAggregate:
    """What the warehouse returns for one (model, model_version, window).

    ``count`` counts every prediction, ``valid_count`` those in [0, 1]; ``labeled_count`` the valid
    ones with a 0/1 label (with ``missing_label: negative``, those with no counted label row too, as
    0s); ``invalid_label_count`` the valid ones whose matured label rows are all something other than
    0/1. The sums run over the labeled rows.
    """

    count: int
    valid_count: int
    labeled_count: int
    invalid_label_count: int
    positives: int
    sum_prediction: float
    sum_logloss: float
    sum_squared_error: float
    auc_pairs2: int

    @classmethod
    def from_values(cls, predictions: npt.ArrayLike, labels: npt.ArrayLike) -> QualityAggregate:
        """Aggregate in memory with the warehouse's rules (tests, small data).

        ``labels`` holds one label per prediction: 0 or 1, NaN for "no label", anything else invalid.
        """
        p = np.asarray(predictions, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64)
        valid = (p >= 0.0) & (p <= 1.0)
        has_label = ~np.isnan(y)
        binary = (y == 0.0) | (y == 1.0)
        use = valid & binary
        pv, yv = p[use], y[use]
        clipped = np.clip(np.where(yv == 1.0, pv, 1.0 - pv), LOGLOSS_EPS, 1.0 - LOGLOSS_EPS)
        return cls(
            count=int(p.size),
            valid_count=int(valid.sum()),
            labeled_count=int(use.sum()),
            invalid_label_count=int((valid & has_label & ~binary).sum()),
            positives=int(yv.sum()),
            sum_prediction=float(pv.sum()),
            sum_logloss=float(-np.log(clipped).sum()),
            sum_squared_error=float(((pv - yv) ** 2).sum()),
            auc_pairs2=_auc_pairs2(pv, yv),
        )


#: ``mlmon check`` warns about a window whose labeled predictions are all of one class when the
#: predictions themselves give that outcome a lower probability than this
ONE_CLASS_MAX_PROBABILITY = 1e-6


@dataclass(frozen=True)
class LabelBalance:
    """The labeled count, positives and sums of one (model, model_version, window), as in
    :class:`QualityAggregate`."""

    labeled_count: int
    positives: int
    sum_prediction: float
    sum_logloss: float

    @property
    def one_class(self) -> bool:
        """Every labeled prediction is positive, or every one negative."""
        return self.labeled_count > 0 and self.positives in (0, self.labeled_count)

    @property
    def implausible_one_class(self) -> bool:
        """One class only, although the predictions make that less likely than
        :data:`ONE_CLASS_MAX_PROBABILITY`.

        With a single class the summed log loss is ``-ln P(that outcome)`` for independent outcomes
        drawn with the predicted probabilities: a quiet hour of a rare-event model with no positive is
        plausible and passes; 400 clicks out of 400 predictions of a 2 % CTR model are not (a labels
        table that holds only positives, or labels that do not join).
        """
        return self.one_class and self.sum_logloss > -math.log(ONE_CLASS_MAX_PROBABILITY)


def _auc_pairs2(p: np.ndarray, y: np.ndarray) -> int:
    """Twice the correctly ordered (positive, negative) pairs, ties once: the engine's rank sum."""
    scores, inverse = np.unique(p, return_inverse=True)
    pos = np.bincount(inverse, weights=y, minlength=scores.size).astype(np.int64)
    neg = np.bincount(inverse, weights=1.0 - y, minlength=scores.size).astype(np.int64)
    neg_below = np.concatenate([[0], np.cumsum(neg)[:-1]])
    return int(np.sum(pos * (2 * neg_below + neg)))


@dataclass(frozen=True)
class OfflineMetrics:
    """The serving version's validation metrics from ``training_runs``."""

    valid_logloss: float | None
    valid_auc: float | None


@dataclass(frozen=True)
class OnlineQuality(MetricFields):
    """Reported online metrics; ``None`` where undefined for the window."""

    labeled_count: int
    invalid_prediction_count: int
    invalid_label_count: int
    label_coverage: float | None
    positive_rate: float | None
    mean_prediction: float | None
    logloss: float | None
    auc: float | None
    brier: float | None
    calibration: float | None
    normalized_entropy: float | None
    logloss_vs_offline: float | None
    auc_vs_offline: float | None
    one_class: bool

    #: a flag, not a metric
    NOT_METRICS: ClassVar[frozenset[str]] = frozenset({"one_class"})

    def values(self) -> dict[str, float]:
        """Metric suffix -> value, for the defined (not None, finite) metrics only."""
        out = {}
        for name in self.names():
            value = getattr(self, name)
            if value is not None and math.isfinite(value):
                out[name] = float(value)
        return out


def binary_entropy(rate: float) -> float:
    """Entropy (nats) of a Bernoulli(rate) outcome: the log loss of always predicting ``rate``."""
    return -(rate * math.log(rate) + (1.0 - rate) * math.log(1.0 - rate))


def online_quality(agg: QualityAggregate, offline: OfflineMetrics | None = None) -> OnlineQuality:
    """Online metrics of one window from its aggregate (and the serving version's offline metrics).

    With no labeled row only the counts (and coverage) are defined. With one class only, AUC,
    calibration and normalized entropy are undefined and left out; logloss, Brier and the
    positive rate are still reported.
    """
    n = agg.labeled_count
    coverage = n / agg.valid_count if agg.valid_count else None
    invalid_predictions = agg.count - agg.valid_count
    if n == 0:
        return OnlineQuality(0, invalid_predictions, agg.invalid_label_count, coverage,
                             None, None, None, None, None, None, None, None, None, one_class=False)
    pos, neg = agg.positives, n - agg.positives
    rate = pos / n
    mean = agg.sum_prediction / n
    logloss = agg.sum_logloss / n
    both = pos > 0 and neg > 0
    auc = agg.auc_pairs2 / (2 * pos * neg) if both else None
    logloss_vs = auc_vs = None
    if offline is not None:
        if offline.valid_logloss is not None and offline.valid_logloss > 0:
            logloss_vs = logloss / offline.valid_logloss
        if offline.valid_auc is not None and auc is not None:
            auc_vs = auc - offline.valid_auc
    return OnlineQuality(
        labeled_count=n,
        invalid_prediction_count=invalid_predictions,
        invalid_label_count=agg.invalid_label_count,
        label_coverage=coverage,
        positive_rate=rate,
        mean_prediction=mean,
        logloss=logloss,
        auc=auc,
        brier=agg.sum_squared_error / n,
        calibration=mean / rate if both else None,
        normalized_entropy=logloss / binary_entropy(rate) if both else None,
        logloss_vs_offline=logloss_vs,
        auc_vs_offline=auc_vs,
        one_class=not both,
    )
