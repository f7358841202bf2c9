"""The reproducibility job's statement: served predictions joined with the offline replays.

One row per (model, model_version, window). A valid prediction is checked when ``replays`` has a
row of the same ``request_id`` and ``model_version`` (with ``replays.ts``: served within
``replay_skew`` of the prediction's window); NULL replay values are ignored; see
:mod:`mlmon.metrics.reproducibility` for the tolerance rule.

Without ``replays.ts`` nothing bounds the replays read: every run reads the whole table (``mlmon
check`` says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlglot import exp

from mlmon.config import Instance
from mlmon.metrics.reproducibility import ReproducibilityAggregate
from mlmon.warehouse.engines import Engine, QueryError
from mlmon.warehouse.joined import (
    PREDICTIONS_CTE,
    JoinedResult,
    as_float,
    as_int,
    bind_joined,
    group_key,
    joined_params,
    window_params,
)
from mlmon.warehouse.predictions import GroupKey
from mlmon.warehouse.sql import (
    Statement,
    bind_source,
    configured_table,
    model_params,
    parse_template,
    ts_param,
    used_params,
)


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


def _reproducibility_sql(timed: bool) -> str:
    """The statement; ``timed``: ``replays`` has a ``ts`` column (when the replayed request was served),
    which bounds the scan to the range's replays and each replay to its prediction's window."""
    ts_column = ", rep.ts AS ts" if timed else ""
    ts_range = "WHERE rep.ts >= $replay_start AND rep.ts < $replay_end" if timed else ""
    ts_match = """
    AND EPOCH(rp.ts) >= pr.w * $window_seconds - $replay_skew
    AND EPOCH(rp.ts) < (pr.w + 1) * $window_seconds + $replay_skew""" if timed else ""
    return f"""
WITH {PREDICTIONS_CTE},
reps AS (
  SELECT rep.request_id AS request_id, rep.model_version AS model_version, rep.prediction AS prediction{ts_column}
  FROM __rep__ AS rep
  {ts_range}
),
matched AS (
  SELECT pr.model, pr.model_version, pr.w, pr.request_id,
    COUNT(rp.prediction) AS replay_rows,
    MAX(CASE WHEN rp.prediction >= 0 AND rp.prediction <= 1 THEN ABS(pr.p - rp.prediction) END) AS diff,
    MIN(CASE WHEN rp.prediction IS NULL THEN NULL
             WHEN rp.prediction >= 0 AND rp.prediction <= 1
                  AND ABS(pr.p - rp.prediction) <= $atol + $rtol * ABS(rp.prediction) THEN 1
             ELSE 0 END) AS agrees
  FROM preds AS pr
  LEFT JOIN reps AS rp
    ON rp.request_id = pr.request_id
    AND COALESCE(CAST(rp.model_version AS VARCHAR), '') = pr.model_version{ts_match}
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


#: with ``replays.ts``: replays served within ``replay_skew`` of the prediction's window
_TIMED = Statement("reproducibility", ReproducibilityRow, _reproducibility_sql(timed=True))
#: without it: every replay of the request and version, whenever served (the whole table is read)
_UNTIMED = Statement("reproducibility (replays without ts)", ReproducibilityRow, _reproducibility_sql(timed=False))

_TS_PROBE = parse_template("SELECT src.ts FROM __source__ AS src WHERE 1 = 0")


def replay_ts_type(engine: Engine, instance: Instance) -> str:
    """The type name of the replays table's time column. Raises ``QueryError`` (no such column)."""
    probe = bind_source(_TS_PROBE, configured_table(instance, "replays"), instance.columns.get("replays", {}))
    ((_, type_name),) = engine.column_types(probe, {})
    return type_name


def replays_have_ts(engine: Engine, instance: Instance) -> bool:
    """Whether the replays table has its time column: named in ``columns: {replays: {ts: ...}}`` (then it
    must exist: the statement fails naming it otherwise), else probed under its default name ``ts``
    (one statement that reads no row)."""
    if "ts" in instance.columns.get("replays", {}):
        return True
    try:
        replay_ts_type(engine, instance)
    except QueryError:
        return False
    return True


def build_reproducibility_query(
    instance: Instance, include: Sequence[str] = (), exclude: Sequence[str] = (), *, timed: bool = True
) -> exp.Expression:
    """Predictions LEFT JOIN replays, per (model, version, window); optional model filters; ``timed``:
    replays bounded by their ``ts`` column."""
    return bind_joined(_TIMED if timed else _UNTIMED, instance, "replays", include, exclude)


def fetch_reproducibility(
    engine: Engine, instance: Instance, start: float, end: float, width: float, atol: float, rtol: float,
    include: Sequence[str] = (), exclude: Sequence[str] = (), *, timed: bool | None = None,
) -> JoinedResult:
    """One :class:`ReproducibilityAggregate` per (model, version, window) of ``[start, end)``; ``timed``:
    read only replays served within ``replay_skew`` of their prediction's window (None: when
    :func:`replays_have_ts`)."""
    if timed is None:
        timed = replays_have_ts(engine, instance)
    skew = instance.jobs.reproducibility.replay_skew
    params: dict[str, Any] = {**window_params(start, end, width), **model_params(include, exclude),
                              "atol": float(atol), "rtol": float(rtol),
                              "replay_start": ts_param(start - skew), "replay_end": ts_param(end + skew)}
    if timed:
        params["replay_skew"] = float(skew)
    params = joined_params(instance, "replays", params)
    query = build_reproducibility_query(instance, include, exclude, timed=timed)
    rows = engine.fetch(query, used_params(query, params))
    groups: dict[GroupKey, Any] = {
        group_key(row): ReproducibilityAggregate(
            checked_count=as_int(row.n_checked), missing_count=as_int(row.n_missing),
            reproduced_count=as_int(row.n_reproduced), diff_count=as_int(row.n_diff),
            sum_abs_diff=as_float(row.sum_diff),
            max_abs_diff=float(row.max_diff) if row.max_diff is not None else None,
        )
        for row in _TIMED.rows(rows)
    }
    return JoinedResult(groups, len(rows))
