"""What one run of one (instance, job) did, and the service checks that tell Datadog about it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mlmon.jobs.windows import WindowOutput
from mlmon.samples import CheckStatus, Sample, ServiceCheck, make_tags
from mlmon.times import iso

log = logging.getLogger("mlmon.runner")

CAN_CONNECT_CHECK = "mlmon.warehouse.can_connect"
#: per (instance, job): OK when the job's queries ran, CRITICAL naming the table(s) when one failed
JOB_CHECK = "mlmon.job.can_run"


@dataclass
class JobReport:
    """What one run of one (instance, job) did."""

    instance: str
    job: str
    windows_processed: int = 0
    points_sent: int = 0
    points_skipped: int = 0
    rows_fetched: int = 0
    errors: int = 0
    watermark: float | None = None
    outputs: list[WindowOutput] = field(default_factory=list)
    snapshot: list[Sample] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    #: the distinct series (name, tags) this run sent, and how many points it did not send over ``series_cap``
    series: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    series_capped: int = 0
    #: wall seconds this run spent in the sink's submit (what ``datadog.send_budget`` bounds)
    send_seconds: float = 0.0

    def summary(self) -> str:
        """The one line ``mlmon run`` logs per job run (the daemon and ``--once`` alike)."""
        return (f"instance {self.instance} job {self.job}: {self.windows_processed} window(s), "
                f"{self.points_sent} point(s) sent, {self.points_skipped} skipped, {self.errors} error(s)")

    def as_json(self) -> dict[str, object]:
        """The report as ``mlmon run --once --format json`` prints it (no samples: counts and messages)."""
        return {
            "instance": self.instance, "job": self.job, "windows_processed": self.windows_processed,
            "points_sent": self.points_sent, "points_skipped": self.points_skipped,
            "rows_fetched": self.rows_fetched, "errors": self.errors,
            "watermark": None if self.watermark is None else iso(self.watermark), "messages": list(self.messages),
        }


def record_error(report: JobReport, message: str) -> None:
    """Count an error of the run, keep its message for the report, and log it."""
    report.errors += 1
    report.messages.append(message)
    log.error("%s", message)


@dataclass
class JobStatus:
    """The service checks one job run sends about its instance and itself, in the order they happened."""

    instance: str
    job: str
    base_tags: Sequence[str]
    clock: Callable[[], float]
    checks: list[ServiceCheck] = field(default_factory=list)
    #: what went wrong without failing the job (a watermark ahead of the clock): ``can_run`` WARNING
    warning: str = ""

    def unreachable(self, report: JobReport, problem: object) -> None:
        """The warehouse could not be reached: an error, and ``can_connect`` CRITICAL with the reason."""
        message = f"instance {self.instance}: {problem}"
        record_error(report, message)
        tags = make_tags(self.base_tags, f"instance:{self.instance}")
        self.checks.append(ServiceCheck(CAN_CONNECT_CHECK, CheckStatus.CRITICAL, tags, self.clock(), message))

    def connected(self) -> None:
        """``can_connect`` OK."""
        tags = make_tags(self.base_tags, f"instance:{self.instance}")
        self.checks.append(ServiceCheck(CAN_CONNECT_CHECK, CheckStatus.OK, tags, self.clock()))

    def ran(self, failure: str = "") -> None:
        """``mlmon.job.can_run``: CRITICAL with ``failure`` when a statement of the job failed, else WARNING
        with :attr:`warning` if there is one, else OK."""
        tags = make_tags(self.base_tags, f"instance:{self.instance}", f"job:{self.job}")
        status = CheckStatus.CRITICAL if failure else CheckStatus.WARNING if self.warning else CheckStatus.OK
        self.checks.append(ServiceCheck(JOB_CHECK, status, tags, self.clock(), failure or self.warning))
