"""mlmon as a Datadog Agent custom check: ``mlmon.agent_check.MlmonCheck``.

The Agent loads ``checks.d/mlmon.py`` (which imports this class) with ``conf.d/mlmon.d/conf.yaml``,
the same file ``mlmon run`` reads, and creates one check per instance. Each collection
(``min_collection_interval``, default 15 s; 600 fits the 10-minute windows) runs the instance's
jobs through the same :class:`~mlmon.runner.Agent`: due windows only, the watermark kept in
``state_dir`` as with ``mlmon run``, so a check that was down catches up.

The Agent stamps what a check submits at its flush, not at the window end. A window sent within
``late_after`` (default 15 minutes) of its end is off by that much at most, and goes through the
Agent: gauges, counts and service checks with the check's tags, no host when the instance sets
``empty_default_hostname: true``. An older window (a catch-up) would collapse onto one flush
timestamp, so with ``late_windows: dogstatsd`` (the Agent's own DogStatsD, timestamped) or
``late_windows: api`` (the HTTP API with the key in ``init_config.datadog``) those windows keep their
window-end timestamps; with the default ``late_windows: agent`` they go through the Agent anyway and
Datadog keeps the last of them per series.

``check()`` never raises for a data problem: warehouse, query and delivery failures become service
checks and error counts, and the windows stay pending. A configuration error raises
``ConfigurationError`` when the Agent creates the check, as every integration does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from datadog_checks.base import AgentCheck, ConfigurationError

from mlmon.config import Config, ConfigError, DatadogConfig, parse_config
from mlmon.jobs import JOBS
from mlmon.reports import JOB_CHECK
from mlmon.runner import Agent
from mlmon.samples import MetricType, Point, Sample, make_tags
from mlmon.sinks.base import Sink, SinkError
from mlmon.sinks.base import flush as flush_sink

__all__ = ["AgentCheckSink", "MlmonCheck"]


class AgentCheckSink:
    """Submits through an :class:`AgentCheck`; windows older than ``late_after`` go to ``late`` when given."""

    def __init__(
        self, check: AgentCheck, late: Sink | None = None, late_after: float = 15 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.check = check
        self.late = late
        # the runner applies the late sink's horizon (re-stamp or skip what Datadog would drop); without a
        # late sink everything goes through the Agent, stamped at its flush, so any age will do
        self.horizon: float | None = late.horizon if late is not None else None
        self.late_after = late_after
        self.clock = clock

    def submit(self, points: Sequence[Point]) -> None:
        now = self.clock()
        late: list[Point] = []
        fresh: list[Point] = []
        for p in points:
            (late if self.late is not None and now - p.timestamp > self.late_after else fresh).append(p)
        if late and self.late is not None:
            self.late.submit(late)  # a SinkError leaves the windows pending, nothing submitted twice
        for p in fresh:
            if isinstance(p, Sample):
                submit = self.check.count if p.type is MetricType.COUNT else self.check.gauge
                submit(p.name, p.value, tags=list(p.tags), raw=True)
            else:
                # None, not "", when there is no message (the base class's own default)
                self.check.service_check(p.name, int(p.status), tags=list(p.tags),
                                         message=cast(str, p.message or None), raw=True)

    def flush(self) -> None:
        """What the late sink held back (its service checks)."""
        if self.late is not None:
            flush_sink(self.late)


def _late_sink(cfg: DatadogConfig) -> Sink | None:
    if cfg.late_windows == "agent":
        return None
    from mlmon.sinks.factory import make_sink

    transport = "dogstatsd" if cfg.late_windows == "dogstatsd" else "api"
    return make_sink(cfg.model_copy(update={"transport": transport}))


class MlmonCheck(AgentCheck):  # type: ignore[no-untyped-call]  # the base's __init_subclass__ is untyped
    """Runs the configured jobs of its instance at each collection."""

    __NAMESPACE__ = ""

    def __init__(self, name: str, init_config: Any, instances: Sequence[dict[str, Any]]) -> None:
        super().__init__(name, init_config, instances)
        try:
            self.mlmon_config: Config = parse_config(
                {"init_config": init_config or {}, "instances": list(instances)}, source=f"{name}.d/conf.yaml"
            )
        except ConfigError as exc:
            raise ConfigurationError(str(exc)) from None
        try:
            late = _late_sink(self.mlmon_config.init_config.datadog)
        except SinkError as exc:
            raise ConfigurationError(f"{name}.d/conf.yaml: late_windows: {exc}") from None
        self.sink = AgentCheckSink(self, late, self.mlmon_config.init_config.datadog.late_after)
        self.agent = Agent(self.mlmon_config, self.sink)

    def check(self, _: Any) -> None:
        try:
            for report in self.agent.run_once():
                if report.errors:
                    self.log.warning("instance %s job %s: %s", report.instance, report.job, "; ".join(report.messages))
        except Exception as exc:  # never out of check(): the Agent would only log it, without a service check
            self.log.exception("mlmon run failed")
            # no job ran: each enabled job of each instance is CRITICAL, in the check's own groups (instance, job)
            for instance in self.mlmon_config.instances:
                for job, spec in JOBS.items():
                    if spec.settings(instance).enabled:
                        tags = list(make_tags(self.mlmon_config.base_tags(instance), f"instance:{instance.name}",
                                              f"job:{job}"))
                        self.service_check(JOB_CHECK, AgentCheck.CRITICAL, tags=tags,
                                           message=f"{type(exc).__name__}: {exc}", raw=True)
