"""The drift histogram: a bounded summary of a prediction distribution, for PSI and KS.

Valid probability predictions are placed on a grid of ``DRIFT_BUCKETS`` equal steps in logit space
over [-10, 10] (``p`` = 0 and 1 go to the end buckets). Logit steps suit CTR/CVR models, whose scores
crowd near 0: a bucket is about 2 % of ``p`` wide wherever ``p`` is small. A (model, window) never
returns more than ``DRIFT_BUCKETS`` histogram rows, however many predictions it has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DRIFT_BUCKETS = 1000
LOGIT_RANGE = 10.0
#: buckets per unit of logit
DRIFT_SCALE = DRIFT_BUCKETS / (2 * LOGIT_RANGE)

IntArray = npt.NDArray[np.int64]


def drift_bucket(values: npt.ArrayLike) -> IntArray:
    """The grid bucket of each valid prediction, as the warehouse computes it."""
    p = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.floor((np.log(p / (1.0 - p)) + LOGIT_RANGE) * DRIFT_SCALE)
    raw = np.where(p <= 0, 0, np.where(p >= 1, DRIFT_BUCKETS - 1, raw))
    return np.clip(raw, 0, DRIFT_BUCKETS - 1).astype(np.int64)


@dataclass(frozen=True)
class ScoreHistogram:
    """Counts of valid predictions per non-empty grid bucket, sorted by bucket."""

    bucket: IntArray
    count: IntArray

    @property
    def total(self) -> int:
        """Number of valid predictions summarised."""
        return int(self.count.sum())

    @classmethod
    def empty(cls) -> ScoreHistogram:
        """A histogram of no rows."""
        return cls(np.empty(0, np.int64), np.empty(0, np.int64))

    @classmethod
    def from_values(cls, values: npt.ArrayLike) -> ScoreHistogram:
        """Summarise raw predictions the way the warehouse does (invalid values are left out)."""
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[(arr >= 0.0) & (arr <= 1.0)]
        uniq, count = np.unique(drift_bucket(arr), return_counts=True)
        return cls(uniq.astype(np.int64), count.astype(np.int64))

    @classmethod
    def merge(cls, histograms: Iterable[ScoreHistogram]) -> ScoreHistogram:
        """Combine histograms (e.g. of several model versions)."""
        hists = [h for h in histograms if h.bucket.size]
        if not hists:
            return cls.empty()
        uniq, inverse = np.unique(np.concatenate([h.bucket for h in hists]), return_inverse=True)
        count = np.zeros(uniq.size, np.int64)
        np.add.at(count, inverse, np.concatenate([h.count for h in hists]))
        return cls(uniq.astype(np.int64), count)
