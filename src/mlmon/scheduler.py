"""``mlmon run``: one APScheduler job per (instance, job), never overlapping, missed runs coalesced."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from mlmon.config import Instance
from mlmon.runner import Agent, JobReport

log = logging.getLogger("mlmon.scheduler")


def build_scheduler(agent: Agent):  # type: ignore[no-untyped-def]
    """A BlockingScheduler with every enabled job, first run immediately."""
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = BlockingScheduler(timezone=dt.timezone.utc)
    now = dt.datetime.now(dt.timezone.utc)
    for instance in agent.config.instances:
        for job in agent.enabled_jobs(instance):
            interval = getattr(instance.jobs, job).interval
            scheduler.add_job(
                run_and_log,
                IntervalTrigger(seconds=interval, timezone=dt.timezone.utc),
                args=[agent, instance, job],
                id=f"{instance.name}:{job}",
                name=f"{instance.name}:{job}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=now,
            )
    return scheduler


def run_and_log(agent: Agent, instance: Instance, job: str) -> JobReport:
    """One scheduled run of one job, logged in one summary line as ``mlmon run --once`` logs it."""
    report = agent.run_job(instance, job)
    log.info("%s", report.summary())
    return report


class Stoppable(Protocol):
    """What can be stopped at a safe point: the agent, or a backfill."""

    stop: threading.Event


def stop_on_signals(agent: Stoppable, then: Callable[[], object] | None = None) -> None:
    """On SIGTERM or SIGINT, let the agent reach a safe point: the statements in flight are interrupted (their
    windows stay pending) and a window being delivered is either delivered and acknowledged or left pending
    (never half of either), then stop; ``then`` runs after the flag is set (the scheduler's shutdown)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: ending the statements in flight (their windows stay pending), then stopping", signum)
        agent.stop.set()
        interrupt = getattr(agent, "interrupt", None)  # a backfill has none: it stops between its statements
        if interrupt is not None:
            interrupt()
        if then is not None:
            then()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def run_forever(agent: Agent) -> None:
    """Run until SIGTERM/SIGINT; the window in flight is finished and its state saved before exit."""
    scheduler = build_scheduler(agent)
    stop_on_signals(agent, lambda: scheduler.shutdown(wait=False))
    log.info("mlmon scheduler started with %d job(s)", len(scheduler.get_jobs()))
    scheduler.start()
    # start() returns after shutdown; wait for running jobs to reach a safe point
    scheduler._executors["default"].shutdown(wait=True)
