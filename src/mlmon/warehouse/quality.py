"""The quality job's statements: served predictions joined with their labels, and the offline metrics.

Each returns one row per (model, model_version, window): the join, the per-request rules and the
sums all run in the engine. The ROC AUC needs no raw rows either: one window over the labeled rows
ordered by score gives each row ``RANK`` (1 + rows strictly below) and ``CUME_DIST`` times the
group's size (rows at or below), whose sum is twice its average rank with ties averaged; summed
over the positives and less ``P * (P + 1)`` that is twice the Mann-Whitney U statistic with ties
counted half. (A running sum of negatives per distinct score gives the same number, but needs a
grouping by score and a frame the engines evaluate several times slower.)

(``p`` is never NULL there; ``NULLS FIRST`` is spelled out because BigQuery cannot express DuckDB's
default ``NULLS LAST`` in a window frame.)

Per-request rules, chosen so that numbers do not depend on when the agent ran:

* labels: only rows with ``label_ts`` in ``[window start - label_skew, window end + label_delay)``
  count (a label cannot be stamped long before its prediction was served; ``label_skew`` allows for
  clocks that disagree), so the statement reads only the labels of that range; rows with a NULL
  ``label_ts`` never count (their arrival is unknown: they would have to be read on every run). A
  request with several counted rows is positive if any valid (0/1) row is 1; a request whose rows are
  all other values has an invalid label; a request with no such row is unlabeled, or a negative with
  ``missing_label: negative`` (bound as ``$missing_negative``, one statement for both).
* label values: INTEGER, BOOLEAN, DOUBLE or text, read through their text form in lower case,
  so that one expression type-checks on every engine whatever the column's type (PostgreSQL
  has no ``boolean = integer``). A number's text form depends on the engine (``1`` on PostgreSQL,
  Snowflake and BigQuery, ``1.0`` on DuckDB and Spark, ``1.0E0`` on Trino) and a boolean's is
  ``true``/``false`` everywhere: :data:`POSITIVE_LABELS` and :data:`NEGATIVE_LABELS` hold every
  spelling; anything else (``2``, ``'x'``, NULL) is not a label.
"""


from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlglot import exp

from mlmon.config import Instance
from mlmon.metrics.quality import LOGLOSS_EPS, LabelBalance, OfflineMetrics, QualityAggregate
from mlmon.warehouse.engines import Engine
from mlmon.warehouse.joined import (
    PREDICTIONS_CTE,
    JoinedResult,
    as_float,
    as_int,
    bind_joined,
    group_key,
    joined_params,
    sources,
    window_params,
)
from mlmon.warehouse.predictions import GroupKey, SegmentKey, predictions_cte
from mlmon.warehouse.segments import SegmentPlan, bind_segments, segment_params, unpivot
from mlmon.warehouse.sql import Statement, bind_tables, cte_select, in_list, model_filter, model_params, ts_param

#: a label's text form (lower case) that means 1, and 0, whatever the column's type and engine
POSITIVE_LABELS = ("1", "1.0", "1.0e0", "true")
NEGATIVE_LABELS = ("0", "0.0", "0.0e0", "false")


def _label_value() -> str:
    """1, 0 or NULL (not a label) for one label row, as SQL (literals are mlmon's own, never config)."""
    # not trimmed: TRIM cost 5 % of the whole statement on DuckDB (so ' 1' is not a label: invalid, and counted)
    text = "LOWER(CAST(lb.label AS VARCHAR))"
    ones = ", ".join(f"'{v}'" for v in POSITIVE_LABELS)
    zeros = ", ".join(f"'{v}'" for v in NEGATIVE_LABELS)
    return f"CASE WHEN {text} IN ({ones}) THEN 1 WHEN {text} IN ({zeros}) THEN 0 END"


# the labels of the range [$label_start, $label_end): what any window of [$start, $end) may count (a
# predicate on the column itself, which the engines push into the scan: zone maps, indexes, partitions)
_LABELS_CTE = """
labs AS (
  SELECT lab.request_id AS request_id, lab.label AS label, lab.label_ts AS label_ts
  FROM __lab__ AS lab
  WHERE lab.label_ts >= $label_start AND lab.label_ts < $label_end
)"""

# y: 1, 0, or NULL when the counted label rows are all invalid or, unless $missing_negative = 1, absent; with
# segments, each prediction's raw segment values (MIN: not in the grouping, which stays the unsegmented one's)
def _matched_cte(segments: Sequence[int] = ()) -> str:
    raw = "".join(f" MIN(pr.s{i}) AS s{i}," for i in segments)
    return f"""
matched AS (
  SELECT pr.model, pr.model_version, pr.w, pr.request_id, pr.p, pr.ok,{raw}
    CASE WHEN COUNT(lb.request_id) > 0 THEN MAX({_label_value()})
         WHEN $missing_negative = 1 THEN 0 END AS y,
    COUNT(lb.request_id) AS label_rows
  FROM preds AS pr
  LEFT JOIN labs AS lb
    ON lb.request_id = pr.request_id
    AND EPOCH(lb.label_ts) >= pr.w * $window_seconds - $label_skew
    AND EPOCH(lb.label_ts) < (pr.w + 1) * $window_seconds + $label_delay
  GROUP BY pr.model, pr.model_version, pr.w, pr.request_id, pr.p, pr.ok
)"""


_MATCHED_CTE = _matched_cte()

_STATS_CTE = """
stats AS (
  SELECT model, model_version, w,
    COUNT(*) AS n,
    SUM(ok) AS n_valid,
    SUM(CASE WHEN ok = 1 AND y IS NOT NULL THEN 1 ELSE 0 END) AS n_labeled,
    SUM(CASE WHEN ok = 1 AND y IS NULL AND label_rows > 0 THEN 1 ELSE 0 END) AS n_bad_label,
    SUM(CASE WHEN ok = 1 AND y = 1 THEN 1 ELSE 0 END) AS n_pos,
    SUM(CASE WHEN ok = 1 AND y IS NOT NULL THEN p END) AS sum_p,
    SUM(CASE WHEN ok = 1 AND y = 1 THEN -LN(LEAST(GREATEST(p, $eps), $one_minus_eps))
             WHEN ok = 1 AND y = 0 THEN -LN(LEAST(GREATEST(1 - p, $eps), $one_minus_eps)) END) AS sum_logloss,
    SUM(CASE WHEN ok = 1 AND y IS NOT NULL THEN (p - y) * (p - y) END) AS sum_sq
  FROM matched
  GROUP BY model, model_version, w
)"""


class QualityRow(NamedTuple):
    """Per group: rows, valid, labeled and invalid-label counts, positives, sums and twice the AUC's U."""

    model: Any
    model_version: Any
    w: Any
    n: Any
    n_valid: Any
    n_labeled: Any
    n_bad_label: Any
    n_pos: Any
    sum_p: Any
    sum_logloss: Any
    sum_sq: Any
    auc2: Any


_RANKED = """
ranked AS (
  SELECT {keys}, y,
    RANK() OVER (PARTITION BY {keys} ORDER BY p NULLS FIRST) AS r,
    ROUND(CUME_DIST() OVER (PARTITION BY {keys} ORDER BY p NULLS FIRST)
          * COUNT(*) OVER (PARTITION BY {keys})) AS le
  FROM {source}
  WHERE ok = 1 AND y IS NOT NULL
),
pairs AS (
  SELECT {keys}, SUM(CASE WHEN y = 1 THEN r + le ELSE 0 END) AS rank_sum2
  FROM ranked
  GROUP BY {keys}
)"""

_GROUP = "model, model_version, w"
_QUALITY_SELECT = """
SELECT s.model, s.model_version, s.w, s.n, s.n_valid, s.n_labeled, s.n_bad_label, s.n_pos,
       s.sum_p, s.sum_logloss, s.sum_sq, CAST(a.rank_sum2 - s.n_pos * (s.n_pos + 1) AS BIGINT) AS auc2{segment}
FROM {stats} AS s
LEFT JOIN {pairs} AS a ON s.model = a.model AND s.model_version = a.model_version AND s.w = a.w{on}
"""

_QUALITY = Statement(
    "quality",
    QualityRow,
    f"WITH {PREDICTIONS_CTE},{_LABELS_CTE},{_MATCHED_CTE},{_STATS_CTE},"
    + _RANKED.format(keys=_GROUP, source="matched")
    + _QUALITY_SELECT.format(segment="", stats="stats", pairs="pairs", on="")
    + "ORDER BY s.model, s.model_version, s.w",
)


class SegmentedQualityRow(NamedTuple):
    """A row of the quality statement with segments: :class:`QualityRow`, then the segment column's index in
    ``segment_by`` and the value (both NULL on the unsegmented rows)."""

    model: Any
    model_version: Any
    w: Any
    n: Any
    n_valid: Any
    n_labeled: Any
    n_bad_label: Any
    n_pos: Any
    sum_p: Any
    sum_logloss: Any
    sum_sq: Any
    auc2: Any
    sc: Any
    sv: Any


_SEGMENT_KEYS = "model, model_version, w, sc, sv"


@functools.lru_cache(maxsize=32)
def _segmented(indexes: tuple[int, ...]) -> Statement[SegmentedQualityRow]:
    """The quality statement with the segment columns at ``indexes`` (in ``segment_by``; those some model has
    a choice for): the matched predictions repeated once per segment column, with the same sums and the AUC's
    ranks per slice."""
    seg_stats = (_STATS_CTE.replace("stats AS", "seg_stats AS", 1).replace("FROM matched", "FROM segs")
                 .replace(f"SELECT {_GROUP},", f"SELECT {_SEGMENT_KEYS},").replace(f"GROUP BY {_GROUP}",
                                                                                   f"GROUP BY {_SEGMENT_KEYS}"))
    seg_ranked = (_RANKED.format(keys=_SEGMENT_KEYS, source="segs").replace("ranked AS", "seg_ranked AS")
                  .replace("FROM ranked", "FROM seg_ranked").replace("pairs AS", "seg_pairs AS"))
    unsegmented = _QUALITY_SELECT.format(segment=", CAST(NULL AS INTEGER) AS sc, CAST(NULL AS VARCHAR) AS sv",
                                         stats="stats", pairs="pairs", on="")
    segmented = _QUALITY_SELECT.format(segment=", s.sc, s.sv", stats="seg_stats", pairs="seg_pairs",
                                       on=" AND s.sc = a.sc AND s.sv = a.sv")
    sql = (f"WITH {predictions_cte('preds', request_id=True, segments=indexes)},{_LABELS_CTE},"
           f"{_matched_cte(indexes)},{_STATS_CTE}," + _RANKED.format(keys=_GROUP, source="matched") + f""",
segs AS (
  {unpivot("matched", "model, model_version, w, p, ok, y, label_rows", indexes)}
),{seg_stats},{seg_ranked}
""" + unsegmented + "UNION ALL" + segmented + "ORDER BY model, model_version, w")
    return Statement("quality with segments", SegmentedQualityRow, sql)


# the quality statement's counts and sums without the AUC's ranking: what `mlmon check` looks at
class LabelBalanceRow(NamedTuple):
    """Per group: the quality statement's labeled count, positives and sums."""

    model: Any
    model_version: Any
    w: Any
    n_labeled: Any
    n_pos: Any
    sum_p: Any
    sum_logloss: Any


_LABEL_BALANCE = Statement(
    "label balance",
    LabelBalanceRow,
    f"""
WITH {PREDICTIONS_CTE},{_LABELS_CTE},{_MATCHED_CTE},{_STATS_CTE}
SELECT model, model_version, w, n_labeled, n_pos, sum_p, sum_logloss
FROM stats
ORDER BY model, model_version, w
"""
)


class OfflineRow(NamedTuple):
    """The latest training run of one (model, version): its validation log loss and AUC."""

    model: Any
    model_version: Any
    valid_logloss: Any
    valid_auc: Any


_OFFLINE = Statement(
    "offline metrics",
    OfflineRow,
    """
WITH runs AS (
  SELECT src.model AS model, COALESCE(CAST(src.model_version AS VARCHAR), '') AS model_version,
    src.valid_logloss AS valid_logloss, src.valid_auc AS valid_auc,
    ROW_NUMBER() OVER (PARTITION BY src.model, src.model_version ORDER BY src.trained_at DESC) AS rn
  FROM __source__ AS src
  WHERE src.model IS NOT NULL
)
SELECT model, model_version, valid_logloss, valid_auc FROM runs WHERE rn = 1 ORDER BY model, model_version
"""
)


def build_quality_query(
    instance: Instance, include: Sequence[str] = (), exclude: Sequence[str] = (), segments: SegmentPlan | None = None,
) -> exp.Expression:
    """Predictions LEFT JOIN labels, per (model, version, window) and, with ``segments``, per segment group;
    optional model filters."""
    indexes = tuple(segments.active()) if segments is not None else ()
    if not indexes:
        return bind_joined(_QUALITY, instance, "labels", include, exclude)
    assert segments is not None
    query = bind_segments(_segmented(indexes).template.copy(), segments, indexes)
    return bind_joined(query, instance, "labels", include, exclude, segments.columns)


def build_label_balance_query(
    instance: Instance, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> exp.Expression:
    """The quality statement's labeled count, positives and sums per (model, version, window), no AUC."""
    return bind_joined(_LABEL_BALANCE, instance, "labels", include, exclude)


def build_offline_query(instance: Instance, models: Sequence[str], versions: Sequence[str]) -> exp.Expression:
    """The latest ``training_runs`` row of each of ``versions`` of ``models``."""
    query = model_filter(_OFFLINE.template.copy(), "runs", models, ())
    runs = cte_select(query, "runs")
    runs.where(in_list(exp.column("model_version", table="src"), versions, "version"), copy=False)
    return bind_tables(query, sources(instance, "training_runs"))


def _quality_params(
    instance: Instance, start: float, end: float, width: float, label_delay: float,
    include: Sequence[str], exclude: Sequence[str],
) -> dict[str, Any]:
    skew = instance.jobs.quality.label_skew
    params = {
        **window_params(start, end, width), **model_params(include, exclude),
        "label_start": ts_param(start - skew), "label_end": ts_param(end + label_delay),
        "label_delay": float(label_delay), "label_skew": float(skew),
        "eps": LOGLOSS_EPS, "one_minus_eps": 1.0 - LOGLOSS_EPS,
        "missing_negative": int(instance.jobs.quality.missing_label == "negative"),
    }
    return joined_params(instance, "labels", params)


def fetch_quality(
    engine: Engine, instance: Instance, start: float, end: float, width: float, label_delay: float,
    include: Sequence[str] = (), exclude: Sequence[str] = (), segments: SegmentPlan | None = None,
) -> JoinedResult:
    """One :class:`QualityAggregate` per (model, version, window) of ``[start, end)`` (and per segment group of
    ``segments``).

    A prediction without a counted label row is unlabeled, or a negative with the instance's
    ``jobs -> quality -> missing_label: negative``.
    """
    params = {**_quality_params(instance, start, end, width, label_delay, include, exclude),
              **segment_params(segments)}
    rows = engine.fetch(build_quality_query(instance, include, exclude, segments), params)
    segmented = segments is not None and bool(segments.active())
    result = JoinedResult({}, len(rows))
    read: Iterable[Any] = (SegmentedQualityRow._make(r) for r in rows) if segmented else _QUALITY.rows(rows)
    for row in read:
        agg = QualityAggregate(
            count=as_int(row.n), valid_count=as_int(row.n_valid), labeled_count=as_int(row.n_labeled),
            invalid_label_count=as_int(row.n_bad_label), positives=as_int(row.n_pos),
            sum_prediction=as_float(row.sum_p),
            sum_logloss=as_float(row.sum_logloss), sum_squared_error=as_float(row.sum_sq), auc_pairs2=as_int(row.auc2),
        )
        if segmented and row.sc is not None:
            assert segments is not None
            result.segments[SegmentKey(str(row.model), str(row.model_version), int(row.w),
                                       segments.columns[int(row.sc)], str(row.sv))] = agg
        else:
            result.groups[group_key(row)] = agg
    return result


def fetch_label_balance(
    engine: Engine, instance: Instance, start: float, end: float, width: float, label_delay: float,
    include: Sequence[str] = (), exclude: Sequence[str] = (),
) -> JoinedResult:
    """One :class:`LabelBalance` per (model, version, window) of ``[start, end)``, by the quality rules."""
    params = _quality_params(instance, start, end, width, label_delay, include, exclude)
    rows = engine.fetch(build_label_balance_query(instance, include, exclude), params)
    groups: dict[GroupKey, Any] = {
        group_key(row): LabelBalance(as_int(row.n_labeled), as_int(row.n_pos), as_float(row.sum_p),
                                     as_float(row.sum_logloss))
        for row in _LABEL_BALANCE.rows(rows)
    }
    return JoinedResult(groups, len(rows))


def fetch_offline_metrics(
    engine: Engine, instance: Instance, pairs: Sequence[tuple[str, str]]
) -> tuple[dict[tuple[str, str], OfflineMetrics], int]:
    """``(model, version) -> OfflineMetrics`` for the trained versions among ``pairs``."""
    models = sorted({m for m, _ in pairs})
    versions = sorted({v for _, v in pairs})
    if not pairs:
        return {}, 0
    params = {**model_params(models, ()), **{f"version_{i}": v for i, v in enumerate(versions)}}
    rows = engine.fetch(build_offline_query(instance, models, versions), params)

    def finite(x: Any) -> float | None:
        return float(x) if x is not None and math.isfinite(float(x)) else None

    return {
        (str(row.model), str(row.model_version)): OfflineMetrics(finite(row.valid_logloss), finite(row.valid_auc))
        for row in _OFFLINE.rows(rows)
    }, len(rows)
