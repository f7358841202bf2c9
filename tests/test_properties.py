"""Property-based tests: random predictions, labels, NaN/inf/out-of-range values, heavy ties and empty
groups never crash the metric path and always agree with the references in ``tests.reference``.

Two layers are exercised:

* the real path: rows written to a DuckDB file, the warehouse statements run through
  :func:`mlmon.warehouse.engines.open_engine`, the aggregates turned into metrics by the pure functions;
* the pure functions alone on the in-memory aggregates (``*.from_values``), with more examples.

The expected numbers always come from ``tests.reference`` (NumPy / SciPy / scikit-learn), never from
mlmon; where the reference is undefined (no valid row, one class, nothing checked) the metric must be
absent.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.helpers import DuckDBWarehouse, utc
from tests.reference import (
    ks_on_grid,
    label_of,
    online_quality_reference,
    prediction_stats,
    psi_on_grid,
    reproducibility_reference,
    valid,
)
from tests.scenarios import LABEL_COLUMNS, PREDICTION_COLUMNS, REPLAY_COLUMNS
from tests.tables import write_table
from tests.test_training import TOP_K, metric_dict, ref_categorical, ref_numeric

from mlmon.config import Instance, parse_config
from mlmon.metrics.descriptive import PredictionAggregate, PredictionStats, describe
from mlmon.metrics.drift import ks_statistic, psi
from mlmon.metrics.histogram import ScoreHistogram
from mlmon.metrics.quality import OfflineMetrics, QualityAggregate, online_quality
from mlmon.metrics.reproducibility import ReproducibilityAggregate, reproducibility
from mlmon.warehouse.engines import Engine, open_engine
from mlmon.warehouse.predictions import GroupKey, fetch_prediction_aggregates
from mlmon.warehouse.quality import fetch_quality
from mlmon.warehouse.reproducibility import fetch_reproducibility, replays_have_ts

# database=None: no example database (a failing example is printed in full); deadline=None: DuckDB timings vary.
PURE = settings(max_examples=100, deadline=None, database=None)
PANDAS = settings(max_examples=60, deadline=None, database=None)  # the pandas references are slow
ENGINE = settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NAN, INF = float("nan"), float("inf")
WIDTH = 600.0
DAY = 86400.0
HOUR = 3600.0  # label_skew's default
T0 = 1_800_000_000.0  # a window boundary
W0 = int(T0 // WIDTH)
DAY_WINDOWS = int(DAY // WIDTH)

# values with exact ties and edge cases: 0, 1, -0.0, the smallest subnormal, the float just below 1
TIE_VALUES = (0.0, 1.0, -0.0, 0.5, 0.1, 0.25, 0.3, 1e-12, 1 - 1e-12, 5e-324, 0.9999999999999999)
# NULL, NaN, ±inf and values just outside [0, 1]
INVALID_VALUES = (None, NAN, INF, -INF, -0.5, -1e-300, 1.5, 1.0000000000000002, 1e300)
PROBABILITY = st.floats(0.0, 1.0)
VALUE = st.one_of(
    st.sampled_from(TIE_VALUES),
    PROBABILITY,
    st.sampled_from(INVALID_VALUES),
    st.floats(allow_nan=True, allow_infinity=True),
)


def lists(elements: st.SearchStrategy[Any], max_size: int) -> st.SearchStrategy[list[Any]]:
    """Lists that are mostly fairly long, sometimes tiny (0 to 3 items): Hypothesis's own lists average
    about 5 items, too few for two-class windows with tied scores or for quantiles between order statistics."""
    long = st.lists(elements, min_size=max_size // 3, max_size=max_size)
    return st.one_of(long, long, st.lists(elements, max_size=3))


# the values of a window's tie pool: mostly valid, so that tied valid scores are common
POOL_VALUE = st.one_of(st.sampled_from(TIE_VALUES), st.sampled_from(TIE_VALUES), PROBABILITY, VALUE)


@st.composite
def window_values(draw: st.DrawFn, max_size: int = 40) -> list[float | None]:
    """One window's predictions: mostly drawn from a tiny pool (heavy ties), the rest from anything."""
    pool = st.sampled_from(draw(st.lists(POOL_VALUE, min_size=1, max_size=4)))
    return draw(lists(st.one_of(pool, pool, VALUE), max_size))


def assert_agrees(got: Mapping[str, float], want: Mapping[str, float], rel: float, abs_: float, where: Any) -> None:
    """Same metric names (undefined ones absent on both sides) and the same values."""
    assert got.keys() == want.keys(), where
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=rel, abs=abs_), (where, name, got[name], value)


def stats_values(s: PredictionStats) -> dict[str, float]:
    """The defined statistics under :func:`tests.reference.prediction_stats`'s names."""
    out: dict[str, float] = {"count": s.count, "invalid_count": s.invalid_count, **s.quantiles}
    for name, value in (("mean", s.mean), ("stddev", s.stddev), ("min", s.minimum), ("max", s.maximum),
                        ("same_value_ratio", s.same_value_ratio)):
        if value is not None:
            out[name] = value
    return out


@contextmanager
def duckdb_engine(tables: Mapping[str, tuple[Sequence[tuple[str, str]], Sequence[Sequence[Any]]]]
                  ) -> Iterator[tuple[Engine, Instance]]:
    """A fresh DuckDB file holding ``tables`` (name -> (columns, rows)), opened like the agent opens it."""
    with tempfile.TemporaryDirectory() as directory:
        warehouse = DuckDBWarehouse(Path(directory) / "warehouse.duckdb")
        for name, (columns, rows) in tables.items():
            write_table(warehouse, name, columns, rows)
        instance = parse_config({"instances": [{"name": "props", "warehouse": warehouse.config()}]}).instances[0]
        engine = open_engine(instance.warehouse)
        try:
            yield engine, instance
        finally:
            engine.close()


def as_floats(values: Sequence[float | None]) -> list[float]:
    """NULL as NaN, for references that take floats only."""
    return [NAN if v is None else v for v in values]


def key(model: str, version: str | None, window: int) -> GroupKey:
    """The group of ``model``'s ``version`` (NULL reads as '') in window ``window`` counted from T0."""
    return GroupKey(model, version or "", W0 + window)


# Each engine example holds up to MODELS independent models (own tie pool, labels, versions), so that
# one DuckDB round trip checks several windows of different shapes.
MODELS = 4


# --------------------------------------------------------------------------------------------------
# Descriptive statistics and drift


# Bin counts whose edges NumPy's reference computes exactly. For others (e.g. 14, 20) the reference is off:
# ``np.quantile(..., method="inverted_cdf")`` forms the rank as ``n * q`` in floating point, and when
# ``n * k / bins`` is an integer that product can round up (42 * (9 / 14) == 27.000000000000004), so it
# picks the next order statistic; mlmon's psi_edges (cumulative share >= k / bins) is exact there.
PSI_BIN_COUNTS = st.sampled_from([2, 3, 4, 5, 10])


@PURE
@given(values=window_values(60))
def test_describe_matches_numpy(values: list[float | None]) -> None:
    """Every statistic equals NumPy's on the valid rows (ties, NaN, inf, NULL, out of range, empty)."""
    got = stats_values(describe(PredictionAggregate.from_values(np.asarray(values, dtype=float))))
    assert_agrees(got, prediction_stats(values), rel=1e-12, abs_=1e-15, where=values)


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")  # p-value only
@PURE
@given(reference=window_values(120), current=window_values(120), bins=PSI_BIN_COUNTS)
def test_psi_and_ks_match_reference(reference: list[float | None], current: list[float | None], bins: int) -> None:
    """PSI equals the NumPy histogram PSI, KS SciPy's ks_2samp on the grid; None when a side has no valid row."""
    ref_h = ScoreHistogram.from_values(np.asarray(reference, dtype=float))
    cur_h = ScoreHistogram.from_values(np.asarray(current, dtype=float))
    if valid(reference).size == 0 or valid(current).size == 0:
        assert psi(ref_h, cur_h, bins) is None and ks_statistic(ref_h, cur_h) is None
        return
    assert psi(ref_h, cur_h, bins) == pytest.approx(psi_on_grid(reference, current, bins), rel=1e-12, abs=1e-12)
    assert ks_statistic(ref_h, cur_h) == pytest.approx(ks_on_grid(reference, current), rel=1e-12, abs=1e-15)


@st.composite
def model_windows(draw: st.DrawFn) -> tuple[str | None, list[tuple[list[float | None], list[float | None]]]]:
    """(version, [(current window values, values of the window a day earlier)]) for up to 3 windows."""
    version = draw(st.sampled_from(["v1", None]))
    return version, draw(st.lists(st.tuples(window_values(30), window_values(30)), min_size=1, max_size=3))


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")  # p-value only
@ENGINE
@given(models=st.lists(model_windows(), min_size=1, max_size=MODELS))
def test_predictions_statement_matches_numpy(
    models: list[tuple[str | None, list[tuple[list[float | None], list[float | None]]]]]
) -> None:
    """Through DuckDB: per-window stats as NumPy, drift vs the day-earlier window as the references;
    windows without rows return no group, rows outside the range or without a model are ignored."""
    rows: list[tuple[Any, ...]] = []
    expected: dict[GroupKey, list[float | None]] = {}
    for m, (version, windows) in enumerate(models):
        for i, (current, reference) in enumerate(windows):
            for offset, window, values in ((0.0, i, current), (-DAY, i - DAY_WINDOWS, reference)):
                for j, value in enumerate(values):
                    ts = T0 + offset + i * WIDTH + (j * 37) % WIDTH
                    rows.append((f"m{m}-{window}-{j}", utc(ts), f"m{m}", version, value))
                if values:
                    expected[key(f"m{m}", version, window)] = values
    rows += [
        ("at-end", utc(T0 + 3 * WIDTH), "m0", "v1", 0.5),  # [start, end): excluded
        ("ref-at-end", utc(T0 - DAY + 3 * WIDTH), "m0", "v1", 0.5),
        ("no-model", utc(T0), None, "v1", 0.5),
    ]
    with duckdb_engine({"predictions": (PREDICTION_COLUMNS, rows)}) as (engine, instance):
        result = fetch_prediction_aggregates(engine, instance, T0, T0 + 3 * WIDTH, T0 - DAY, T0 - DAY + 3 * WIDTH,
                                             WIDTH)
    assert result.groups.keys() == expected.keys()
    for k, values in expected.items():
        assert_agrees(stats_values(describe(result.groups[k])), prediction_stats(values), rel=1e-9, abs_=1e-12,
                      where=(k, values))
    empty = PredictionAggregate(0, 0, None, None, None, None, 0)
    for m, (version, windows) in enumerate(models):
        for i, (current, reference) in enumerate(windows):
            cur_h = result.groups.get(key(f"m{m}", version, i), empty).histogram
            ref_h = result.groups.get(key(f"m{m}", version, i - DAY_WINDOWS), empty).histogram
            if valid(reference).size == 0 or valid(current).size == 0:
                assert psi(ref_h, cur_h) is None and ks_statistic(ref_h, cur_h) is None
                continue
            assert psi(ref_h, cur_h) == pytest.approx(psi_on_grid(reference, current), rel=1e-12, abs=1e-12)
            assert ks_statistic(ref_h, cur_h) == pytest.approx(ks_on_grid(reference, current), rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------------------------------------
# Online quality

# label pools: one class only, both, and with unlabeled / invalid labels
FLOAT_LABEL_POOLS = st.sampled_from([(0.0,), (1.0,), (0.0, 1.0), (0.0, 1.0, NAN), (0.0, 1.0, NAN, 2.0, -1.0), (NAN,)])
OFFLINE = st.one_of(st.none(), st.tuples(st.floats(0.01, 5.0), st.floats(0.0, 1.0)))


@st.composite
def labeled_window(draw: st.DrawFn, max_size: int = 40) -> tuple[list[float | None], list[float]]:
    predictions = draw(window_values(max_size))
    pool = draw(FLOAT_LABEL_POOLS)
    labels = draw(st.lists(st.sampled_from(pool), min_size=len(predictions), max_size=len(predictions)))
    return predictions, labels


def reference_labels(labels: Sequence[float]) -> list[float | str | None]:
    """NaN = no label, 0/1 = the label, anything else an invalid label (tests.reference's encoding)."""
    return [None if math.isnan(v) else (float(v) if v in (0.0, 1.0) else "invalid") for v in labels]


@PURE
@given(window=labeled_window(), offline=OFFLINE)
def test_online_quality_matches_sklearn(
    window: tuple[list[float | None], list[float]], offline: tuple[float, float] | None
) -> None:
    """logloss, AUC (ties), Brier, calibration, NE, positive rate as scikit-learn/SciPy; AUC, calibration
    and NE absent for one class; only counts (and coverage) without labels."""
    predictions, labels = window
    agg = QualityAggregate.from_values(np.asarray(predictions, dtype=float), labels)
    got = online_quality(agg, OfflineMetrics(*offline) if offline else None).values()
    want = online_quality_reference(predictions, reference_labels(labels), offline)
    assert_agrees(got, want, rel=1e-9, abs_=1e-12, where=window)


# label offsets from a window's cutoff (window end + label delay); None = undated label row
# a label row's time: None (undated, never counted) or (anchor, offset) from its request's cutoff (window end
# + label_delay, excluded) or its earliest counted instant (window start - label_skew, included)
LabelRow = tuple[Any, tuple[str, float] | None]
MATURED_TIMES = (("cutoff", -1.0), ("since", 0.0), ("since", 1.0))
LABEL_TIMES = (*MATURED_TIMES, None, ("cutoff", -DAY), ("cutoff", 0.0), ("cutoff", 1.0), ("since", -1.0))
INT_LABEL_POOLS = st.sampled_from([(0,), (1,), (0, 1), (0, 1), (0, 1), (0, 1, None, 2, -1)])


@st.composite
def labeled_requests(draw: st.DrawFn) -> list[tuple[int, str | None, float | None, list[LabelRow]]]:
    """Requests (window, version, prediction, [(label, label-time offset)]) over three windows; mostly
    one matured label row on a tied score (two-class windows with ties), else none, several or late rows."""
    pool = st.sampled_from(draw(st.lists(POOL_VALUE, min_size=1, max_size=3)))
    prediction = st.one_of(pool, pool, pool, VALUE)
    label = st.sampled_from(draw(INT_LABEL_POOLS))
    one_matured = st.tuples(label, st.sampled_from(MATURED_TIMES)).map(lambda row: [row])
    any_rows = st.lists(st.tuples(label, st.sampled_from(LABEL_TIMES)), max_size=3)
    label_rows = st.one_of(one_matured, one_matured, any_rows)
    versions = st.sampled_from(draw(st.sampled_from([("v1",), (None,), ("v1", "v2")])))
    request = st.tuples(st.sampled_from([0, 0, 1, 2]), versions, prediction, label_rows)
    return draw(lists(request, 40))


@ENGINE
@given(models=st.lists(labeled_requests(), min_size=1, max_size=MODELS), label_delay=st.sampled_from([0.0, 3600.0]),
       offline=OFFLINE)
# always: a positive and a negative tied on each of two scores, a label row exactly at the cutoff and one
# just before the earliest counted instant (neither counted), one exactly at it (counted) and undated rows
@example(models=[[(0, "v1", 0.5, [(1, ("since", 0.0))]), (0, "v1", 0.5, [(0, ("cutoff", -1.0))]),
                  (0, "v1", 0.2, [(0, ("since", 0.0))]), (0, "v1", 0.2, [(1, ("cutoff", -1.0))]),
                  (0, "v1", 0.9, [(1, ("cutoff", 0.0))]), (0, "v1", 0.7, [(0, ("cutoff", -1.0)), (1, ("cutoff", 0.0))]),
                  (0, "v1", 0.3, [(1, ("since", -1.0)), (0, None)]), (0, "v1", 0.4, [(1, None)])]],
         label_delay=0.0, offline=None)
def test_quality_statement_matches_sklearn(
    models: list[list[tuple[int, str | None, float | None, list[LabelRow]]]],
    label_delay: float, offline: tuple[float, float] | None,
) -> None:
    """Through DuckDB: labels joined with the maturity cutoff (strictly before) and the skew bound (at or
    after), several label rows per request, invalid labels and predictions; every window as scikit-learn,
    absent where undefined."""
    predictions, labels = [], []
    windows: dict[GroupKey, list[tuple[float | None, float | str | None]]] = {}
    for m, requests in enumerate(models):
        for i, (w, version, p, label_rows) in enumerate(requests):
            rid, cutoff, since = f"m{m}-{i}", T0 + (w + 1) * WIDTH + label_delay, T0 + w * WIDTH - HOUR
            predictions.append((rid, utc(T0 + w * WIDTH + (i * 37) % WIDTH), f"m{m}", version, p))
            anchors = {"cutoff": cutoff, "since": since}
            dated = [(lab, None if at is None else anchors[at[0]] + at[1]) for lab, at in label_rows]
            labels += [(rid, lab, None if ts is None else utc(ts)) for lab, ts in dated]
            windows.setdefault(key(f"m{m}", version, w), []).append((p, label_of(dated, cutoff, since)))
    predictions += [("late", utc(T0 + 3 * WIDTH), "m0", "v1", 0.5), ("no-model", utc(T0), None, "v1", 0.5)]
    labels += [("late", 1, None), ("no-model", 0, None), ("orphan", 1, None)]
    with duckdb_engine({"predictions": (PREDICTION_COLUMNS, predictions), "labels": (LABEL_COLUMNS, labels)}) as (
        engine, instance,
    ):
        result = fetch_quality(engine, instance, T0, T0 + 3 * WIDTH, WIDTH, label_delay)
    assert result.groups.keys() == windows.keys()
    for k, rows in windows.items():
        got = online_quality(result.groups[k], OfflineMetrics(*offline) if offline else None).values()
        want = online_quality_reference([p for p, _ in rows], [lab for _, lab in rows], offline)
        assert_agrees(got, want, rel=1e-9, abs_=1e-12, where=(k, rows))


# --------------------------------------------------------------------------------------------------
# Reproducibility

# zero and powers of two often: with rtol = 0 and a dyadic online value, ``online ± atol`` is exact and lands
# on the ``<=`` boundary itself
ATOL = st.sampled_from([0.0, 0.0, 2.0**-20, 2.0**-10, 1e-9, 1e-6, 1e-4])
RTOL = st.sampled_from([0.0, 0.0, 0.0, 2.0**-10, 1e-6, 1e-4, 0.01])
DELTAS = (0.0, 1e-9, 1e-7, 1e-6, 2e-6, 1e-5, 1e-4, 1e-3, 0.05)


@st.composite
def replay_value(draw: st.DrawFn, online: float | None, atol: float, rtol: float) -> float | None:
    """A replay of ``online``: on the tolerance boundary or one ulp either side, off by a little or a
    lot, invalid, or unrelated."""
    if online is None or not math.isfinite(online):
        return draw(st.one_of(st.sampled_from(INVALID_VALUES), PROBABILITY))
    boundary = atol + rtol * abs(online)
    near = st.sampled_from([boundary, math.nextafter(boundary, INF), math.nextafter(boundary, -INF)])
    delta = draw(st.one_of(near, near, st.sampled_from(DELTAS)))
    near_online = st.just(online + draw(st.sampled_from([delta, -delta])))
    return draw(st.one_of(near_online, near_online, st.sampled_from(INVALID_VALUES), PROBABILITY))


@st.composite
def replayed_window(draw: st.DrawFn) -> tuple[float, float, list[float | None], list[list[float | None]]]:
    atol, rtol = draw(ATOL), draw(RTOL)
    online = draw(window_values(30))
    replays = [draw(st.lists(replay_value(p, atol, rtol), max_size=3)) for p in online]
    return atol, rtol, online, replays


@PURE
@given(case=replayed_window())
def test_reproducibility_matches_numpy_isclose(
    case: tuple[float, float, list[float | None], list[list[float | None]]]
) -> None:
    """Rate, checked/missing counts and differences as a numpy.isclose reference; rate absent when
    nothing was checked, differences absent when no replay is a probability."""
    atol, rtol, online, replays = case
    agg = ReproducibilityAggregate.from_values(np.asarray(online, dtype=float), replays, atol=atol, rtol=rtol)
    got = reproducibility(agg).values()
    want = reproducibility_reference(as_floats(online), replays, atol=atol, rtol=rtol)
    assert_agrees(got, want, rel=1e-12, abs_=1e-15, where=case)


#: a replay's ``ts`` (with ``replays.ts``): (anchor, offset) from its prediction's serving time, or its window's
#: start less replay_skew (the earliest counted, included) or end plus replay_skew (excluded)
REPLAY_TIMES = (("served", 0.0), ("served", 0.0), ("since", 0.0), ("since", -1.0), ("until", -1.0), ("until", 0.0))
ReplayRow = tuple[str | None, float | None, tuple[str, float]]
COUNTED_REPLAY_TIMES = {("served", 0.0), ("since", 0.0), ("until", -1.0)}


@st.composite
def replayed_request(draw: st.DrawFn, pool: Sequence[float | None], atol: float, rtol: float
                     ) -> tuple[int, str | None, float | None, list[ReplayRow]]:
    """(window, version, online, [(replay version, value, time)]): replays of the same version, another, NULL,
    served at the prediction's time, at the skew bounds and outside them."""
    w, version = draw(st.sampled_from([0, 0, 1, 2])), draw(st.sampled_from(["v1", None]))
    p = draw(st.one_of(st.sampled_from(pool), st.sampled_from(pool), VALUE))
    replay_versions = st.sampled_from([version, version, "v2", None])
    rows = st.tuples(replay_versions, replay_value(p, atol, rtol), st.sampled_from(REPLAY_TIMES))
    return w, version, p, draw(st.lists(rows, max_size=3))


@st.composite
def replayed_models(draw: st.DrawFn) -> tuple[float, float, bool, list[list[tuple[int, str | None, Any, list[Any]]]]]:
    """(atol, rtol, whether replays has ts, requests of each model) over three windows."""
    atol, rtol, timed = draw(ATOL), draw(RTOL), draw(st.booleans())
    models = []
    for _ in range(draw(st.integers(1, MODELS))):
        pool = draw(st.lists(POOL_VALUE, min_size=1, max_size=4))
        models.append(draw(lists(replayed_request(pool, atol, rtol), 30)))
    return atol, rtol, timed, models


@ENGINE
@given(case=replayed_models())
# always: replays exactly on the boundary |online - replay| == atol + rtol * |replay| (reproduced), one ulp
# beyond it (not), and an exact replay with zero tolerances (reproduced)
@example(case=(2.0**-10, 0.0, False, [[
    (0, "v1", 0.5, [("v1", 0.5 + 2.0**-10, ("since", -1.0))]),
    (0, "v1", 0.25, [("v1", 0.25 - 2.0**-10, ("served", 0.0)), ("v1", 0.25, ("until", 0.0))]),
    (0, "v1", 0.5, [("v1", math.nextafter(0.5 + 2.0**-10, INF), ("served", 0.0))]),
]]))
@example(case=(0.0, 0.0, False, [[(0, None, 0.3, [(None, 0.3, ("served", 0.0))]),
                                  (0, None, 0.3, [(None, math.nextafter(0.3, 0.0), ("served", 0.0))])]]))
# with replays.ts: replays at both skew bounds (the earliest counted, the first not counted) and one before
@example(case=(0.0, 0.0, True, [[(0, "v1", 0.3, [("v1", 0.3, ("since", 0.0)), ("v1", 0.9, ("until", 0.0))]),
                                 (1, "v1", 0.3, [("v1", 0.9, ("since", -1.0)), ("v1", 0.3, ("until", -1.0))]),
                                 (2, "v1", 0.3, [("v1", 0.3, ("since", -1.0))])]]))
def test_reproducibility_statement_matches_numpy_isclose(
    case: tuple[float, float, bool, list[list[tuple[int, str | None, Any, list[Any]]]]]
) -> None:
    """Through DuckDB: replays of the same (NULL-normalised) version only, NULL replays ignored,
    duplicates that disagree, invalid values, and with a ``ts`` column only replays served within
    replay_skew of the prediction's window; every window as the numpy.isclose reference."""
    atol, rtol, timed, models = case
    predictions, replays = [], []
    windows: dict[GroupKey, tuple[list[Any], list[list[Any]]]] = {}
    for m, requests in enumerate(models):
        for i, (w, version, p, replay_rows) in enumerate(requests):
            rid, served = f"m{m}-{i}", T0 + w * WIDTH + (i * 37) % WIDTH
            predictions.append((rid, utc(served), f"m{m}", version, p))
            anchors = {"served": served, "since": T0 + w * WIDTH - HOUR, "until": T0 + (w + 1) * WIDTH + HOUR}
            replays += [(rid, rv, value, utc(anchors[at[0]] + at[1])) for rv, value, at in replay_rows]
            online, matched = windows.setdefault(key(f"m{m}", version, w), ([], []))
            online.append(p)
            matched.append([value for rv, value, at in replay_rows
                            if (rv or "") == (version or "") and (not timed or at in COUNTED_REPLAY_TIMES)])
    predictions.append(("late", utc(T0 + 3 * WIDTH), "m0", "v1", 0.5))
    replays += [("late", "v1", 0.9, utc(T0 + 3 * WIDTH)), ("orphan", "v1", 0.5, utc(T0))]
    columns = (*REPLAY_COLUMNS, ("ts", "timestamp")) if timed else REPLAY_COLUMNS
    rows = replays if timed else [r[:3] for r in replays]
    with duckdb_engine({"predictions": (PREDICTION_COLUMNS, predictions), "replays": (columns, rows)}) as (
        engine, instance,
    ):
        assert replays_have_ts(engine, instance) == timed
        result = fetch_reproducibility(engine, instance, T0, T0 + 3 * WIDTH, WIDTH, atol, rtol)
    # only windows with at least one valid prediction come back (invalid ones are filtered before grouping)
    assert result.groups.keys() == {k for k, (online, _) in windows.items() if valid(online).size}
    for k, agg in result.groups.items():
        online, matched = windows[k]
        want = reproducibility_reference(as_floats(online), matched, atol=atol, rtol=rtol)
        assert_agrees(reproducibility(agg).values(), want, rel=1e-9, abs_=1e-12,
                      where=(k, atol, rtol, timed, online, matched))


# --------------------------------------------------------------------------------------------------
# Training feature statistics (pure functions vs the pandas references of tests/test_training.py)

NUMERIC_FEATURE_VALUE = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, None, NAN, INF, -INF]),
    # pd.cut (the reference) cannot format bin edges within ~1e-300 of 0; mlmon has no such limit
    st.floats(-1e3, 1e3).filter(lambda x: x == 0 or abs(x) >= 1e-6),
    st.integers(-5, 5),
)
CATEGORICAL_FEATURE_VALUE = st.one_of(st.sampled_from(["a", "b", "c", "d", "e", "f", None]), st.text(max_size=2))


@st.composite
def feature_values(draw: st.DrawFn, value: st.SearchStrategy[Any], max_size: int = 60) -> list[Any]:
    """One version's raw feature values, mostly from a tiny pool (ties, a stuck feature)."""
    pool = st.sampled_from(draw(st.lists(value, min_size=1, max_size=4)))
    return draw(lists(st.one_of(pool, pool, value), max_size))


@PANDAS
@given(latest=feature_values(NUMERIC_FEATURE_VALUE),
       previous=st.one_of(st.none(), feature_values(NUMERIC_FEATURE_VALUE)))
def test_numeric_feature_stats_match_pandas(latest: list[Any], previous: list[Any] | None) -> None:
    """null_ratio (NULL/NaN/inf), mean, stddev, distinct_count, same_value_ratio, psi_prev vs pandas/SciPy."""
    got, shares = metric_dict(latest, previous, categorical=False)
    assert_agrees(got, ref_numeric(latest, previous), rel=1e-9, abs_=1e-9, where=(latest, previous))
    assert shares == {}


@PANDAS
@given(latest=feature_values(CATEGORICAL_FEATURE_VALUE),
       previous=st.one_of(st.none(), feature_values(CATEGORICAL_FEATURE_VALUE)))
def test_categorical_feature_stats_match_pandas(latest: list[Any], previous: list[Any] | None) -> None:
    """Top-K shares (ties by value), __other__, distinct count and PSI over the previous top K vs pandas."""
    got, shares = metric_dict(latest, previous, categorical=True)
    want, want_shares = ref_categorical(latest, previous, TOP_K)
    assert_agrees(got, want, rel=1e-12, abs_=1e-12, where=(latest, previous))
    assert_agrees(shares, want_shares, rel=1e-12, abs_=1e-12, where=(latest, previous))
