"""mlmon assets evaluate: the shipped monitors' queries evaluated on recorded metrics (JSON Lines)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlmon.assets.evaluate import (
    Episode,
    EvaluateError,
    GroupResult,
    ShippedMonitor,
    Status,
    evaluate,
    load_monitors,
    replay,
    unsupported,
)
from mlmon.assets.queries import parse_monitor_query
from mlmon.assets.recording import Recording, RecordingError
from mlmon.assets.syntax import metrics_in
from mlmon.cli import main

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a multiple of 10 minutes
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3


def series(metric: str, points: list[tuple[float, float]], *tags: str, kind: str = "gauge") -> dict[str, Any]:
    return {"metric": metric, "type": kind, "points": [[t, v] for t, v in points], "tags": list(tags)}


def check(status: int, timestamp: float, *tags: str, name: str = "mlmon.predictions.available") -> dict[str, Any]:
    return {"check": name, "status": status, "tags": list(tags), "timestamp": timestamp, "message": ""}


def monitor(query: str, name: str = "m", kind: str = "query alert", **options: Any) -> ShippedMonitor:
    return ShippedMonitor(name, {"type": kind, "query": query, "options": options})


def one_point_per_line(metric: str, points: list[tuple[float, float]], *tags: str) -> list[dict[str, Any]]:
    """What the JSONL sink writes (one point per line), shuffled: files are not in time order."""
    lines = [series(metric, [point], *tags) for point in points]
    random.Random(7).shuffle(lines)
    return lines


def only(results: list[GroupResult]) -> GroupResult:
    assert len(results) == 1, results
    return results[0]


# --- metric monitors: windows and aggregations ---------------------------------------------------

#: two points just outside each edge of (T0 - 600, T0], extreme both ways, and three inside
WINDOW_POINTS = [(T0 - 601, -100.0), (T0 - 600, 100.0), (T0 - 599, 1.0), (T0 - 300, 5.0), (T0, 3.0),
                 (T0 + 1, 100.0), (T0 + 2, -100.0)]
NUMPY = {"avg": np.mean, "max": np.max, "min": np.min, "sum": np.sum, "last": lambda v: v[-1]}


@pytest.mark.parametrize("aggregation", sorted(NUMPY))
def test_time_aggregation_covers_exactly_the_window(aggregation) -> None:
    """avg/max/min/sum/last use the points in (at - X, at] and none just outside either edge."""
    recording = Recording.from_lines(one_point_per_line("x", WINDOW_POINTS, "model:a"))
    inside = np.array([v for t, v in sorted(WINDOW_POINTS) if T0 - 600 < t <= T0])
    result = only(evaluate([monitor(f"{aggregation}(last_10m):avg:x{{*}} by {{model}} > 1000")], recording, T0))
    assert result.value == pytest.approx(float(NUMPY[aggregation](inside)))
    assert (result.group, result.status, result.fires) == ((("model", "a"),), Status.OK, False)


@pytest.mark.parametrize("delay", [0, 300, 1200])
def test_evaluation_delay_shifts_the_window(delay) -> None:
    """With evaluation_delay D the window is (at - D - X, at - D]."""
    points = [(T0 - 60 * k, float(k)) for k in range(40)]
    recording = Recording.from_lines(one_point_per_line("x", points, "model:a"))
    inside = [v for t, v in points if T0 - delay - 600 < t <= T0 - delay]
    m = monitor("avg(last_10m):avg:x{*} by {model} > 1000", evaluation_delay=delay)
    assert only(evaluate([m], recording, T0)).value == pytest.approx(np.mean(inside))


@pytest.mark.parametrize("space", ["avg", "sum", "min", "max", "count"])
def test_space_aggregation_across_versions_at_each_timestamp(space) -> None:
    """Two versions of a model are combined per timestamp, then averaged over the window."""
    v1 = [(T0 - 400, 0.1), (T0 - 200, 0.3), (T0, 0.5)]
    v2 = [(T0 - 400, 0.7), (T0, 0.9), (T0 - 100, 0.2)]
    lines = [series("psi", v1, "model:a", "model_version:v1"), series("psi", v2, "model:a", "model_version:v2"),
             series("psi", [(T0, 50.0)], "model:b", "model_version:v1")]
    combine = {"avg": np.mean, "sum": np.sum, "min": np.min, "max": np.max, "count": len}[space]
    per_timestamp = [combine([v for t, v in v1 + v2 if t == ts]) for ts in sorted({t for t, _ in v1 + v2})]
    results = evaluate([monitor(f"avg(last_10m):{space}:psi{{*}} by {{model}} > 1000")],
                       Recording.from_lines(lines), T0)
    assert [r.group for r in results] == [(("model", "a"),), (("model", "b"),)]
    assert results[0].value == pytest.approx(np.mean(per_timestamp))


@pytest.mark.parametrize(
    ("value", "status"),
    [(-0.25, Status.ALERT), (-0.2, Status.WARN), (-0.15, Status.WARN), (-0.1, Status.OK), (0.3, Status.OK)],
    ids=["below-critical", "at-critical", "between", "at-warning", "growth"],
)
def test_less_than_with_negative_thresholds(value, status) -> None:
    """training_rows_drop_prev-style `< -0.2` (warning -0.1): strictly below each threshold."""
    recording = Recording.from_lines([series("rows_change_prev", [(T0 - 60, value)], "model:a")])
    m = monitor("max(last_2h):max:rows_change_prev{*} by {model} < -0.2", thresholds={"critical": -0.2,
                                                                                      "warning": -0.1})
    result = only(evaluate([m], recording, T0))
    assert (result.status, result.value, result.fires) == (status, value, status is Status.ALERT)
    assert (result.comparator, result.threshold) == ("<", -0.1 if status is Status.WARN else -0.2)


@pytest.mark.parametrize(
    ("value", "status"),
    [(0.25, Status.ALERT), (0.2, Status.WARN), (0.15, Status.WARN), (0.1, Status.OK)],
    ids=["above-critical", "at-critical", "between", "at-warning"],
)
def test_warning_and_critical_above(value, status) -> None:
    """`> 0.2` with warning 0.1: ALERT fires, WARN is reported but does not fire."""
    recording = Recording.from_lines([series("psi", [(T0, value)], "model:a")])
    m = monitor("avg(last_30m):avg:psi{*} by {model} > 0.2", thresholds={"critical": 0.2, "warning": 0.1})
    result = only(evaluate([m], recording, T0))
    assert (result.status, result.fires) == (status, status is Status.ALERT)


def test_greater_or_equal_includes_the_threshold() -> None:
    """`>=` alerts on a value equal to the threshold."""
    recording = Recording.from_lines([series("lag", [(T0, 3600.0)], "instance:x")])
    m = monitor("max(last_5m):max:lag{*} by {instance} >= 3600")
    assert only(evaluate([m], recording, T0)).status is Status.ALERT


def test_scope_filter_with_tag_negation_and_wildcard() -> None:
    """`{job:predictions,!model:b,team:a*}` keeps only the matching series; comma is AND."""
    lines = [
        series("lag", [(T0, 10.0)], "job:predictions", "model:a", "team:ads"),
        series("lag", [(T0, 20.0)], "job:quality", "model:a", "team:ads"),
        series("lag", [(T0, 30.0)], "job:predictions", "model:b", "team:ads"),
        series("lag", [(T0, 40.0)], "job:predictions", "model:c", "team:search"),
        series("lag", [(T0, 50.0)], "job:predictions", "model:d", "team:ads"),
    ]
    m = monitor("max(last_5m):max:lag{job:predictions,!model:b,team:a*} by {model} > 1000")
    results = evaluate([m], Recording.from_lines(lines), T0)
    assert [(r.group, r.value) for r in results] == [((("model", "a"),), 10.0), ((("model", "d"),), 50.0)]


def test_series_without_the_group_tag_is_in_group_na() -> None:
    """A series lacking a `by` tag falls in the group N/A, as in Datadog."""
    lines = [series("lag", [(T0, 1.0)], "instance:x"), series("lag", [(T0, 2.0)], "env:demo")]
    results = evaluate([monitor("max(last_5m):max:lag{*} by {instance} > 1000")], Recording.from_lines(lines), T0)
    assert [(r.group_name, r.value) for r in results] == [("instance:N/A", 2.0), ("instance:x", 1.0)]


def test_ungrouped_monitor_has_one_group() -> None:
    """Without `by` every matching series is one group, named `*`."""
    lines = [series("lag", [(T0, 1.0)], "instance:x"), series("lag", [(T0, 5.0)], "instance:y")]
    result = only(evaluate([monitor("max(last_5m):sum:lag{*} > 3")], Recording.from_lines(lines), T0))
    assert (result.group, result.group_name, result.value, result.status) == ((), "*", 6.0, Status.ALERT)


# --- arithmetic ---------------------------------------------------------------------------------


def test_ratio_of_two_metrics_at_shared_timestamps() -> None:
    """`a / b` is computed per group at the timestamps both have, then time-aggregated."""
    a = [(T0 - 400, 2.0), (T0 - 200, 6.0), (T0, 9.0)]
    b = [(T0 - 400, 4.0), (T0 - 100, 5.0), (T0, 3.0)]
    lines = [series("a", a, "model:m"), series("b", b, "model:m")]
    expected = np.mean([2.0 / 4.0, 9.0 / 3.0])
    m = monitor("avg(last_10m):avg:a{*} by {model} / avg:b{*} by {model} > 1")
    assert only(evaluate([m], Recording.from_lines(lines), T0)).value == pytest.approx(expected)


def test_numbers_and_negation_apply_to_every_group() -> None:
    """`-(a * 100) + 1` scales and shifts each group's values."""
    lines = [series("a", [(T0, 0.5)], "model:m"), series("a", [(T0, 0.25)], "model:n")]
    m = monitor("last(last_5m):-(avg:a{*} by {model} * 100) + 1 < -30")
    results = evaluate([m], Recording.from_lines(lines), T0)
    assert [(r.group_name, r.value, r.status) for r in results] == [
        ("model:m", -49.0, Status.ALERT), ("model:n", -24.0, Status.OK)]


def test_division_by_zero_leaves_no_value() -> None:
    """A non-finite result is dropped: the group is NO DATA, not infinite."""
    lines = [series("a", [(T0, 1.0)], "model:m"), series("b", [(T0, 0.0)], "model:m")]
    m = monitor("avg(last_5m):avg:a{*} by {model} / avg:b{*} by {model} > 1")
    result = only(evaluate([m], Recording.from_lines(lines), T0))
    assert (result.status, result.value) == (Status.NO_DATA, None)


# --- functions ----------------------------------------------------------------------------------

#: calibration-like values: 2x over, 1.25x over, 2x under, exactly 1, and 0 and -1 (their logs are not finite)
RATIOS = [(T0 - 500, 2.0), (T0 - 400, 1.25), (T0 - 300, 0.5), (T0 - 200, 1.0), (T0 - 100, 0.0), (T0, -1.0)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("avg(last_10m):abs(avg:c{*} by {model}) > 100", np.mean([2.0, 1.25, 0.5, 1.0, 0.0, 1.0])),
        ("max(last_10m):log2(avg:c{*} by {model}) > 100", 1.0),
        ("min(last_10m):log2(avg:c{*} by {model}) > 100", -1.0),
        ("avg(last_10m):log2(avg:c{*} by {model}) > 100", np.mean(np.log2([2.0, 1.25, 0.5, 1.0]))),
        ("avg(last_10m):log10(avg:c{*} by {model} * 100) > 100", np.mean(np.log10([200.0, 125.0, 50.0, 100.0]))),
        ("avg(last_10m):abs(log2(avg:c{*} by {model})) > 100", np.mean([1.0, np.log2(1.25), 1.0, 0.0])),
        ("last(last_10m):abs(avg:c{*} by {model} - 3) * log2(8) > 100", 12.0),
        ("avg(last_10m):abs(-log2(avg:c{*} by {model}) - 1) > 100", np.mean([2.0, 1 + np.log2(1.25), 0.0, 1.0])),
    ],
    ids=["abs", "log2-max", "log2-min", "log2-avg", "log10", "abs-log2", "of-a-number", "nested-arithmetic"],
)
def test_functions_apply_point_by_point_before_the_time_aggregation(query, expected) -> None:
    """abs(), log2() and log10() transform each point; the time aggregation then combines the results; the
    log of 0 or of a negative value is dropped (as a division by zero is)."""
    recording = Recording.from_lines(one_point_per_line("c", RATIOS, "model:a"))
    result = only(evaluate([monitor(query)], recording, T0))
    assert result.value == pytest.approx(float(expected))
    assert result.group == (("model", "a"),)


def test_calibration_band_is_two_sided() -> None:
    """`abs(log2(calibration)) > 0.585` (1.5x either way, warning 1.33x): over- and under-prediction alert
    alike, a calibrated model is OK."""
    values = {"over": 1.6, "under": 1 / 1.6, "warn": 1.4, "under_warn": 1 / 1.4, "good": 1.1, "low_good": 0.9}
    lines = [series("cal", [(T0 - 60, v)], f"segment_value:{name}") for name, v in values.items()]
    m = monitor("avg(last_6h):abs(log2(avg:cal{*} by {segment_value})) > 0.585",
                thresholds={"critical": 0.585, "warning": 0.415})
    results = {r.group_name: (r.status, round(r.value, 3)) for r in evaluate([m], Recording.from_lines(lines), T0)}
    assert results == {
        "segment_value:over": (Status.ALERT, 0.678), "segment_value:under": (Status.ALERT, 0.678),
        "segment_value:warn": (Status.WARN, 0.485), "segment_value:under_warn": (Status.WARN, 0.485),
        "segment_value:good": (Status.OK, 0.138), "segment_value:low_good": (Status.OK, 0.152)}


def test_a_function_of_nothing_finite_leaves_no_value() -> None:
    """A group whose every point has a log that is not finite is NO DATA, not -inf."""
    lines = [series("c", [(T0 - 60, 0.0)], "model:m")]
    result = only(evaluate([monitor("avg(last_5m):log2(avg:c{*} by {model}) < -1")], Recording.from_lines(lines), T0))
    assert (result.status, result.value) == (Status.NO_DATA, None)


# --- NO DATA ------------------------------------------------------------------------------------


def test_no_data_for_a_silent_group_and_nothing_for_a_group_not_yet_seen() -> None:
    """A group seen before the window but silent in it is NO DATA; one whose first point is later is absent."""
    lines = [series("psi", [(T0 - 7200, 0.5)], "model:old"), series("psi", [(T0 + 60, 0.5)], "model:new"),
             series("psi", [(T0 - 60, 0.05)], "model:live")]
    results = evaluate([monitor("avg(last_30m):avg:psi{*} by {model} > 0.2")], Recording.from_lines(lines), T0)
    assert [(r.group_name, r.status, r.value, r.fires) for r in results] == [
        ("model:live", Status.OK, 0.05, False), ("model:old", Status.NO_DATA, None, False)]


@pytest.mark.parametrize(
    ("silent_for", "options", "fires"),
    [(1200, {"no_data_timeframe": 30}, False), (1800, {"no_data_timeframe": 30}, True),
     (1199, {}, False), (1200, {}, True)],
    ids=["within-timeframe", "timeframe-elapsed", "within-default", "default-twice-the-window"],
)
def test_notify_no_data_fires_once_silent_for_no_data_timeframe(silent_for, options, fires) -> None:
    """With notify_no_data, NO DATA fires after no_data_timeframe minutes (default: twice the window)."""
    recording = Recording.from_lines([series("lag", [(T0 - silent_for, 5.0)], "instance:x")])
    m = monitor("max(last_10m):max:lag{*} by {instance} > 3600", notify_no_data=True, **options)
    result = only(evaluate([m], recording, T0))
    assert (result.status, result.fires) == (Status.NO_DATA, fires)


@pytest.mark.parametrize("delay", [None, 0, 10800])
def test_new_group_delay_holds_a_new_group_back(delay) -> None:
    """With new_group_delay D a group is reported once its first point is D old at the window's end (at less
    evaluation_delay): a new model's first, partial window (3.0 here) and the hours after it go unjudged, an older
    group is evaluated as usual. Without it (or 0) a new group is evaluated at once."""
    lines = [series("cal", [(T0 - 3600, 3.0), (T0, 1.0), (T0 + 3600, 1.0), (T0 + 7200, 1.0)], "model:new"),
             series("cal", [(T0 - 4 * 3600, 1.0), (T0 - 3600, 1.0)], "model:old")]
    options = {"evaluation_delay": 600} if delay is None else {"evaluation_delay": 600, "new_group_delay": delay}
    m = monitor("avg(last_3h):avg:cal{*} by {model} > 1.5", **options)
    recording = Recording.from_lines(lines)
    early = {r.group_name: r.status for r in evaluate([m], recording, T0 + 600)}
    if not delay:
        assert early == {"model:new": Status.ALERT, "model:old": Status.OK}
        return
    assert early == {"model:old": Status.OK}
    just_before = T0 - 3600 + delay + 600 - 1  # the first point is one second short of D old
    assert {r.group_name for r in evaluate([m], recording, just_before)} == {"model:old"}
    first = only([r for r in evaluate([m], recording, just_before + 1) if r.group_name == "model:new"])
    assert (first.status, first.value) == (Status.OK, 1.0)  # the first point has left the 3-hour window
    episodes = replay([m], recording, T0, T0 + 4 * 3600, 600)
    assert [e.group_name for e in episodes] == []


def test_new_group_delay_holds_a_new_service_check_group_back() -> None:
    """A service check group is reported once ``at`` is new_group_delay after its first run."""
    lines = [check(CRITICAL, T0 - 600, "model:a"), check(CRITICAL, T0, "model:a")]
    m = monitor(CHECK_QUERY, kind="service check", thresholds={"critical": 2}, new_group_delay=1200)
    recording = Recording.from_lines(lines)
    assert evaluate([m], recording, T0) == []
    assert only(evaluate([m], recording, T0 + 600)).status is Status.ALERT


def test_no_data_does_not_fire_without_notify_no_data() -> None:
    """A long-silent group stays a non-firing NO DATA when notify_no_data is false."""
    recording = Recording.from_lines([series("lag", [(T0 - 86400, 5.0)], "instance:x")])
    m = monitor("max(last_10m):max:lag{*} by {instance} > 3600", notify_no_data=False, no_data_timeframe=10)
    assert only(evaluate([m], recording, T0)).fires is False


# --- change alerts -------------------------------------------------------------------------------

HOUR = 3600.0
#: the current 5-minute window (T0 - 300, T0] at 60 s steps, and the same times one hour earlier
NOW_TIMES = [T0 - 240, T0 - 180, T0 - 120, T0 - 60, T0]
PAST_TIMES = [t - HOUR for t in NOW_TIMES]


def changing(metric: str, past: list[float], now: list[float], *tags: str) -> list[dict[str, Any]]:
    """A group's points one hour ago and now, plus points just outside both windows' edges (at T0 - 300
    and T0 + 60, and an hour before each) that change by 1000 and must not count."""
    edges = [(T0 - 300 - HOUR, 0.0), (T0 - 300, 1000.0), (T0 + 60 - HOUR, 0.0), (T0 + 60, 1000.0)]
    points = [*zip(PAST_TIMES, past, strict=True), *zip(NOW_TIMES, now, strict=True), *edges]
    return one_point_per_line(metric, points, *tags)


#: per model: (values an hour ago, values now) over the 5 windows' points
CHANGING = {"a": ([2.0] * 5, [3.0] * 5), "b": ([4.0] * 5, [1.0] * 5), "c": ([5.0] * 5, [5.0] * 5)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("change(avg(last_5m),last_1h):avg:x{*} by {model} > 0.5",
         {"model:a": (1.0, Status.ALERT), "model:b": (-3.0, Status.OK), "model:c": (0.0, Status.OK)}),
        ("pct_change(avg(last_5m),last_1h):avg:x{*} by {model} > 25",
         {"model:a": (50.0, Status.ALERT), "model:b": (-75.0, Status.OK), "model:c": (0.0, Status.OK)}),
        ("change(avg(last_5m),last_1h):avg:x{*} by {model} < -2",
         {"model:a": (1.0, Status.OK), "model:b": (-3.0, Status.ALERT), "model:c": (0.0, Status.OK)}),
        ("pct_change(avg(last_5m),last_1h):avg:x{*} by {model} <= -75",
         {"model:a": (50.0, Status.OK), "model:b": (-75.0, Status.ALERT), "model:c": (0.0, Status.OK)}),
    ],
    ids=["change-rise", "pct_change-rise", "change-drop", "pct_change-drop-at-threshold"],
)
def test_change_and_pct_change_per_group(query, expected) -> None:
    """change = now - an hour ago, pct_change = (now - then) / then * 100, signed, per group, over exactly
    the window (T0 - 5m, T0] and the one an hour before; `>` catches rises, `<`/`<=` drops."""
    lines = [line for model, (past, now) in CHANGING.items() for line in changing("x", past, now, f"model:{model}")]
    results = evaluate([monitor(query)], Recording.from_lines(lines), T0)
    assert {r.group_name: (r.value, r.status) for r in results} == expected
    assert all(r.fires is (r.status is Status.ALERT) for r in results)


def test_pct_change_is_per_point_then_aggregated() -> None:
    """Datadog computes the change series point by point, then the time aggregation: past (1, 4), now
    (2, 4) is avg(+100 %, 0 %) = 50 %, not the change of the averages (3 - 2.5) / 2.5 = 20 %; the
    absolute change agrees either way (avg(1, 0) = 0.5)."""
    points = [(T0 - 60 - HOUR, 1.0), (T0 - HOUR, 4.0), (T0 - 60, 2.0), (T0, 4.0)]
    recording = Recording.from_lines(one_point_per_line("x", points, "model:a"))
    pct = only(evaluate([monitor("pct_change(avg(last_5m),1h_ago):avg:x{*} by {model} > 1000")], recording, T0))
    change = only(evaluate([monitor("change(avg(last_5m),1h_ago):avg:x{*} by {model} > 1000")], recording, T0))
    assert (pct.value, change.value) == (50.0, 0.5)


@pytest.mark.parametrize(
    ("aggregation", "expected"), [("avg", 2.0), ("sum", 6.0), ("min", -1.0), ("max", 4.0)])
def test_change_time_aggregations(aggregation, expected) -> None:
    """avg, sum, min and max combine the per-point changes (+3, -1, +4) over the window."""
    points = [(T0 - 120 - HOUR, 1.0), (T0 - 60 - HOUR, 5.0), (T0 - HOUR, 0.0),
              (T0 - 120, 4.0), (T0 - 60, 4.0), (T0, 4.0)]
    recording = Recording.from_lines(one_point_per_line("x", points, "model:a"))
    m = monitor(f"change({aggregation}(last_5m),last_1h):avg:x{{*}} by {{model}} > 1000")
    assert only(evaluate([m], recording, T0)).value == expected


def test_change_of_a_group_without_past_data_is_no_data() -> None:
    """A group with points now but none an hour earlier has no change: NO DATA (not firing: it reports);
    one that stopped an hour ago is NO DATA too and, with notify_no_data, fires (silent >= 2 x 5m); one
    whose first point is after `at` is not reported."""
    lines = [*changing("x", *CHANGING["a"], "model:a"),
             *one_point_per_line("x", list(zip(NOW_TIMES, [3.0] * 5, strict=True)), "model:new"),
             *one_point_per_line("x", list(zip(PAST_TIMES, [3.0] * 5, strict=True)), "model:gone"),
             series("x", [(T0 + 600, 1.0)], "model:later")]
    m = monitor("change(avg(last_5m),last_1h):avg:x{*} by {model} > 0.5", notify_no_data=True)
    results = evaluate([m], Recording.from_lines(lines), T0)
    assert [(r.group_name, r.status, r.value, r.fires) for r in results] == [
        ("model:a", Status.ALERT, 1.0, True), ("model:gone", Status.NO_DATA, None, True),
        ("model:new", Status.NO_DATA, None, False)]


@pytest.mark.parametrize(
    ("past", "expected"), [([0.0, 0.0, 2.0, 2.0, 2.0], 50.0), ([0.0] * 5, None)],
    ids=["some-zero", "all-zero"])
def test_pct_change_from_zero_has_no_value(past, expected) -> None:
    """A past value of 0 leaves that point without a percentage (as a division by zero); if every past
    value is 0 the group is NO DATA. The absolute change is unaffected."""
    now = [5.0, 5.0, 3.0, 3.0, 3.0]
    recording = Recording.from_lines(changing("x", past, now, "model:a"))
    pct = only(evaluate([monitor("pct_change(avg(last_5m),last_1h):avg:x{*} by {model} > 10")], recording, T0))
    assert (pct.value, pct.status) == (expected, Status.ALERT if expected else Status.NO_DATA)
    change = only(evaluate([monitor("change(avg(last_5m),last_1h):avg:x{*} by {model} > 10")], recording, T0))
    assert change.value == pytest.approx(np.mean(np.subtract(now, past)))


@pytest.mark.parametrize("delay", [0, 300, 900, 3600])
def test_evaluation_delay_shifts_both_change_windows(delay) -> None:
    """With evaluation_delay D the change compares (T0 - D - 5m, T0 - D] with the same window an hour
    earlier. x(t) = k^2 at minute k, so each minute's change, and thus the average, depends on D."""
    value = {T0 - 60 * k: float((300 - k) ** 2) for k in range(300)}
    recording = Recording.from_lines(one_point_per_line("x", sorted(value.items()), "model:a"))
    end = T0 - delay
    expected = np.mean([value[t] - value[t - HOUR] for t in value if end - 300 < t <= end])
    m = monitor("change(avg(last_5m),last_1h):avg:x{*} by {model} > 1e9", evaluation_delay=delay)
    assert only(evaluate([m], recording, T0)).value == pytest.approx(expected)


@pytest.mark.parametrize(
    ("shift", "expected"),
    [("last_1h", 60.0), ("1h_ago", 60.0), ("60m_ago", 60.0), ("last_60m", 60.0), ("30m_ago", 30.0),
     ("last_1d", 1440.0), ("1d_ago", 1440.0)],
)
def test_both_shift_spellings_look_back_the_same(shift, expected) -> None:
    """`1h_ago` and `last_1h` both mean one hour back (the shift, not a window); x counts minutes, so the
    change is the shift in minutes."""
    points = [(T0 - 60 * k, float(-k)) for k in range(1500)]
    recording = Recording.from_lines([series("x", points, "model:a")])
    m = monitor(f"change(avg(last_5m),{shift}):avg:x{{*}} by {{model}} > 1e9")
    assert only(evaluate([m], recording, T0)).value == expected


@pytest.mark.parametrize(
    ("now", "pct", "status"),
    [(32.0, -50.0, Status.ALERT), (48.0, -25.0, Status.WARN), (52.0, -18.75, Status.WARN),
     (56.0, -12.5, Status.OK), (60.0, -6.25, Status.OK), (80.0, 25.0, Status.OK)],
    ids=["below-critical", "at-critical", "between", "at-warning", "small-drop", "rise"],
)
def test_pct_change_drop_with_negative_critical_and_warning(now, pct, status) -> None:
    """training-rows-style `pct_change(...,1d_ago) < -25` with warning -12.5 over a day-long window (a past
    value of 64 makes the percentages exact): strictly below each threshold; a rise is OK."""
    points = [(T0 - 86400 - 3600, 64.0), (T0 - 3600, now)]
    recording = Recording.from_lines([series("rows", points, "model:a")])
    m = monitor("pct_change(avg(last_1d),1d_ago):avg:rows{*} by {model} < -25",
                thresholds={"critical": -25, "warning": -12.5})
    result = only(evaluate([m], recording, T0))
    assert (result.status, result.value, result.fires) == (status, pct, status is Status.ALERT)
    assert (result.comparator, result.threshold) == ("<", -12.5 if status is Status.WARN else -25.0)


@pytest.mark.parametrize(
    ("now", "status"), [(3.5, Status.ALERT), (2.5, Status.WARN), (1.5, Status.OK), (-5.0, Status.OK)])
def test_change_rise_with_warning(now, status) -> None:
    """`change(...) > 2` with warning 1: ALERT fires, WARN is reported but does not fire, a drop is OK."""
    recording = Recording.from_lines([series("x", [(T0 - HOUR, 0.5), (T0, now)], "model:a")])
    m = monitor("change(max(last_5m),1h_ago):avg:x{*} by {model} > 2", thresholds={"critical": 2, "warning": 1})
    result = only(evaluate([m], recording, T0))
    assert (result.status, result.value, result.fires) == (status, now - 0.5, status is Status.ALERT)


def test_change_of_an_expression_shifts_the_whole_expression() -> None:
    """`change(...): a / b` compares the ratio now with the ratio an hour ago (timeshift of the formula)."""
    lines = [series("a", [(T0 - HOUR, 1.0), (T0, 3.0)], "model:m"), series("b", [(T0 - HOUR, 4.0), (T0, 4.0)],
                                                                         "model:m")]
    m = monitor("change(avg(last_5m),1h_ago):avg:a{*} by {model} / avg:b{*} by {model} > 0.25")
    result = only(evaluate([m], Recording.from_lines(lines), T0))
    assert (result.value, result.status) == (0.5, Status.ALERT)


def test_replay_of_a_change_monitor() -> None:
    """A drop becomes an ALERT episode whose worst value is the lowest change (`<`)."""
    values = [10.0] * 7 + [10.0, 4.0, 2.0, 6.0, 10.0, 10.0]
    points = [(T0 + 600 * k, v) for k, v in enumerate(values)]
    recording = Recording.from_lines([series("x", points, "model:a")])
    m = monitor("change(avg(last_10m),1h_ago):avg:x{*} by {model} < -3", name="drop")
    assert replay([m], recording, T0 + 3600, T0 + 600 * (len(values) - 1), 600) == [
        Episode("drop", (("model", "a"),), Status.ALERT, T0 + 600 * 8, T0 + 600 * 10, -8.0)]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("change(last(last_5m),1h_ago):avg:x{*} > 1", r"change\(\) takes avg, sum, min, max of the window, not last"),
        ("pct_change(avg(last_5m),1h_ago):sum:x{*}.as_count() > 1", r"pct_change\(\) of \.as_count\(\)"),
        ("change(avg(last_5m),0h_ago):avg:x{*} > 1", r"change\(\) shift '0h_ago' must be positive"),
    ],
    ids=["last", "as_count", "zero-shift"],
)
def test_unsupported_change_monitors_are_named(query, message) -> None:
    """What change alerts do not take (last) or evaluate does not model (the as_count path) is refused."""
    m = monitor(query, name="odd")
    assert list(unsupported([m])) == ["odd"]
    with pytest.raises(EvaluateError, match=f"monitor odd: {message}"):
        evaluate([m], Recording.from_lines([]), T0)


# --- service checks -------------------------------------------------------------------------------

CHECK_QUERY = '"mlmon.predictions.available".over("*").by("model").last(2).count_by_status()'
SHIPPED_THRESHOLDS = {"critical": 2, "warning": 1, "ok": 1}


@pytest.mark.parametrize(
    ("statuses", "status", "value"),
    [([CRITICAL, CRITICAL], Status.ALERT, 2.0), ([OK, CRITICAL], Status.OK, 1.0), ([CRITICAL, OK], Status.OK, 1.0),
     ([WARNING, CRITICAL], Status.WARN, 1.0), ([CRITICAL, CRITICAL, OK], Status.OK, 1.0),
     ([UNKNOWN, CRITICAL], Status.OK, 1.0), ([OK, OK], Status.OK, 0.0)],
    ids=["crit-crit", "ok-crit", "crit-ok", "warn-crit", "only-last-two", "unknown-counts-for-nothing", "ok-ok"],
)
def test_service_check_counts_statuses_of_the_last_runs(statuses, status, value) -> None:
    """last(2) with critical 2, warning 1: ALERT needs two CRITICAL, WARN one WARNING among the last two."""
    lines = [check(s, T0 - 600 * (len(statuses) - 1 - i), "model:a") for i, s in enumerate(statuses)]
    lines.append(check(CRITICAL, T0 + 1, "model:a"))  # after `at`: not yet
    lines.reverse()  # not in time order
    m = monitor(CHECK_QUERY, kind="service check", thresholds=SHIPPED_THRESHOLDS)
    result = only(evaluate([m], Recording.from_lines(lines), T0))
    assert (result.status, result.value, result.fires) == (status, value, status is Status.ALERT)


def test_service_check_over_exclude_and_groups() -> None:
    """over() tags must all match, exclude() drops runs, by() groups by model; other tags are merged."""
    lines = [
        check(CRITICAL, T0 - 600, "env:prod", "model:a", "shard:1"),
        check(CRITICAL, T0, "env:prod", "model:a", "shard:2"),
        check(CRITICAL, T0, "env:dev", "model:b"),
        check(CRITICAL, T0, "env:prod", "model:c", "canary:true"),
        check(CRITICAL, T0, "env:prod", "model:c"),
    ]
    query = ('"mlmon.predictions.available".over("env:prod").exclude("canary:true").by("model").last(2)'
             ".count_by_status()")
    results = evaluate([monitor(query, kind="service check", thresholds={"critical": 2})],
                       Recording.from_lines(lines), T0)
    assert [(r.group_name, r.status, r.value) for r in results] == [
        ("model:a", Status.ALERT, 2.0), ("model:c", Status.OK, 1.0)]


def test_service_check_no_data_needs_notify_no_data() -> None:
    """A check silent for no_data_timeframe is NO DATA (firing) only with notify_no_data."""
    lines = [check(CRITICAL, T0 - 3600, "model:a"), check(CRITICAL, T0 - 3000, "model:a")]
    recording = Recording.from_lines(lines)
    silent = monitor(CHECK_QUERY, kind="service check", notify_no_data=True, no_data_timeframe=45,
                     thresholds={"critical": 2})
    quiet = monitor(CHECK_QUERY, kind="service check", notify_no_data=False, no_data_timeframe=45,
                    thresholds={"critical": 2})
    assert [(r.status, r.fires) for r in evaluate([silent, quiet], recording, T0)] == [
        (Status.NO_DATA, True), (Status.ALERT, True)]


# --- replay ------------------------------------------------------------------------------------


def test_replay_reports_each_run_of_a_status_as_an_episode() -> None:
    """WARN then ALERT runs become separate episodes with their first and last evaluation and worst value."""
    values = [0.05, 0.05, 0.05, 0.15, 0.12, 0.3, 0.5, 0.25, 0.4, 0.9, 0.05, 0.05]
    points = [(T0 + 600 * k, v) for k, v in enumerate(values)]
    recording = Recording.from_lines(one_point_per_line("psi", points, "model:a"))
    m = monitor("max(last_10m):max:psi{*} by {model} > 0.2", name="shifted", thresholds={"critical": 0.2,
                                                                                         "warning": 0.1})
    group = (("model", "a"),)
    assert replay([m], recording, T0, T0 + 600 * (len(values) - 1), 600) == [
        Episode("shifted", group, Status.WARN, T0 + 1800, T0 + 2400, 0.15),
        Episode("shifted", group, Status.ALERT, T0 + 3000, T0 + 5400, 0.9),
    ]


def test_replay_worst_value_is_the_lowest_for_less_than() -> None:
    """For `<` monitors the worst value of an episode is its minimum; an episode open at the end ends there."""
    points = [(T0, 0.99), (T0 + 600, 0.8), (T0 + 1200, 0.5), (T0 + 1800, 0.7)]
    recording = Recording.from_lines([series("rate", points, "model:a")])
    m = monitor("min(last_10m):min:rate{*} by {model} < 0.9", name="repro")
    assert replay([m], recording, T0, T0 + 1800, 600) == [
        Episode("repro", (("model", "a"),), Status.ALERT, T0 + 600, T0 + 1800, 0.5)]


def test_replay_evaluates_at_the_end_off_the_step_grid() -> None:
    """A snapshot sent after the last step (training metrics at run time) is still evaluated, at ``end``."""
    end = T0 + 1800 + 163
    recording = Recording.from_lines([series("age", [(end, 72.0)], "model:a")])
    m = monitor("max(last_2h):max:age{*} by {model} > 48", name="stale")
    assert replay([m], recording, T0, end, 600) == [Episode("stale", (("model", "a"),), Status.ALERT, end, end, 72.0)]


def test_replay_step_must_be_positive() -> None:
    """A zero step is refused rather than looping forever."""
    with pytest.raises(ValueError, match="step must be positive"):
        replay([], Recording.from_lines([]), T0, T0 + 600, 0)


# --- monitors: loading and support ---------------------------------------------------------------


def test_every_shipped_monitor_can_be_evaluated() -> None:
    """Each file in monitors/ is supported and reports a group for a model that sends its metric."""
    monitors = load_monitors(ROOT)
    assert len(monitors) == len(list((ROOT / "monitors").glob("*.json")))
    assert unsupported(monitors) == {}
    lines = [check(OK, T0 - 600 * k, "model:a") for k in range(3)]
    lines += [check(OK, T0 - 600 * k, "instance:demo", "job:quality", name="mlmon.job.can_run") for k in range(3)]
    for m in monitors:
        expression = parse_monitor_query(m.definition["query"], m.definition["type"]).expression
        for metric in metrics_in(expression) if expression is not None else ():
            # first seen hours earlier: older than any monitor's new_group_delay
            lines.append(series(metric.name, [(T0 - 6 * 3600, 1.0), (T0 - 2000, 1.0)], "model:a", "feature:age",
                                "instance:demo", "job:predictions"))
    results = evaluate(monitors, Recording.from_lines(lines), T0)
    assert {r.monitor for r in results} == {m.name for m in monitors}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("avg(last_1h):cumsum(avg:x{*}) > 1", r"function cumsum is not supported by evaluate \(only abs\(\), "
                                              r"log2\(\), log10\(\)\)"),
        ("avg(last_1h):log(avg:x{*}) > 1", "function log is not supported"),
        ("avg(last_1h):abs(avg:x{*}, 2) > 1", r"abs\(\) takes one series or number"),
        ("avg(last_1h):log2() > 1", r"log2\(\) takes one series or number"),
        ("avg(last_1h):abs(x=avg:x{*}) > 1", r"abs\(\) takes one series or number"),
        ("avg(last_1h):abs('x') > 1", r"abs\(\) takes one series or number"),
        ("avg(last_1h):abs(cumsum(avg:x{*})) > 1", "function cumsum is not supported"),
        ("avg(last_1h):p95:x{*} > 1", "space aggregation p95 is not supported"),
        ("avg(last_1h):avg:x{*}.rollup(max, 60) > 1", r"\.rollup\(\) is not supported"),
        ("avg(last_1h):avg:x{env:a AND model:b} > 1", "scope term 'env:a AND model:b' is not supported"),
        ("avg(last_1h):avg:x{*} by {model} / avg:y{*} by {host} > 1", "grouped by the same tags"),
    ],
    ids=["function", "unknown-log", "two-arguments", "no-argument", "keyword", "string", "nested-function",
         "percentile", "rollup", "boolean-scope", "group-mismatch"],
)
def test_unsupported_queries_are_named(query, message) -> None:
    """What evaluate cannot compute raises EvaluateError naming the monitor, and unsupported() lists it."""
    m = monitor(query, name="odd")
    with pytest.raises(EvaluateError, match=f"monitor odd: .*{message}"):
        evaluate([m], Recording.from_lines([]), T0)
    assert list(unsupported([m])) == ["odd"]


def test_critical_threshold_must_match_the_query() -> None:
    """options.thresholds.critical differing from the query's threshold is refused (Datadog does too)."""
    m = monitor("avg(last_1h):avg:x{*} > 1", thresholds={"critical": 2})
    assert unsupported([m]) == {"m": "monitor m: options.thresholds.critical 2 differs from the query's "
                                     "threshold 1 (Datadog refuses this)"}


def test_load_monitors_reads_definitions_by_file_stem(tmp_path) -> None:
    """Each monitors/*.json becomes a ShippedMonitor named after its file; a file without a definition is refused."""
    (tmp_path / "monitors").mkdir()
    (tmp_path / "monitors" / "b.json").write_text(json.dumps({"definition": {"type": "query alert", "query": "q"}}))
    (tmp_path / "monitors" / "a.json").write_text(json.dumps({"definition": {"type": "service check"}}))
    assert load_monitors(tmp_path) == [ShippedMonitor("a", {"type": "service check"}),
                                       ShippedMonitor("b", {"type": "query alert", "query": "q"})]
    (tmp_path / "monitors" / "c.json").write_text("[]")
    with pytest.raises(EvaluateError, match=r"monitors/c\.json: no 'definition' object"):
        load_monitors(tmp_path)


# --- recordings ---------------------------------------------------------------------------------


def test_recording_sorts_points_and_keeps_the_last_value_written_per_second(tmp_path) -> None:
    """Points are sorted by time; a second written twice keeps its last value; tag order does not matter."""
    path = tmp_path / "m.jsonl"
    lines = [series("x", [(T0 + 60, 2.0), (T0, 1.0)], "b:2", "a:1"), series("x", [(T0, 7.0)], "a:1", "b:2"),
             check(OK, T0 + 90, "model:a")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "\n")
    recording = Recording.load(path)
    [s] = recording.series.values()
    assert (s.metric, s.tags, s.times.tolist(), s.values.tolist()) == ("x", ("a:1", "b:2"), [T0, T0 + 60], [7.0, 2.0])
    assert (recording.start, recording.end) == (T0, T0 + 90)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"metric": "x", "points": [[1, 2]], "tags": ["a"]', "invalid JSON: Expecting ',' delimiter"),
        ('{"metric": "x", "points": [[1, "2"]], "tags": []}', r"each point must be \[timestamp, value\] numbers"),
        ('{"metric": "x", "tags": []}', "'points' must be a list"),
        ('{"check": "c", "status": true, "timestamp": 1, "tags": []}', "'status' must be 0 \\(OK\\)"),
        ('{"check": "c", "status": 2, "timestamp": "now", "tags": []}', "'timestamp' must be Unix seconds"),
        ('{"metric": "x", "points": [[1, 2]], "tags": "model:a"}', "'tags' must be a list of strings"),
        ('{"event": "deploy"}', "expected a 'metric' \\(series\\) or a 'check'"),
        ("[1, 2]", "expected an object"),
    ],
    ids=["json", "point", "points", "status", "timestamp", "tags", "neither", "not-object"],
)
def test_bad_line_names_file_and_line(tmp_path, line, problem) -> None:
    """A malformed line raises RecordingError naming the file and the line number."""
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(series("x", [(T0, 1.0)])) + "\n\n" + line + "\n")
    with pytest.raises(RecordingError, match=f"^{re.escape(str(path))}: line 3: {problem}"):
        Recording.load(path)


# --- command line --------------------------------------------------------------------------------


def write_case(tmp_path: Path) -> tuple[Path, Path]:
    """Two monitors (one unsupported); PSI every 10 min from T0 - 30 min: model:a shifts at T0 - 10 min
    (avg over (T0 - 30m, T0] = (0.05 + 0.5 + 0.5) / 3 = 0.35), model:b hovers at the warning level."""
    monitors = tmp_path / "monitors"
    monitors.mkdir()
    shifted = {"type": "query alert", "query": "avg(last_30m):avg:psi{*} by {model} > 0.2",
               "options": {"thresholds": {"critical": 0.2, "warning": 0.1}}}
    odd = {"type": "query alert", "query": "avg(last_30m):cumsum(avg:psi{*}) > 1", "options": {}}
    for name, definition in (("shifted", shifted), ("odd", odd)):
        (monitors / f"{name}.json").write_text(json.dumps({"definition": definition}))
    values = {"a": [0.05, 0.05, 0.5, 0.5], "b": [0.15, 0.15, 0.15, 0.15], "c": [0.01] * 4}
    lines = [series("psi", [(T0 - 1800 + 600 * k, v)], f"model:{model}")
             for model, vs in values.items() for k, v in enumerate(vs)]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return tmp_path, metrics


def test_cli_text_lists_firing_groups_first(tmp_path, capsys) -> None:
    """Text: firing lines first, then WARN and OK, the unsupported monitor, and a summary; exit 0."""
    root, metrics = write_case(tmp_path)
    assert main(["assets", "evaluate", "--metrics", str(metrics), "--root", str(root)]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines[:3] == [["shifted", "model:a", "ALERT", "0.35", ">", "0.2"],
                         ["shifted", "model:b", "WARN", "0.15", ">", "0.1"],
                         ["shifted", "model:c", "OK", "0.01", ">", "0.2"]]
    assert lines[3][:3] == ["odd", "-", "UNSUPPORTED"] and "cumsum" in lines[3]
    assert lines[4] == ["1", "of", "3", "group(s)", "firing", "at", "2027-01-15T08:00:00Z"]


def test_cli_json_at_an_earlier_time(tmp_path, capsys) -> None:
    """JSON: one object per group (and per unsupported monitor); --at ISO without zone is UTC."""
    root, metrics = write_case(tmp_path)
    assert main(["assets", "evaluate", "--metrics", str(metrics), "--root", str(root), "--format", "json",
                 "--at", "2027-01-15T07:40:00"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report[:3] == [
        {"monitor": "shifted", "group": {"model": "b"}, "status": "WARN", "value": 0.15, "threshold": 0.1,
         "comparator": ">", "fires": False},
        {"monitor": "shifted", "group": {"model": "a"}, "status": "OK", "value": 0.05, "threshold": 0.2,
         "comparator": ">", "fires": False},
        {"monitor": "shifted", "group": {"model": "c"}, "status": "OK", "value": 0.01, "threshold": 0.2,
         "comparator": ">", "fires": False},
    ]
    assert report[3]["monitor"] == "odd" and report[3]["status"] == "UNSUPPORTED"


def test_cli_every_lists_episodes(tmp_path, capsys) -> None:
    """--every replays from the first point to --at and prints each episode with ISO UTC times."""
    root, metrics = write_case(tmp_path)
    assert main(["assets", "evaluate", "--metrics", str(metrics), "--root", str(root), "--every", "10m",
                 "--at", str(int(T0))]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    # model:a at 07:50: avg(0.05, 0.05, 0.5) = 0.2, not > 0.2 but > 0.1; at 08:00: 0.35
    assert lines[:3] == [
        ["shifted", "model:b", "WARN", "2027-01-15T07:30:00Z", "2027-01-15T08:00:00Z", "0.15"],
        ["shifted", "model:a", "WARN", "2027-01-15T07:50:00Z", "2027-01-15T07:50:00Z", "0.2"],
        ["shifted", "model:a", "ALERT", "2027-01-15T08:00:00Z", "2027-01-15T08:00:00Z", "0.35"],
    ]
    assert lines[3][:3] == ["odd", "-", "UNSUPPORTED"]
    assert lines[4] == ["3", "episode(s)", "from", "2027-01-15T07:30:00Z", "to", "2027-01-15T08:00:00Z,",
                        "evaluated", "every", "600s"]


def test_cli_evaluates_change_monitors(tmp_path, capsys) -> None:
    """change()/pct_change() monitors are evaluated, not reported UNSUPPORTED: rows a day ago 64, an hour
    ago 40 (b: 62), now 32 (b: 60)."""
    monitors = tmp_path / "monitors"
    monitors.mkdir()
    definitions = {
        "rows_drop": {"type": "query alert", "query": "pct_change(avg(last_1h),1d_ago):avg:rows{*} by {model} < -25",
                      "options": {"thresholds": {"critical": -25, "warning": -12.5}}},
        "rising": {"type": "query alert", "query": "change(max(last_5m),last_1h):avg:rows{*} by {model} > 1",
                   "options": {}},
    }
    for name, definition in definitions.items():
        (monitors / f"{name}.json").write_text(json.dumps({"definition": definition}))
    values = {"a": [64.0, 40.0, 32.0], "b": [64.0, 62.0, 60.0]}
    lines = [series("rows", list(zip([T0 - 86400, T0 - 3600, T0], vs, strict=True)), f"model:{model}")
             for model, vs in values.items()]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["assets", "evaluate", "--metrics", str(metrics), "--root", str(tmp_path)]) == 0
    assert [line.split() for line in capsys.readouterr().out.splitlines()] == [
        ["rows_drop", "model:a", "ALERT", "-50", "<", "-25"],
        ["rising", "model:a", "OK", "-8", ">", "1"],
        ["rising", "model:b", "OK", "-2", ">", "1"],
        ["rows_drop", "model:b", "OK", "-6.25", "<", "-25"],
        ["1", "of", "4", "group(s)", "firing", "at", "2027-01-15T08:00:00Z"],
    ]
    assert main(["assets", "evaluate", "--metrics", str(metrics), "--root", str(tmp_path), "--format", "json"]) == 0
    assert "UNSUPPORTED" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--at", "yesterday"], "--at: expected Unix seconds or an ISO-8601 time"),
     (["--every", "often"], "expected a duration"), (["--every", "0"], "--every must be a positive duration"),
     (["--root", "nowhere"], "nowhere: no monitors/ directory")],
    ids=["at", "every", "every-zero", "root"],
)
def test_cli_usage_errors_exit_2(tmp_path, capsys, extra, message) -> None:
    """A bad --at, --every or --root is a usage error on stderr."""
    root, metrics = write_case(tmp_path)
    args = ["assets", "evaluate", "--metrics", str(metrics), "--root", str(root), *extra]
    if extra[0] == "--root":
        args[-1] = str(tmp_path / "nowhere")
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_cli_unreadable_metrics_exit_1(tmp_path, capsys) -> None:
    """A missing file or a bad line exits 1 naming the file (and line)."""
    root, metrics = write_case(tmp_path)
    assert main(["assets", "evaluate", "--metrics", str(tmp_path / "missing.jsonl"), "--root", str(root)]) == 1
    assert "missing.jsonl: cannot read: No such file or directory" in capsys.readouterr().err
    with metrics.open("a") as fh:
        fh.write('{"metric": "psi"}\n')
    assert main(["assets", "evaluate", "--metrics", str(metrics), "--root", str(root)]) == 1
    assert f"{metrics}: line 13: 'points' must be a list" in capsys.readouterr().err
