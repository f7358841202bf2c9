"""What the statements that join served predictions with what arrives later share: the predictions
CTE (with ``request_id``), the table bindings, the window parameters and the result record.

:mod:`mlmon.warehouse.quality` joins ``labels``, :mod:`mlmon.warehouse.reproducibility` joins
``replays``; each returns one row per (model, model_version, window).

Every table is read through a CTE bounded by time (``preds`` by ``ts`` in ``[$start, $end)``, ``labs``
by ``label_ts``, ``reps`` by ``replays.ts`` when the table has it), so that a run's cost follows the
windows it processes, not the history kept in the tables; with ``partitions:`` the same ranges bound the
tables' date partition columns too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from mlmon.config import Instance
from mlmon.warehouse.predictions import GroupKey, SegmentKey, predictions_cte
from mlmon.warehouse.segments import column_renames
from mlmon.warehouse.sql import Statement, bind_tables, model_filter, partition_days, partition_filter, ts_param

PREDICTIONS_CTE = predictions_cte("preds", request_id=True)


def sources(instance: Instance, *tables: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Alias -> (physical table, column renames) for :func:`~mlmon.warehouse.sql.bind_tables`."""
    aliases = {"predictions": "src", "labels": "lab", "replays": "rep", "training_runs": "src"}
    out = {}
    for table in tables:
        physical = getattr(instance.tables, table)
        if physical is None:
            raise ValueError(f"table {table} is not configured")
        out[aliases[table]] = (physical, instance.columns.get(table, {}))
    return out


def window_params(start: float, end: float, width: float) -> dict[str, Any]:
    """The bound range and window width."""
    return {"start": ts_param(start), "end": ts_param(end), "window_seconds": int(width)}


def as_int(value: Any) -> int:
    """A fetched count, 0 when NULL."""
    return int(value) if value is not None else 0


def as_float(value: Any) -> float:
    """A fetched sum, 0.0 when NULL."""
    return float(value) if value is not None else 0.0


def group_key(row: Any) -> GroupKey:
    """The (model, version, window) of a result row."""
    return GroupKey(str(row.model), str(row.model_version), int(row.w))


@dataclass(frozen=True)
class JoinedResult:
    """Aggregates by group, plus how many result rows the engine returned."""

    groups: dict[GroupKey, Any]
    rows_fetched: int
    #: with ``segment_by``: aggregates by segment group
    segments: dict[SegmentKey, Any] = field(default_factory=dict)


#: each table a statement reads by time: (its CTE, the alias it reads the table by, the range it reads)
READS: dict[str, tuple[str, str, tuple[str, str]]] = {
    "predictions": ("preds", "src", ("start", "end")),
    "labels": ("labs", "lab", ("label_start", "label_end")),
    "replays": ("reps", "rep", ("replay_start", "replay_end")),
}


def bind_joined(
    statement: Statement[Any] | exp.Expression, instance: Instance, joined: str, include: Sequence[str] = (),
    exclude: Sequence[str] = (), segments: Sequence[str] = (),
) -> exp.Expression:
    """``statement`` over the instance's predictions and table ``joined`` (``labels``, ``replays``), restricted
    to the models of a lane (``include``, less ``exclude``), with the date partition columns bounded too; the
    predictions' ``segments`` columns read as the template's ``src.__segment_<i>__``."""
    template = statement.template if isinstance(statement, Statement) else statement
    query = model_filter(template.copy(), "preds", include, exclude)
    for table in ("predictions", joined):
        cte, alias, period = READS[table]
        query = partition_filter(query, cte, alias, instance.partition(table), (period,))
    bound = sources(instance, "predictions", joined)
    if segments:
        bound["src"] = (bound["src"][0], column_renames(instance, "predictions", segments))
    return bind_tables(query, bound)


def joined_params(instance: Instance, joined: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` and the days :func:`bind_joined`'s partition predicates bind."""
    out = dict(params)
    for table in ("predictions", joined):
        out.update(partition_days(params, (READS[table][2],), instance.partition(table)))
    return out
