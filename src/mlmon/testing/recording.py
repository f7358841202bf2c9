"""A sink that records what it is given, with Datadog-style assertions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from mlmon.samples import CheckStatus, Point, Sample, ServiceCheck
from mlmon.sinks.base import SinkError


class RecordingSink:
    """Keeps every accepted point; ``fail_next`` makes the next N submissions raise :class:`SinkError`."""

    def __init__(self, horizon: float | None = None) -> None:
        self.horizon = horizon
        self.samples: list[Sample] = []
        self.checks: list[ServiceCheck] = []
        self.submissions = 0
        self.fail_next = 0

    def submit(self, points: Sequence[Point]) -> None:
        self.submissions += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            raise SinkError("recording sink told to fail")
        for p in points:
            (self.samples if isinstance(p, Sample) else self.checks).append(p)  # type: ignore[arg-type]

    def reset(self) -> None:
        """Forget everything recorded."""
        self.samples.clear()
        self.checks.clear()

    def metrics(self, name: str, tags: Iterable[str] | None = None) -> list[Sample]:
        """Samples named ``name`` whose tags include every tag in ``tags``."""
        want = set(tags or ())
        return [s for s in self.samples if s.name == name and want <= set(s.tags)]

    def assert_metric(
        self,
        name: str,
        value: float | None = None,
        tags: Iterable[str] | None = None,
        count: int | None = None,
        at_least: int = 1,
        timestamp: float | None = None,
        rel: float = 1e-9,
        abs_tol: float = 1e-12,
    ) -> list[Sample]:
        """Assert that ``name`` was submitted with ``tags`` (a subset, order-insensitive) and ``value``."""
        candidates = self.metrics(name, tags)
        if timestamp is not None:
            candidates = [s for s in candidates if s.timestamp == timestamp]
        matched = [
            s for s in candidates
            if value is None or math.isclose(s.value, value, rel_tol=rel, abs_tol=abs_tol)
        ]
        ok = len(matched) == count if count is not None else len(matched) >= at_least
        if not ok:
            near = [s for s in self.samples if s.name == name][:10]
            raise AssertionError(
                f"expected {name} value={value} tags={sorted(tags or [])} timestamp={timestamp} "
                f"({'count=' + str(count) if count is not None else 'at least ' + str(at_least)}), "
                f"found {len(matched)} matching; submitted {name}:\n"
                + "\n".join(f"  value={s.value!r} tags={list(s.tags)} ts={s.timestamp}" for s in near)
                + ("\n  (none)" if not near else "")
            )
        return matched

    def assert_service_check(
        self, name: str, status: CheckStatus | None = None, tags: Iterable[str] | None = None, at_least: int = 1
    ) -> list[ServiceCheck]:
        """Assert that service check ``name`` was submitted with ``status`` and ``tags``."""
        want = set(tags or ())
        matched = [
            c for c in self.checks
            if c.name == name and want <= set(c.tags) and (status is None or c.status == status)
        ]
        if len(matched) < at_least:
            seen = "\n".join(
                f"  {c.status.name} tags={list(c.tags)} {c.message}" for c in self.checks if c.name == name
            )
            raise AssertionError(
                f"expected service check {name} status={status} tags={sorted(want)}; submitted:\n{seen or '  (none)'}"
            )
        return matched

    def metric_names(self) -> set[str]:
        """Every metric name recorded."""
        return {s.name for s in self.samples}
