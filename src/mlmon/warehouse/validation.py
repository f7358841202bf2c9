"""The ``training`` drift reference: each model version's offline validation predictions, as a drift sample.

One statement over ``validation_predictions`` (``model``, ``model_version``, ``prediction``) returns, per
(model, version) asked for, the non-empty drift-grid buckets of its valid predictions (in [0, 1]) with their
count and the sum of their predictions: at most ``DRIFT_BUCKETS`` rows per version, however large the sample.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from sqlglot import exp

from mlmon.config import Instance
from mlmon.metrics.drift import DriftSample
from mlmon.metrics.histogram import ScoreHistogram
from mlmon.warehouse.engines import Engine
from mlmon.warehouse.predictions import DRIFT_BUCKET, drift_params
from mlmon.warehouse.sql import (
    Statement,
    bind_source,
    configured_table,
    cte_select,
    in_list,
    model_filter,
    model_params,
)


class ValidationRow(NamedTuple):
    """One drift bucket of one version's validation predictions: its count and the sum of its predictions."""

    model: Any
    model_version: Any
    b: Any
    c: Any
    s: Any


_VALIDATION = Statement(
    "validation predictions",
    ValidationRow,
    f"""
WITH base AS (
  SELECT src.model AS model, COALESCE(CAST(src.model_version AS VARCHAR), '') AS model_version,
    CAST(src.prediction AS DOUBLE) AS p
  FROM __source__ AS src
  WHERE src.model IS NOT NULL AND src.prediction >= 0 AND src.prediction <= 1
),
valid AS (
  SELECT model, model_version, p, {DRIFT_BUCKET} AS b FROM base
)
SELECT model, model_version, CAST(b AS BIGINT) AS b, COUNT(*) AS c, SUM(p) AS s
FROM valid
GROUP BY model, model_version, b
ORDER BY model, model_version, b
""",
)


def build_validation_query(instance: Instance, models: Sequence[str], versions: Sequence[str]) -> exp.Expression:
    """The statement over ``validation_predictions`` for ``models`` and ``versions`` (bound)."""
    query = model_filter(_VALIDATION.template.copy(), "base", models, ())
    version = exp.Coalesce(this=exp.cast(exp.column("model_version", table="src"), "VARCHAR"),
                           expressions=[exp.Literal.string("")])
    cte_select(query, "base").where(in_list(version, versions, "version"), copy=False)
    return bind_source(query, configured_table(instance, "validation_predictions"),
                       instance.columns.get("validation_predictions", {}))


def fetch_validation(
    engine: Engine, instance: Instance, pairs: Sequence[tuple[str, str]]
) -> tuple[dict[tuple[str, str], DriftSample], int]:
    """``(model, version) -> DriftSample`` of the validation predictions of each of ``pairs`` that has any, and
    the rows fetched. Raises :class:`~mlmon.warehouse.engines.QueryError`."""
    if not pairs:
        return {}, 0
    models = sorted({m for m, _ in pairs})
    versions = sorted({v for _, v in pairs})
    params = {**model_params(models, ()), **{f"version_{i}": v for i, v in enumerate(versions)}, **drift_params()}
    rows = engine.fetch(build_validation_query(instance, models, versions), params)
    buckets: dict[tuple[str, str], list[tuple[int, int, float]]] = defaultdict(list)
    for row in _VALIDATION.rows(rows):
        buckets[(str(row.model), str(row.model_version))].append((int(row.b), int(row.c), float(row.s)))
    wanted = set(pairs)
    out = {}
    for pair, found in buckets.items():
        if pair in wanted:
            histogram = ScoreHistogram(np.array([b for b, _, _ in found], np.int64),
                                       np.array([c for _, c, _ in found], np.int64))
            out[pair] = DriftSample(histogram, sum(s for _, _, s in found))
    return out, len(rows)
