"""The pieces of a Datadog query: tokens, the syntax tree, and :class:`ParsedQuery` (see ``queries``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple, TypeAlias

_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
TIMEFRAME_RE = re.compile(r"last_([1-9]\d*)([mhdw])")
_TOKEN_RE = re.compile(
    r"""(?P<space>\s+)
      | (?P<shift>\d+[mhdw]_ago\b)
      | (?P<number>(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<string>"[^"]*"|'[^']*')
      | (?P<scope>\{[^{}]*\})
      | (?P<op>>=|<=|[<>()+\-*/,:.=])""",
    re.VERBOSE,
)


class QueryError(ValueError):
    """A query does not parse; the message says what was expected and at which column."""


class Token(NamedTuple):
    kind: str  # shift, number, name, string, scope, op, end
    text: str
    column: int  # 1-based

    def describe(self) -> str:
        return "end of query" if self.kind == "end" else repr(self.text)


def tokenize(text: str) -> list[Token]:
    """Split a query into tokens; raises :class:`QueryError` on a character no token can start with."""
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise QueryError(_bad_character(text, pos))
        assert m.lastgroup is not None
        if m.lastgroup != "space":
            tokens.append(Token(m.lastgroup, m.group(), pos + 1))
        pos = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _bad_character(text: str, pos: int) -> str:
    char = text[pos]
    if char == "{":
        close, nested = text.find("}", pos + 1), text.find("{", pos + 1)
        if close < 0:
            return f"column {pos + 1}: unbalanced braces: '{{' is never closed"
        return f"column {nested + 1}: unbalanced braces: '{{' inside the braces opened at column {pos + 1}"
    if char == "}":
        return f"column {pos + 1}: unbalanced braces: '}}' closes nothing"
    if char in "\"'":
        return f"column {pos + 1}: unterminated string"
    return f"column {pos + 1}: unexpected character {char!r}"


# --- syntax tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class String:
    value: str


@dataclass(frozen=True)
class Word:
    """A bare identifier argument, e.g. ``sum`` in ``.rollup(sum, 60)``."""

    name: str


@dataclass(frozen=True)
class Call:
    """A function ``abs(...)`` or a method ``.rollup(...)`` (the query it applies to is not an argument)."""

    name: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[tuple[str, Expr], ...] = ()


@dataclass(frozen=True)
class Metric:
    """``<space_aggregation>:<metric>{<scope>} [by {<group_by>}]`` plus methods like ``.as_count()``."""

    space_aggregation: str
    name: str
    scope: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    methods: tuple[Call, ...] = ()


@dataclass(frozen=True)
class BinaryOp:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Negate:
    operand: Expr


Expr: TypeAlias = Number | String | Word | Call | Metric | BinaryOp | Negate


def metrics_in(expr: Expr) -> Iterator[Metric]:
    """Every metric query in an expression tree, left to right."""
    if isinstance(expr, Metric):
        yield expr
    elif isinstance(expr, BinaryOp):
        yield from metrics_in(expr.left)
        yield from metrics_in(expr.right)
    elif isinstance(expr, Negate):
        yield from metrics_in(expr.operand)
    elif isinstance(expr, Call):
        for arg in (*expr.args, *(value for _, value in expr.kwargs)):
            yield from metrics_in(arg)


@dataclass(frozen=True)
class ParsedQuery:
    """A parsed monitor query.

    Metric monitors fill ``expression``, ``time_aggregation``, ``timeframe`` (and ``change`` and
    ``timeshift`` for change monitors), ``comparator`` and ``threshold``; ``group_by`` is the union of
    the ``by {...}`` tags of its metric queries. Service checks fill ``check``, ``over``, ``exclude``,
    ``group_by`` (the ``.by(...)`` tags) and ``last``; ``metrics`` is then empty.
    """

    kind: Literal["metric", "service_check"]
    metrics: frozenset[str] = frozenset()
    group_by: tuple[str, ...] = ()
    expression: Expr | None = None
    time_aggregation: str | None = None
    timeframe: str | None = None
    change: str | None = None
    timeshift: str | None = None
    comparator: str | None = None
    threshold: float | None = None
    check: str | None = None
    over: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    last: int | None = None

    @property
    def window_seconds(self) -> int | None:
        """The evaluation window (``last_1h`` -> 3600), or None for service checks."""
        return None if self.timeframe is None else timeframe_seconds(self.timeframe)


def timeframe_seconds(timeframe: str) -> int:
    """``last_5m`` -> 300, ``last_1w`` -> 604800; raises :class:`QueryError` on anything else."""
    m = TIMEFRAME_RE.fullmatch(timeframe)
    if m is None:
        raise QueryError(f"expected a timeframe like last_5m, last_1h, last_1d or last_1w, found {timeframe!r}")
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]
