"""The reproducibility job's statement: served predictions joined with the offline replays.

One row per (model, model_version, window). A valid prediction is checked when ``replays`` has a
row of the same ``request_id`` and ``model_version``; NULL replay values are ignored; see
:mod:`mlmon.metrics.reproducibility` for the tolerance rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlglot import exp

from mlmon.config import Instance
from mlmon.metrics.reproducibility import ReproducibilityAggregate
from mlmon.warehouse.engines import Engine
from mlmon.warehouse.joined import (
    PREDICTIONS_CTE,
    JoinedResult,
    as_float,
    as_int,
    bind_joined,
    group_key,
    window_params,
)
from mlmon.warehouse.predictions import GroupKey
from mlmon.warehouse.sql import Statement, model_params


class ReproducibilityRow(NamedTuple):
    """Per group: checked, missing and reproduced requests, and the replays' absolute differences."""

    model: Any
    model_version: Any
    w: Any
    n_checked: Any
    n_missing: Any
    n_reproduced: Any
    n_diff: Any
    sum_diff: Any
    max_diff: Any


_REPRODUCIBILITY = Statement(
    "reproducibility",
    ReproducibilityRow,
    f"""
WITH {PREDICTIONS_CTE},
matched AS (
  SELECT pr.model, pr.model_version, pr.w, pr.request_id,
    COUNT(rep.prediction) AS replay_rows,
    MAX(CASE WHEN rep.prediction >= 0 AND rep.prediction <= 1 THEN ABS(pr.p - rep.prediction) END) AS diff,
    MIN(CASE WHEN rep.prediction IS NULL THEN NULL
             WHEN rep.prediction >= 0 AND rep.prediction <= 1
                  AND ABS(pr.p - rep.prediction) <= $atol + $rtol * ABS(rep.prediction) THEN 1
             ELSE 0 END) AS agrees
  FROM preds AS pr
  LEFT JOIN __rep__ AS rep
    ON rep.request_id = pr.request_id
    AND COALESCE(CAST(rep.model_version AS VARCHAR), '') = pr.model_version
  WHERE pr.ok = 1
  GROUP BY pr.model, pr.model_version, pr.w, pr.request_id, pr.p
)
SELECT model, model_version, w,
  SUM(CASE WHEN replay_rows > 0 THEN 1 ELSE 0 END) AS n_checked,
  SUM(CASE WHEN replay_rows = 0 THEN 1 ELSE 0 END) AS n_missing,
  SUM(CASE WHEN replay_rows > 0 AND agrees = 1 THEN 1 ELSE 0 END) AS n_reproduced,
  COUNT(diff) AS n_diff,
  SUM(diff) AS sum_diff,
  MAX(diff) AS max_diff
FROM matched
GROUP BY model, model_version, w
ORDER BY model, model_version, w
"""
)


def build_reproducibility_query(
    instance: Instance, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> exp.Expression:
    """Predictions LEFT JOIN replays, per (model, version, window); optional model filters."""
    return bind_joined(_REPRODUCIBILITY, instance, "replays", include, exclude)


def fetch_reproducibility(
    engine: Engine, instance: Instance, start: float, end: float, width: float, atol: float, rtol: float,
    include: Sequence[str] = (), exclude: Sequence[str] = (),
) -> JoinedResult:
    """One :class:`ReproducibilityAggregate` per (model, version, window) of ``[start, end)``."""
    params = {**window_params(start, end, width), **model_params(include, exclude),
              "atol": float(atol), "rtol": float(rtol)}
    rows = engine.fetch(build_reproducibility_query(instance, include, exclude), params)
    groups: dict[GroupKey, Any] = {
        group_key(row): ReproducibilityAggregate(
            checked_count=as_int(row.n_checked), missing_count=as_int(row.n_missing),
            reproduced_count=as_int(row.n_reproduced), diff_count=as_int(row.n_diff),
            sum_abs_diff=as_float(row.sum_diff),
            max_abs_diff=float(row.max_diff) if row.max_diff is not None else None,
        )
        for row in _REPRODUCIBILITY.rows(rows)
    }
    return JoinedResult(groups, len(rows))
