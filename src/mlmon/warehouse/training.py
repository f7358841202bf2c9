"""The training job's lineage statement: each model's latest, previous and 30-day runs.

:func:`build_runs_query` returns at most three rows per model from ``training_runs``: the latest run
(``rn = 1``), the previous one (``rn = 2``) and the "30-day" one (``month = 1``: the latest run trained
at least :data:`~mlmon.metrics.training.MONTH_SECONDS` before the latest; it may also be the previous
one). Runs are ordered by ``trained_at`` descending, then ``model_version`` descending; rows with a
NULL model, version or ``trained_at`` are ignored. The feature statements are in
:mod:`mlmon.warehouse.features`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlglot import exp

from mlmon.config import Instance
from mlmon.metrics.training import MONTH_SECONDS, TrainingRun
from mlmon.warehouse.engines import Engine
from mlmon.warehouse.sql import (
    Statement,
    bind_source,
    configured_table,
    cte_select,
    finite_or_none,
    in_list,
)


class RunRow(NamedTuple):
    """One run of the lineage: ``rn`` 1 (latest) or 2 (previous), ``month`` 1 if it is the 30-day one."""

    model: Any
    model_version: Any
    t: Any
    train_rows: Any
    valid_rows: Any
    valid_logloss: Any
    valid_auc: Any
    rn: Any
    month: Any


_RUNS = Statement(
    "training runs",
    RunRow,
    """
WITH runs AS (
  SELECT
    CAST(src.model AS VARCHAR) AS model,
    CAST(src.model_version AS VARCHAR) AS model_version,
    CAST(EPOCH(src.trained_at) AS DOUBLE) AS t,
    src.train_rows AS train_rows,
    src.valid_rows AS valid_rows,
    CAST(src.valid_logloss AS DOUBLE) AS valid_logloss,
    CAST(src.valid_auc AS DOUBLE) AS valid_auc
  FROM __source__ AS src
  WHERE src.model IS NOT NULL AND src.model_version IS NOT NULL AND src.trained_at IS NOT NULL
),
ranked AS (
  SELECT model, model_version, t, train_rows, valid_rows, valid_logloss, valid_auc,
    ROW_NUMBER() OVER (PARTITION BY model ORDER BY t DESC, model_version DESC) AS rn,
    CASE WHEN t <= MAX(t) OVER (PARTITION BY model) - $month_seconds THEN 1 ELSE 0 END AS old
  FROM runs
),
marked AS (
  SELECT model, model_version, t, train_rows, valid_rows, valid_logloss, valid_auc, rn, old,
    ROW_NUMBER() OVER (PARTITION BY model, old ORDER BY t DESC, model_version DESC) AS rn_old
  FROM ranked
)
SELECT model, model_version, t, train_rows, valid_rows, valid_logloss, valid_auc, rn,
  CASE WHEN old = 1 AND rn_old = 1 THEN 1 ELSE 0 END AS month
FROM marked
WHERE rn <= 2 OR (old = 1 AND rn_old = 1)
ORDER BY model, rn
"""
)


# --- runs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRuns:
    """The runs lineage compares for one model: latest, previous and 30-day (the last two may be absent)."""

    latest: TrainingRun
    previous: TrainingRun | None = None
    month_ago: TrainingRun | None = None


@dataclass(frozen=True)
class RunsResult:
    """Runs by model, plus how many result rows the engine returned."""

    models: dict[str, ModelRuns]
    rows_fetched: int


def build_runs_query(instance: Instance, models: Sequence[str] = ()) -> exp.Expression:
    """The lineage statement over ``training_runs`` (optionally restricted to ``models``, bound)."""
    query = _RUNS.template.copy()
    if models:
        runs = cte_select(query, "runs")
        model = exp.cast(exp.column("model", table="src"), exp.DataType.Type.VARCHAR)
        runs.where(in_list(model, list(models), "model"), copy=False)
    return bind_source(query, configured_table(instance, "training_runs"), instance.columns.get("training_runs", {}))


def runs_params(models: Sequence[str] = ()) -> dict[str, Any]:
    """Bound values for :func:`build_runs_query`."""
    return {"month_seconds": float(MONTH_SECONDS), **{f"model_{i}": m for i, m in enumerate(models)}}


def parse_runs(rows: Sequence[tuple[Any, ...]]) -> dict[str, ModelRuns]:
    """Fold the lineage rows into one :class:`ModelRuns` per model."""
    found: dict[str, dict[str, TrainingRun]] = defaultdict(dict)
    for row in _RUNS.rows(rows):
        run = TrainingRun(str(row.model_version), float(row.t), finite_or_none(row.train_rows),
                          finite_or_none(row.valid_rows), finite_or_none(row.valid_logloss),
                          finite_or_none(row.valid_auc))
        if int(row.rn) == 1:
            found[str(row.model)]["latest"] = run
        elif int(row.rn) == 2:
            found[str(row.model)]["previous"] = run
        if int(row.month) == 1:
            found[str(row.model)]["month_ago"] = run
    return {m: ModelRuns(**runs) for m, runs in found.items() if "latest" in runs}


def fetch_runs(engine: Engine, instance: Instance, models: Sequence[str] = ()) -> RunsResult:
    """Run the lineage statement. Raises :class:`QueryError`."""
    rows = engine.fetch(build_runs_query(instance, models), runs_params(models))
    return RunsResult(parse_runs(rows), len(rows))


# --- feature kinds ----------------------------------------------------------------------------------
