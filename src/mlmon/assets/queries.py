"""Datadog query parsing: metric monitors, service-check monitors and dashboard metric queries.

A recursive-descent parser over the tokens of :mod:`mlmon.assets.syntax`. The grammar (free whitespace)::

    metric monitor := time ':' expr comparator ['-'] NUMBER
    time           := time_aggr '(' timeframe ')'
                    | ('change' | 'pct_change') '(' time_aggr '(' timeframe ')' ',' shift ')'
    expr           := term (('+' | '-') term)*
    term           := unary (('*' | '/') unary)*
    unary          := '-' unary | NUMBER | '(' expr ')' | function '(' args ')' | metric
    metric         := space_aggr ':' METRIC SCOPE ('by' SCOPE | '.' method '(' args ')')*
    args           := [arg (',' arg)*]        arg := expr | STRING | NAME | NAME '=' arg
    service check  := STRING '.over(' strings ')' ('.exclude(' strings ')' | '.by(' strings ')'
                      | '.last(' INTEGER ')')* '.count_by_status()'
    dashboard      := expr (',' expr)*

``SCOPE`` is ``{...}`` read as one token (tag filters split on commas, ``*`` for all); timeframes are
``last_<n><m|h|d|w>``; a change shift is a timeframe or ``<n><m|h|d|w>_ago``. Function names are not
checked (Datadog adds them often); aggregators, methods and comparators are.
"""

from __future__ import annotations

import re

from mlmon.assets.syntax import (
    TIMEFRAME_RE,
    BinaryOp,
    Call,
    Expr,
    Metric,
    Negate,
    Number,
    ParsedQuery,
    QueryError,
    String,
    Token,
    Word,
    metrics_in,
    tokenize,
)

TIME_AGGREGATIONS = ("avg", "min", "max", "sum", "last")
CHANGE_AGGREGATIONS = ("change", "pct_change")
SPACE_AGGREGATIONS = ("avg", "min", "max", "sum", "count")
METHODS = ("as_count", "as_rate", "rollup", "fill", "weighted")
COMPARATORS = (">", ">=", "<", "<=")
METRIC_MONITOR_TYPES = ("query alert", "metric alert")
SERVICE_CHECK_MONITOR_TYPES = ("service check",)

_PERCENTILE_RE = re.compile(r"p(\d{1,2}(\.\d+)?|100)")
_METRIC_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")


# --- parser ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        self.pos += 1
        return token

    def at(self, kind: str, text: str | None = None, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind == kind and (text is None or token.text == text)

    def error(self, expected: str) -> QueryError:
        token = self.peek()
        return QueryError(f"column {token.column}: expected {expected}, found {token.describe()}")

    def expect(self, kind: str, text: str | None = None, expected: str | None = None) -> Token:
        if not self.at(kind, text):
            raise self.error(expected or (repr(text) if text else kind))
        return self.advance()

    def expect_op(self, op: str, context: str = "") -> Token:
        return self.expect("op", op, f"{op!r}{context}")

    def end(self, expected: str) -> None:
        if not self.at("end"):
            raise self.error(expected)

    # metric monitors ---------------------------------------------------------------------------

    def metric_monitor(self) -> ParsedQuery:
        change, aggregation, timeframe, shift = self.time()
        self.expect_op(":", " after the time aggregation")
        expression = self.expr()
        if not (self.at("op") and self.peek().text in COMPARATORS):
            raise self.error("a comparator (>, >=, <, <=) and a threshold")
        comparator = self.advance().text
        negative = self.at("op", "-")
        if negative:
            self.advance()
        threshold = float(self.expect("number", expected="a numeric threshold").text)
        threshold = -threshold if negative else threshold
        self.end("end of query after the threshold")
        metrics = list(metrics_in(expression))
        return ParsedQuery(
            kind="metric", metrics=frozenset(m.name for m in metrics), expression=expression,
            group_by=tuple(dict.fromkeys(tag for m in metrics for tag in m.group_by)),
            time_aggregation=aggregation, timeframe=timeframe, change=change, timeshift=shift,
            comparator=comparator, threshold=threshold,
        )

    def time(self) -> tuple[str | None, str, str, str | None]:
        """``avg(last_1h)`` -> (None, avg, last_1h, None); ``change(avg(last_5m),1h_ago)`` -> (change, ...)."""
        change = self.peek().text if self.at("name") and self.peek().text in CHANGE_AGGREGATIONS else None
        if change is None:
            return (None, *self.window(), None)
        self.advance()
        self.expect_op("(", f" after {change}")
        aggregation, timeframe = self.window()
        self.expect_op(",", f" and a shift: {change}(avg(last_5m),last_1h)")
        if not (self.at("shift") or (self.at("name") and TIMEFRAME_RE.fullmatch(self.peek().text))):
            raise self.error("a shift like last_1h or 1h_ago")
        shift = self.advance().text
        self.expect_op(")", f" to close {change}(")
        return change, aggregation, timeframe, shift

    def window(self) -> tuple[str, str]:
        """``<time_aggr>(<timeframe>)``."""
        name = self.peek()
        if name.kind != "name" or name.text not in TIME_AGGREGATIONS:
            raise self.error("a time aggregation (" + ", ".join((*TIME_AGGREGATIONS, *CHANGE_AGGREGATIONS)) + ")")
        self.advance()
        self.expect_op("(", f" after {name.text}")
        if not (self.at("name") and TIMEFRAME_RE.fullmatch(self.peek().text)):
            raise self.error("a timeframe like last_5m, last_1h, last_1d or last_1w")
        timeframe = self.advance().text
        self.expect_op(")", f" to close {name.text}(")
        return name.text, timeframe

    # expressions ------------------------------------------------------------------------------

    def expr(self) -> Expr:
        left = self.term()
        while self.at("op") and self.peek().text in "+-":
            op = self.advance().text
            left = BinaryOp(op, left, self.term())
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.at("op") and self.peek().text in "*/":
            op = self.advance().text
            left = BinaryOp(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.at("op", "-"):
            self.advance()
            return Negate(self.unary())
        if self.at("number"):
            return Number(float(self.advance().text))
        if self.at("op", "("):
            opened = self.advance()
            inner = self.expr()
            self.expect_op(")", f" to close the '(' from column {opened.column}")
            return inner
        if self.at("name") and self.at("op", ":", offset=1):
            return self.metric()
        if self.at("name") and self.at("op", "(", offset=1):
            return self.call()
        raise self.error("a metric query like avg:metric{scope}, a number, a function or '('")

    def metric(self) -> Metric:
        aggregation = self.peek()
        if aggregation.text not in SPACE_AGGREGATIONS and not _PERCENTILE_RE.fullmatch(aggregation.text):
            raise self.error("a space aggregation (" + ", ".join(SPACE_AGGREGATIONS) + " or a percentile like p95)")
        self.advance()
        self.expect_op(":")
        name = self.expect("name", expected="a metric name")
        if not _METRIC_RE.fullmatch(name.text):
            raise QueryError(f"column {name.column}: bad metric name {name.text!r}")
        scope = _tags(self.expect("scope", expected=f"a scope like {{*}} or {{env:prod}} after {name.text}"))
        group_by: tuple[str, ...] | None = None
        methods: list[Call] = []
        while True:
            if self.at("name", "by") and group_by is None:
                self.advance()
                group_by = _tags(self.expect("scope", expected="group tags like {model} after 'by'"))
            elif self.at("op", "."):
                self.advance()
                method = self.peek()
                if method.kind != "name" or method.text not in METHODS:
                    raise self.error("a method (" + ", ".join(METHODS) + ")")
                methods.append(self.call())
            else:
                break
        return Metric(aggregation.text, name.text, scope, group_by or (), tuple(methods))

    def call(self) -> Call:
        name = self.advance()
        opened = self.expect_op("(")
        args: list[Expr] = []
        kwargs: list[tuple[str, Expr]] = []
        while not self.at("op", ")"):
            if args or kwargs:
                self.expect("op", ",", f"',' or ')' to close the '(' from column {opened.column}")
            if self.at("name") and self.at("op", "=", offset=1):
                key = self.advance().text
                self.advance()
                kwargs.append((key, self.arg()))
            else:
                args.append(self.arg())
        self.advance()
        return Call(name.text, tuple(args), tuple(kwargs))

    def arg(self) -> Expr:
        if self.at("string"):
            return String(self.advance().text[1:-1])
        if self.at("name") and not (self.at("op", ":", offset=1) or self.at("op", "(", offset=1)):
            return Word(self.advance().text)
        if self.at("end"):
            raise self.error("an argument or ')'")
        return self.expr()

    # service checks ---------------------------------------------------------------------------

    def service_check(self) -> ParsedQuery:
        check = self.expect("string", expected='a quoted check name like "my.check"').text[1:-1]
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", check):
            raise QueryError(f"bad service check name {check!r}")
        self.expect_op(".", " and .over(...) after the check name")
        self.expect("name", "over", '.over("tag:value", ...) after the check name')
        over = self.strings("over", at_least_one=True)
        exclude: tuple[str, ...] | None = None
        by: tuple[str, ...] | None = None
        last: int | None = None
        while True:
            self.expect_op(".", " and the next method")
            method = self.peek().text if self.at("name") else ""
            unused = [m for m, v in (("exclude", exclude), ("by", by), ("last", last)) if v is None]
            if method not in (*unused, "count_by_status"):
                raise self.error("one of " + ", ".join(f".{m}()" for m in (*unused, "count_by_status")))
            self.advance()
            if method == "count_by_status":
                break
            if method == "exclude":
                exclude = self.strings(method, at_least_one=True)
            elif method == "by":
                by = self.strings(method, at_least_one=False)
            else:
                last = self.count()
        self.expect_op("(")
        self.expect_op(")", " (count_by_status takes no arguments)")
        self.end("end of query after count_by_status()")
        if last is None:
            raise QueryError("a service check query needs .last(<n>) before .count_by_status()")
        return ParsedQuery(kind="service_check", check=check, over=over, exclude=exclude or (), group_by=by or (),
                           last=last)

    def count(self) -> int:
        self.expect_op("(", " after .last")
        count = self.expect("number", expected="a check count like 2")
        if not count.text.isdigit() or int(count.text) < 1:
            raise QueryError(f"column {count.column}: .last() takes a positive integer, found {count.text!r}")
        self.expect_op(")", " to close .last(")
        return int(count.text)

    def strings(self, method: str, *, at_least_one: bool) -> tuple[str, ...]:
        opened = self.expect_op("(", f" after .{method}")
        values: list[str] = []
        while not self.at("op", ")"):
            if values:
                self.expect("op", ",", f"',' or ')' to close the '(' from column {opened.column}")
            token = self.expect("string", expected='a quoted tag like "env:prod"')
            if not token.text[1:-1].strip():
                raise QueryError(f"column {token.column}: empty tag in .{method}()")
            values.append(token.text[1:-1])
        self.advance()
        if at_least_one and not values:
            raise QueryError(f".{method}() needs at least one tag (\"*\" for all)")
        return tuple(values)


def _tags(token: Token) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in token.text[1:-1].split(","))
    if not all(parts):
        raise QueryError(f"column {token.column}: empty tag in {token.text}")
    return parts


# --- public entry points -----------------------------------------------------------------------


def parse_monitor_query(query: str, monitor_type: str) -> ParsedQuery:
    """Parse the ``query`` of a ``query alert``/``metric alert`` or ``service check`` monitor."""
    parser = _Parser(query)
    if monitor_type in METRIC_MONITOR_TYPES:
        return parser.metric_monitor()
    if monitor_type in SERVICE_CHECK_MONITOR_TYPES:
        return parser.service_check()
    supported = ", ".join(repr(t) for t in (*METRIC_MONITOR_TYPES, *SERVICE_CHECK_MONITOR_TYPES))
    raise QueryError(f"cannot parse queries of monitor type {monitor_type!r}; supported: {supported}")


def parse_metric_expressions(query: str) -> tuple[Expr, ...]:
    """Parse a dashboard metric query: one or more comma-separated expressions (``q`` or ``query``)."""
    parser = _Parser(query)
    expressions = [parser.expr()]
    while parser.at("op", ","):
        parser.advance()
        expressions.append(parser.expr())
    parser.end("',' or end of query")
    return tuple(expressions)


def metric_names(query: str) -> set[str]:
    """Metric names in a monitor or dashboard query (none for a service check, whose name is not a metric)."""
    parser = _Parser(query)
    if parser.at("string"):
        parser.service_check()
        return set()
    starts_with_time = parser.peek().text in (*TIME_AGGREGATIONS, *CHANGE_AGGREGATIONS) and parser.at("op", "(", 1)
    if parser.at("name") and starts_with_time:
        return set(parser.metric_monitor().metrics)
    return {m.name for expr in parse_metric_expressions(query) for m in metrics_in(expr)}
