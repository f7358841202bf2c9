"""``mlmon assets evaluate``: which shipped monitors would fire on recorded metrics, per monitor and group.

A small, stateless model of Datadog's evaluation of the two monitor types mlmon ships, applied to a
:class:`~mlmon.assets.recording.Recording` (the JSON Lines sink's output).

Metric monitors (``query alert``, ``metric alert``), ``time_aggr(last_X): expr <comparator> threshold``:

* The window is ``(at - evaluation_delay - X, at - evaluation_delay]`` (``require_full_window`` is not
  modelled: partial windows are evaluated).
* ``new_group_delay`` (seconds; Datadog: "time before starting alerting on new groups"): a group is not
  reported until its first point is that old at the window's end (``at - evaluation_delay``), i.e. until
  ``new_group_delay`` after the first evaluation that saw it. Absent or 0: new groups are evaluated at once.
* Scope: ``*`` is everything; ``tag:value`` (``*`` wildcards allowed) keeps series carrying a matching
  tag, ``!tag:value`` drops them; comma-separated terms must all hold.
* Groups: one per combination of the ``by {...}`` tags' values; a series lacking a group tag falls in
  the value ``N/A``, as in Datadog. Without ``by`` there is one group, ``()``.
* The space aggregation (avg, sum, min, max, count) combines the group's series at each timestamp
  (exact seconds: no interpolation), then the time aggregation (avg, sum, min, max, last) combines
  those values over the window. ``.as_count()`` takes the values as recorded.
* Arithmetic (``+ - * /``, unary minus, numbers) is evaluated per group at the timestamps both sides
  have; an ungrouped side applies to every group; both sides grouped must use the same tags.
  Datadog's arithmetic functions ``abs()``, ``log2()`` and ``log10()`` of one argument apply to each
  point on its own, before the time aggregation (``avg(last_6h):abs(log2(...))`` averages the points'
  ``|log2|``). Non-finite results (division by zero, the log of 0 or of a negative value) are
  dropped. Other functions, percentile aggregations and other methods raise :class:`EvaluateError`
  (per monitor).
* Change alerts, ``change(time_aggr(last_X),shift): expr <comparator> threshold`` and ``pct_change``,
  follow Datadog's documented evaluation (docs.datadoghq.com/monitors/types/change-alert and
  /monitors/types/metric, "Change" tab): the expression's series now, minus the same series ``shift``
  earlier (``timeshift(a, -shift)``), point by point, then the time aggregation over the window. So
  ``change(avg(last_5m),last_1h)`` averages, over the last 5 minutes, each point's difference with the
  point one hour before it. The shift is written ``1h_ago`` or ``last_1h`` (both: one hour back;
  ``last_`` here names no window). ``change`` is ``now - past``; ``pct_change`` is
  ``(now - past) / past * 100``; both keep their sign, so ``> 10`` catches a rise and ``< -30`` a drop,
  and a negative past value gives the formula's literal result. A point pairs only with a point of the
  same group exactly ``shift`` seconds earlier (points on a regular grid pair when the shift is a
  multiple of the step; jittered timestamps do not pair); an unpaired point, or a ``pct_change`` point whose past
  value is 0 (not finite), has no value. A group with no value in the window (no past data at all, or
  only zero past values) is NO DATA as above, its silence measured from its own last point;
  ``evaluation_delay`` moves both windows. Thresholds, warning and comparators apply to the change as
  to any value. Not modelled: Datadog's rollup buckets (its change series is per bucket, so unaligned
  points would still pair there), the ``.as_count()`` evaluation path (Datadog then aggregates before
  comparing; such monitors raise :class:`EvaluateError`), and a ``last`` time aggregation (Datadog's
  change alerts take avg, sum, min and max only: refused).
* Status: ALERT when the value crosses the query's threshold (``options.thresholds.critical``, which
  must equal it) with the query's comparator; else WARN when it crosses ``thresholds.warning``; else
  OK. Recovery thresholds are not modelled (evaluation is stateless).
* NO DATA: the group has a point at or before the window's end but none in the window (or the
  expression has no value there). A group with no point yet is not reported (Datadog does not know
  it). A NO DATA group *fires* when ``notify_no_data`` is true and its last point is at least
  ``no_data_timeframe`` minutes before the window's end (Datadog's default: twice the window).

Service-check monitors, ``"check".over(...).exclude(...).by(...).last(N).count_by_status()``:

* ``over("*")`` keeps every run; otherwise a run needs every ``over`` tag (wildcards allowed). A run
  with a tag matching an ``exclude`` tag is dropped. Runs are grouped by the ``by`` tags (``N/A`` when
  missing); the runs of a group, whatever their other tags, form one sequence ordered by time.
* The last N runs at or before ``at``: ALERT when at least ``thresholds.critical`` (default 1) are
  CRITICAL, else WARN when ``thresholds.warning`` is set and at least that many are WARNING, else OK.
  The value is the number of CRITICAL runs. UNKNOWN runs count toward neither; the ``ok`` and
  ``unknown`` thresholds (recovery, notify on unknown) are not modelled.
* ``new_group_delay``: a group is not reported until ``at`` is that long after its first run.
* With ``notify_no_data``, a group whose last run is at least ``no_data_timeframe`` minutes old
  (Datadog's default for service checks: 24 hours) is NO DATA and fires. Without it, the last runs
  decide however old they are. ``evaluation_delay`` does not apply to service checks.

``fires`` is true for ALERT and for a firing NO DATA; WARN is reported but does not fire.
:func:`replay` evaluates at regular times and returns one :class:`Episode` per contiguous run of
evaluations of one group with the same status that is ALERT, WARN or firing NO DATA.
"""

from __future__ import annotations

import enum
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlmon.assets.queries import METRIC_MONITOR_TYPES, SERVICE_CHECK_MONITOR_TYPES, parse_monitor_query
from mlmon.assets.recording import FloatArray, Recording
from mlmon.assets.syntax import (
    BinaryOp,
    Call,
    Expr,
    Metric,
    Negate,
    Number,
    ParsedQuery,
    QueryError,
    String,
    Word,
    metrics_in,
    timeframe_seconds,
)
from mlmon.assets.timeseries import (
    POINTWISE_FUNCTIONS,
    SPACE_AGGREGATIONS,
    Group,
    Grouped,
    change_points,
    check_groups,
    expression_points,
    group_name,
)
from mlmon.assets.validate import asset_files
from mlmon.samples import CheckStatus

#: Datadog's default ``no_data_timeframe`` for service-check monitors
SERVICE_CHECK_NO_DATA_MINUTES = 24 * 60
#: the time aggregations Datadog's change alerts take (``change(<aggr>(last_5m),...)``; no ``last``)
CHANGE_TIME_AGGREGATIONS = ("avg", "sum", "min", "max")
_COMPARATORS: Mapping[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_TIME_AGGREGATIONS: Mapping[str, Callable[[FloatArray], float]] = {
    "avg": lambda v: float(np.mean(v)), "sum": lambda v: float(np.sum(v)), "min": lambda v: float(np.min(v)),
    "max": lambda v: float(np.max(v)), "last": lambda v: float(v[-1])}


class EvaluateError(ValueError):
    """A monitor (or monitor file) that evaluate cannot handle; the message names the monitor and why."""


class Status(str, enum.Enum):
    """The outcome for one monitor group at one time."""

    OK = "OK"
    WARN = "WARN"
    ALERT = "ALERT"
    NO_DATA = "NO DATA"


@dataclass(frozen=True)
class ShippedMonitor:
    """A monitor file: ``name`` is its stem, ``definition`` the ``/api/v1/monitor`` payload."""

    name: str
    definition: Mapping[str, Any]


@dataclass(frozen=True)
class GroupResult:
    """One group of one monitor at one time. ``threshold`` is the one crossed (WARN: ``warning``) or,
    otherwise, ``critical``; ``comparator`` is how ``value`` is held to it."""

    monitor: str
    group: Group
    status: Status
    value: float | None
    fires: bool
    threshold: float | None = None
    comparator: str = ""

    @property
    def group_name(self) -> str:
        """``model:ctr_banner`` (tags joined by commas; ``*`` for a monitor without groups)."""
        return group_name(self.group)


@dataclass(frozen=True)
class Episode:
    """A contiguous run of evaluations of one group with one firing (or WARN) status, from ``first`` to
    ``last`` (evaluation times); ``worst_value`` is the value furthest past the threshold (None: NO DATA)."""

    monitor: str
    group: Group
    status: Status
    first: float
    last: float
    worst_value: float | None

    @property
    def group_name(self) -> str:
        """``model:ctr_banner`` (tags joined by commas; ``*`` for a monitor without groups)."""
        return group_name(self.group)


def load_monitors(root: str | Path) -> list[ShippedMonitor]:
    """The monitors in ``root/monitors/*.json``, in file-name order.

    Raises :class:`EvaluateError` when there is no such directory or a file has no ``definition``
    object (``mlmon assets validate`` explains what else is wrong with it).
    """
    root = Path(root)
    if not (root / "monitors").is_dir():
        raise EvaluateError(f"{root}: no monitors/ directory")
    monitors = []
    for path in asset_files(root):
        if path.parent.name != "monitors":
            continue
        relative = path.relative_to(root).as_posix()
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EvaluateError(f"{relative}: cannot read: {exc}") from None
        definition = document.get("definition") if isinstance(document, dict) else None
        if not isinstance(definition, dict):
            raise EvaluateError(f"{relative}: no 'definition' object (see mlmon assets validate)")
        monitors.append(ShippedMonitor(path.stem, definition))
    return monitors


def unsupported(monitors: Iterable[ShippedMonitor]) -> dict[str, str]:
    """Monitor name -> why evaluate cannot handle it, for each such monitor (the data plays no part)."""
    reasons = {}
    for monitor in monitors:
        try:
            _plan(monitor)
        except EvaluateError as exc:
            reasons[monitor.name] = str(exc)
    return reasons


def evaluate(monitors: Iterable[ShippedMonitor], recording: Recording, at: float) -> list[GroupResult]:
    """Every reported group of every monitor at time ``at`` (Unix seconds), monitor by monitor, groups
    sorted. Raises :class:`EvaluateError` for a monitor evaluate cannot handle (see :func:`unsupported`)."""
    bound = [_bind(_plan(monitor), recording) for monitor in monitors]
    return [result for monitor in bound for result in monitor.results_at(float(at))]


def replay(
    monitors: Iterable[ShippedMonitor], recording: Recording, start: float, end: float, step: float
) -> list[Episode]:
    """Evaluate at ``start``, ``start + step``, ... and at ``end`` itself (a snapshot sent at the last
    moment is seen), and return the episodes, ordered by ``first``, monitor and group. An episode
    still open at ``end`` ends there."""
    if not step > 0:
        raise ValueError(f"step must be positive, got {step!r}")
    bound = [_bind(_plan(monitor), recording) for monitor in monitors]
    count = max(0, math.floor((end - start) / step + 1e-9) + 1)
    times = [start + i * step for i in range(count)]
    if end >= start and (not times or times[-1] < end):
        times.append(end)
    episodes: list[Episode] = []
    for monitor in bound:
        worse = min if monitor.comparator in ("<", "<=") else max
        running: dict[Group, Episode] = {}
        for at in times:
            current = {r.group: r for r in monitor.results_at(at) if r.fires or r.status is Status.WARN}
            for group, episode in list(running.items()):
                result = current.get(group)
                if result is None or result.status is not episode.status:
                    episodes.append(running.pop(group))
            for group, result in current.items():
                open_episode = running.get(group)
                if open_episode is None:
                    running[group] = Episode(result.monitor, group, result.status, at, at, result.value)
                else:
                    worst = open_episode.worst_value
                    value = worst if result.value is None else (
                        result.value if worst is None else worse(worst, result.value))
                    running[group] = Episode(open_episode.monitor, group, open_episode.status, open_episode.first, at,
                                             value)
        episodes.extend(running.values())
    return sorted(episodes, key=lambda e: (e.first, e.monitor, e.group))


# --- planning: parse and check a monitor, without data -----------------------------------------


@dataclass(frozen=True)
class _Plan:
    name: str
    parsed: ParsedQuery
    critical: float
    warning: float | None
    comparator: str
    notify_no_data: bool
    no_data_after: float  # seconds of silence before NO DATA fires
    delay: float = 0.0
    shift: float | None = None  # change/pct_change: seconds back to the past value
    new_group_delay: float = 0.0  # seconds a group goes unreported after it first appears


def _plan(monitor: ShippedMonitor) -> _Plan:
    name, definition = monitor.name, monitor.definition
    kind, query = definition.get("type"), definition.get("query")
    if kind not in (*METRIC_MONITOR_TYPES, *SERVICE_CHECK_MONITOR_TYPES):
        raise EvaluateError(f"monitor {name}: type {kind!r} is not supported by evaluate")
    if not isinstance(query, str):
        raise EvaluateError(f"monitor {name}: no query")
    try:
        parsed = parse_monitor_query(query, kind)
    except QueryError as exc:
        raise EvaluateError(f"monitor {name}: malformed query: {exc}") from None
    options = _mapping(definition.get("options"), "options", name)
    thresholds = _mapping(options.get("thresholds"), "options.thresholds", name)
    notify = bool(options.get("notify_no_data", False))
    no_data_minutes = _number(options, "no_data_timeframe", name)
    warning = _number(thresholds, "warning", name, "options.thresholds.")
    new_group_delay = _number(options, "new_group_delay", name) or 0.0
    if parsed.kind == "service_check":
        critical = _number(thresholds, "critical", name, "options.thresholds.")
        minutes = SERVICE_CHECK_NO_DATA_MINUTES if no_data_minutes is None else no_data_minutes
        return _Plan(name, parsed, 1.0 if critical is None else critical, warning, ">=", notify, 60.0 * minutes,
                     new_group_delay=new_group_delay)
    assert parsed.expression is not None and parsed.threshold is not None and parsed.comparator is not None
    critical = _number(thresholds, "critical", name, "options.thresholds.")
    if critical is not None and critical != parsed.threshold:
        raise EvaluateError(f"monitor {name}: options.thresholds.critical {critical:g} differs from the query's "
                            f"threshold {parsed.threshold:g} (Datadog refuses this)")
    _check_expression(parsed.expression, name)
    shift = None if parsed.change is None else _change_shift(parsed, name)
    window = float(parsed.window_seconds or 0)
    no_data_after = 2 * window if no_data_minutes is None else 60.0 * no_data_minutes
    return _Plan(name, parsed, parsed.threshold, warning, parsed.comparator, notify, no_data_after,
                 _number(options, "evaluation_delay", name) or 0.0, shift, new_group_delay)


def _change_shift(parsed: ParsedQuery, name: str) -> float:
    """The seconds a ``change``/``pct_change`` monitor looks back (``1h_ago`` and ``last_1h`` alike: 3600);
    raises for what Datadog's change alerts do not take or evaluate does not model."""
    assert parsed.expression is not None and parsed.timeshift is not None
    change = parsed.change
    if parsed.time_aggregation not in CHANGE_TIME_AGGREGATIONS:
        raise EvaluateError(f"monitor {name}: {change}() takes " + ", ".join(CHANGE_TIME_AGGREGATIONS)
                            + f" of the window, not {parsed.time_aggregation}")
    if any(method.name == "as_count" for metric in metrics_in(parsed.expression) for method in metric.methods):
        raise EvaluateError(f"monitor {name}: {change}() of .as_count() (Datadog's as_count evaluation path, "
                            "which aggregates before comparing) is not supported by evaluate")
    text = parsed.timeshift
    ago = re.fullmatch(r"(\d+)([mhdw])_ago", text)
    try:
        return float(timeframe_seconds(f"last_{ago.group(1)}{ago.group(2)}" if ago else text))
    except QueryError:
        raise EvaluateError(f"monitor {name}: {change}() shift {text!r} must be positive") from None


def _mapping(value: object, path: str, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EvaluateError(f"monitor {name}: {path} must be an object")
    return value


def _number(options: Mapping[str, Any], key: str, name: str, prefix: str = "options.") -> float | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EvaluateError(f"monitor {name}: {prefix}{key} must be a number, got {value!r}")
    return float(value)


def _check_expression(expr: Expr, name: str) -> tuple[str, ...] | None:
    """The group tags of ``expr`` (None: a number); raises for what evaluate cannot compute."""
    if isinstance(expr, Number):
        return None
    if isinstance(expr, Negate):
        return _check_expression(expr.operand, name)
    if isinstance(expr, BinaryOp):
        left, right = _check_expression(expr.left, name), _check_expression(expr.right, name)
        if left and right and set(left) != set(right):
            raise EvaluateError(f"monitor {name}: both sides of '{expr.op}' must be grouped by the same tags "
                                f"({', '.join(left)} vs {', '.join(right)})")
        return left if left or right is None else right
    if isinstance(expr, Metric):
        if expr.space_aggregation not in SPACE_AGGREGATIONS:
            raise EvaluateError(f"monitor {name}: space aggregation {expr.space_aggregation} is not supported "
                                "by evaluate")
        for method in expr.methods:
            if method.name != "as_count":
                raise EvaluateError(f"monitor {name}: .{method.name}() is not supported by evaluate")
        for term in expr.scope:
            if term.startswith("$") or any(c.isspace() for c in term):
                raise EvaluateError(f"monitor {name}: scope term {term!r} is not supported by evaluate "
                                    "(tag:value, !tag:value and * only)")
        return expr.group_by
    if isinstance(expr, Call):
        if expr.name not in POINTWISE_FUNCTIONS:
            raise EvaluateError(f"monitor {name}: function {expr.name} is not supported by evaluate (only "
                                f"{', '.join(f'{f}()' for f in POINTWISE_FUNCTIONS)})")
        if len(expr.args) != 1 or expr.kwargs or isinstance(expr.args[0], String | Word):
            raise EvaluateError(f"monitor {name}: {expr.name}() takes one series or number")
        return _check_expression(expr.args[0], name)
    raise EvaluateError(f"monitor {name}: unexpected {type(expr).__name__.lower()} in the expression")


# --- binding: the plan's series, precomputed once per recording ---------------------------------


class _MetricMonitor:
    def __init__(self, plan: _Plan, recording: Recording) -> None:
        self.plan, self.comparator = plan, plan.comparator
        assert plan.parsed.expression is not None and plan.parsed.window_seconds is not None
        self.window = float(plan.parsed.window_seconds)
        self.aggregate = _TIME_AGGREGATIONS[plan.parsed.time_aggregation or "avg"]
        value = expression_points(plan.parsed.expression, recording, plan.parsed.group_by)
        if plan.shift is not None and isinstance(value, Grouped):
            value = change_points(value, plan.shift, relative=plan.parsed.change == "pct_change")
        self.groups = sorted(value.groups.items()) if isinstance(value, Grouped) else []

    def results_at(self, at: float) -> list[GroupResult]:
        plan = self.plan
        end = at - plan.delay
        results = []
        for group, points in self.groups:
            seen = int(np.searchsorted(points.seen, end, side="right"))
            if seen == 0 or end - points.seen[0] < plan.new_group_delay:
                continue
            lo = int(np.searchsorted(points.times, end - self.window, side="right"))
            hi = int(np.searchsorted(points.times, end, side="right"))
            if lo == hi:
                fires = plan.notify_no_data and end - points.seen[seen - 1] >= plan.no_data_after
                results.append(GroupResult(plan.name, group, Status.NO_DATA, None, fires, plan.critical,
                                           self.comparator))
                continue
            value = self.aggregate(points.values[lo:hi])
            results.append(_threshold_result(plan, group, value))
        return results


class _CheckMonitor:
    def __init__(self, plan: _Plan, recording: Recording) -> None:
        self.plan, self.comparator = plan, plan.comparator
        parsed = plan.parsed
        self.groups = check_groups(recording, parsed.check or "", parsed.over, parsed.exclude, parsed.group_by)

    def results_at(self, at: float) -> list[GroupResult]:
        plan = self.plan
        last = plan.parsed.last or 1
        results = []
        for group, times, statuses in self.groups:
            hi = int(np.searchsorted(times, at, side="right"))
            if hi == 0 or at - times[0] < plan.new_group_delay:
                continue
            if plan.notify_no_data and at - times[hi - 1] >= plan.no_data_after:
                results.append(GroupResult(plan.name, group, Status.NO_DATA, None, True, plan.critical, ">="))
                continue
            recent = statuses[max(0, hi - last):hi]
            critical = int(np.sum(recent == CheckStatus.CRITICAL))
            warning = int(np.sum(recent == CheckStatus.WARNING))
            if critical >= plan.critical:
                status, threshold = Status.ALERT, plan.critical
            elif plan.warning is not None and warning >= plan.warning:
                status, threshold = Status.WARN, plan.warning
            else:
                status, threshold = Status.OK, plan.critical
            results.append(GroupResult(plan.name, group, status, float(critical), status is Status.ALERT,
                                       threshold, ">="))
        return results


def _bind(plan: _Plan, recording: Recording) -> _MetricMonitor | _CheckMonitor:
    if plan.parsed.kind == "service_check":
        return _CheckMonitor(plan, recording)
    return _MetricMonitor(plan, recording)


def _threshold_result(plan: _Plan, group: Group, value: float) -> GroupResult:
    crossed = _COMPARATORS[plan.comparator]
    if crossed(value, plan.critical):
        return GroupResult(plan.name, group, Status.ALERT, value, True, plan.critical, plan.comparator)
    if plan.warning is not None and crossed(value, plan.warning):
        return GroupResult(plan.name, group, Status.WARN, value, False, plan.warning, plan.comparator)
    return GroupResult(plan.name, group, Status.OK, value, False, plan.critical, plan.comparator)
