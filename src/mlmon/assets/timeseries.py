"""Recorded series as a monitor query sees them: scope filters, groups, space aggregation, arithmetic, change.

The pieces of :mod:`mlmon.assets.evaluate` that turn a :class:`~mlmon.assets.recording.Recording`
into per-group points, computed once per monitor (evaluation times then only slice them).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from mlmon.assets.recording import FloatArray, Recording
from mlmon.assets.syntax import BinaryOp, Call, Expr, Metric, Negate, Number

#: a group: (tag, value) pairs in the order of the query's ``by`` tags; ``()`` when not grouped
Group = tuple[tuple[str, str], ...]
#: the value of a group tag a series does not carry (Datadog's ``N/A`` group)
MISSING_TAG_VALUE = "N/A"
SPACE_AGGREGATIONS = ("avg", "sum", "min", "max", "count")
_ARITHMETIC: Mapping[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
#: Datadog's arithmetic functions of one series, applied to each point on its own
POINTWISE_FUNCTIONS: Mapping[str, Callable[[Any], Any]] = {"abs": np.abs, "log2": np.log2, "log10": np.log10}


def group_name(group: Group) -> str:
    """``(("model", "a"), ("feature", "age"))`` -> ``model:a,feature:age``; ``()`` -> ``*``."""
    return ",".join(f"{tag}:{value}" for tag, value in group) or "*"


@dataclass(frozen=True, eq=False)
class GroupPoints:
    """A group's values at ``times`` (ascending); ``seen`` holds every timestamp of its raw points, so that
    a group whose expression has no value at some time is still known to exist."""

    times: FloatArray
    values: FloatArray
    seen: FloatArray


@dataclass(frozen=True, eq=False)
class Grouped:
    """Per-group points of an expression grouped by ``tags``."""

    tags: tuple[str, ...]
    groups: dict[Group, GroupPoints]


def expression_points(expr: Expr, recording: Recording, order: tuple[str, ...]) -> float | Grouped:
    """A number, or per-group points, for an expression of metrics, numbers, ``+ - * /``, negation and the
    functions of :data:`POINTWISE_FUNCTIONS` of one argument (group tags in ``order``). The caller has
    checked that it holds nothing else."""
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Negate):
        return combine("-", 0.0, expression_points(expr.operand, recording, order))
    if isinstance(expr, Call):
        (argument,) = expr.args
        return pointwise(expr.name, expression_points(argument, recording, order))
    if isinstance(expr, BinaryOp):
        left = expression_points(expr.left, recording, order)
        return combine(expr.op, left, expression_points(expr.right, recording, order))
    if not isinstance(expr, Metric):
        raise TypeError(f"cannot compute a {type(expr).__name__}")
    tags = tuple(tag for tag in order if tag in expr.group_by)
    members: dict[Group, list[tuple[FloatArray, FloatArray]]] = {}
    for series in recording.series_of(expr.name):
        if in_scope(series.tags, expr.scope):
            for group in group_keys(series.tags, tags):
                members.setdefault(group, []).append((series.times, series.values))
    return Grouped(tags, {group: space_aggregate(parts, expr.space_aggregation) for group, parts in members.items()})


def combine(op: str, left: float | Grouped, right: float | Grouped) -> float | Grouped:
    """``left <op> right`` per group, at the timestamps both sides have; an ungrouped side (a number, or
    a metric without ``by``) applies to every group. Non-finite results are dropped."""
    apply = _ARITHMETIC[op]
    if not isinstance(left, Grouped) and not isinstance(right, Grouped):
        with np.errstate(all="ignore"):
            return float(apply(np.float64(left), np.float64(right)))
    if not isinstance(left, Grouped) or not isinstance(right, Grouped):
        grouped = right if isinstance(right, Grouped) else cast(Grouped, left)
        number = cast(float, left if grouped is right else right)
        out = {}
        for group, p in grouped.groups.items():
            with np.errstate(all="ignore"):
                values = apply(number, p.values) if grouped is right else apply(p.values, number)
            keep = np.isfinite(values)
            out[group] = GroupPoints(p.times[keep], values[keep], p.seen)
        return Grouped(grouped.tags, out)
    tags = left.tags or right.tags
    if left.tags and right.tags:
        keys = sorted(set(left.groups) | set(right.groups))
    else:
        keys = sorted((left if left.tags else right).groups)
    empty = GroupPoints(np.zeros(0), np.zeros(0), np.zeros(0))
    out = {}
    for group in keys:
        a = left.groups.get(group if left.tags else (), empty)
        b = right.groups.get(group if right.tags else (), empty)
        times, i, j = np.intersect1d(a.times, b.times, assume_unique=True, return_indices=True)
        with np.errstate(all="ignore"):
            values = apply(a.values[i], b.values[j])
        keep = np.isfinite(values)
        out[group] = GroupPoints(times[keep], values[keep], np.union1d(a.seen, b.seen))
    return Grouped(tags, out)


def pointwise(name: str, value: float | Grouped) -> float | Grouped:
    """``name(value)`` point by point (``abs``, ``log2``, ``log10``); non-finite results (the log of 0 or
    of a negative value) are dropped, like a division by zero."""
    apply = POINTWISE_FUNCTIONS[name]
    with np.errstate(all="ignore"):
        if not isinstance(value, Grouped):
            return float(apply(np.float64(value)))
        out = {}
        for group, p in value.groups.items():
            values = apply(p.values)
            keep = np.isfinite(values)
            out[group] = GroupPoints(p.times[keep], values[keep], p.seen)
    return Grouped(value.tags, out)


def change_points(value: Grouped, shift: float, *, relative: bool) -> Grouped:
    """Datadog's change series of each group: at each time ``t`` the group has a value at and also at
    ``t - shift``, ``now - past`` (``relative``: ``(now - past) / past * 100``); a time without a value
    exactly ``shift`` earlier has none (no interpolation), nor one whose result is not finite (a past
    value of 0 for ``relative``). ``seen`` stays the group's own (unshifted) timestamps."""
    out = {}
    for group, p in value.groups.items():
        times, i, j = np.intersect1d(p.times, p.times + shift, assume_unique=True, return_indices=True)
        now, past = p.values[i], p.values[j]
        with np.errstate(all="ignore"):
            values = (now - past) / past * 100.0 if relative else now - past
        keep = np.isfinite(values)
        out[group] = GroupPoints(times[keep], values[keep], p.seen)
    return Grouped(value.tags, out)


def space_aggregate(parts: Sequence[tuple[FloatArray, FloatArray]], how: str) -> GroupPoints:
    """Combine series (``(times, values)``, each ascending) at each timestamp: avg, sum, min, max, or
    count (how many series have a point there)."""
    if len(parts) == 1:
        times, values = parts[0]
        return GroupPoints(times, np.ones_like(values) if how == "count" else values, times)
    times = np.concatenate([t for t, _ in parts])
    values = np.concatenate([v for _, v in parts])
    if times.size == 0:
        return GroupPoints(times, values, times)
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    starts = np.flatnonzero(np.concatenate(([True], times[1:] != times[:-1])))
    counts = np.diff(np.append(starts, times.size)).astype(np.float64)
    if how == "count":
        out = counts
    elif how == "min":
        out = np.minimum.reduceat(values, starts)
    elif how == "max":
        out = np.maximum.reduceat(values, starts)
    else:
        out = np.add.reduceat(values, starts)
        if how == "avg":
            out = out / counts
    return GroupPoints(times[starts], out, times[starts])


def check_groups(
    recording: Recording, check: str, over: tuple[str, ...], exclude: tuple[str, ...], by: tuple[str, ...]
) -> list[tuple[Group, FloatArray, npt.NDArray[np.int8]]]:
    """``(group, times, statuses)`` per group of a service check's runs, sorted by group then time."""
    members: dict[Group, list[tuple[FloatArray, npt.NDArray[np.int8]]]] = {}
    for runs in recording.checks_of(check):
        if "*" not in over and not all(has_tag(runs.tags, tag) for tag in over):
            continue
        if any(has_tag(runs.tags, tag) for tag in exclude):
            continue
        for group in group_keys(runs.tags, by):
            members.setdefault(group, []).append((runs.times, runs.statuses))
    out = []
    for group, parts in sorted(members.items()):
        times = np.concatenate([t for t, _ in parts])
        order = np.argsort(times, kind="stable")
        out.append((group, times[order], np.concatenate([s for _, s in parts])[order]))
    return out


def in_scope(tags: tuple[str, ...], scope: tuple[str, ...]) -> bool:
    """Whether a series with ``tags`` is in a scope like ``("env:prod", "!model:x*")`` (``*``: all)."""
    for term in scope:
        if term == "*":
            continue
        if term.startswith("!"):
            if has_tag(tags, term[1:]):
                return False
        elif not has_tag(tags, term):
            return False
    return True


def has_tag(tags: tuple[str, ...], pattern: str) -> bool:
    """Whether a tag matches ``pattern`` (``*`` wildcards, case-sensitive)."""
    return any(fnmatchcase(tag, pattern) for tag in tags)


def group_keys(tags: tuple[str, ...], by: tuple[str, ...]) -> list[Group]:
    """The groups a series with ``tags`` belongs to: usually one; one per value of a repeated group tag."""
    values = [[t.split(":", 1)[1] for t in tags if t.startswith(f"{key}:")] or [MISSING_TAG_VALUE] for key in by]
    return [tuple(zip(by, combination, strict=True)) for combination in itertools.product(*values)]
