"""A job is one declaration: :class:`JobSpec`.

Each job module (:mod:`mlmon.jobs.predictions`, ...) exports ``SPEC``: the tables it reads, whether
it works on windows or takes a snapshot, its lanes and the setting that names their delay, every
metric it emits, how it computes, the checks a failed query makes, how many prediction rows a
window covers (for ``mlmon backfill``'s progress) and its series rule (for ``mlmon plan``).
:data:`mlmon.jobs.JOBS` is the registry that the runner, ``plan``, ``backfill``, ``check``, the CLI
and the Agent check iterate over; no job is named anywhere else but in its own module and the config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlmon.config import OPTIONAL_TABLES, Instance
from mlmon.jobs.windows import Batch, Lane, RunMemo, Window, no_failure_checks
from mlmon.samples import Sample, ServiceCheck
from mlmon.state import JobState
from mlmon.warehouse.engines import Engine, QueryError
from mlmon.warehouse.sql import exists_query

if TYPE_CHECKING:
    from mlmon.cardinality import Counted, FirstRun


@dataclass(frozen=True)
class Snapshot:
    """What one run of a snapshot job produced: samples stamped at send time, rows fetched, problems."""

    samples: list[Sample] = field(default_factory=list)
    rows_fetched: int = 0
    problems: list[str] = field(default_factory=list)


#: a windowed job's statement over a range of windows of one lane; the memo lives for the job's run
WindowCompute = Callable[[Engine, Instance, Sequence[Window], Lane, JobState, Iterable[str], float, RunMemo], Batch]
#: a snapshot job's statements
SnapshotCompute = Callable[[Engine, Instance, Iterable[str], float], Snapshot]
#: the series a first run creates, for ``mlmon plan``
SeriesRule = Callable[[Engine, Instance, float, "FirstRun", Sequence[str]], "Counted"]
#: service checks sent when one of the job's statements failed
FailureChecks = Callable[[Instance, JobState, Iterable[str], str, float], list[ServiceCheck]]


def _no_extra_tables(instance: Instance) -> tuple[str, ...]:
    return ()


def _never_idle(instance: Instance) -> str:
    return ""


def _no_columns(instance: Instance) -> Mapping[str, tuple[str, ...]]:
    return {}


@dataclass(frozen=True)
class JobSpec:
    """Everything the agent and its commands need to know about one job."""

    name: str
    #: the tables (data-contract names) the job reads, or the rule that picks them from the instance's config;
    #: every one must be configured for it to run (see :meth:`tables_of`)
    tables: tuple[str, ...] | Callable[[Instance], tuple[str, ...]]
    #: every metric the job emits (``mlmon plan`` counts them in this order)
    metrics: tuple[str, ...]
    series: SeriesRule
    #: a windowed job's statement (``None`` for a snapshot job)
    window: WindowCompute | None = None
    lanes: Callable[[Instance], list[Lane]] | None = None
    #: the setting holding the delay of the job's main lane, for messages
    delay_setting: str = ""
    failure_checks: FailureChecks = no_failure_checks
    #: prediction rows one series of a delivered window covers, from its values by metric name
    rows_covered: Callable[[Mapping[str, float]], float] | None = None
    #: a snapshot job's statements
    snapshot: SnapshotCompute | None = None
    #: tables read when the instance asks for them (checked and named in messages)
    extra_tables: Callable[[Instance], tuple[str, ...]] = _no_extra_tables
    #: the job's own ``mlmon check``, run once the tables it reads fit: warnings through ``say``, problems returned
    check: Callable[[Engine, Instance, float, Callable[[str], object]], list[str]] | None = None
    #: why the job has nothing to do on an instance by its settings (``""``: it has work), e.g. no features
    #: configured; such a job is skipped like one whose table is not configured
    idle: Callable[[Instance], str] = _never_idle
    #: columns beyond the data contract the job reads, by table (data-contract name): what ``mlmon check`` probes
    columns: Callable[[Instance], Mapping[str, tuple[str, ...]]] = _no_columns

    @property
    def windowed(self) -> bool:
        """Whether the job works on windows (else it takes a snapshot each run)."""
        return self.window is not None

    def settings(self, instance: Instance) -> Any:
        """The job's settings on ``instance`` (``instance.jobs.<name>``)."""
        return getattr(instance.jobs, self.name)

    def runnable(self, instance: Instance) -> tuple[bool, str]:
        """Whether the job runs on ``instance`` by its config, and if not why: disabled, or a table it reads
        set to null. (A table left at its default name is probed at run time: :func:`absent_default_table`.)"""
        if not self.settings(instance).enabled:
            return False, "enabled: false"
        if why := self.idle(instance):
            return False, why
        missing = [t for t in self.tables_of(instance) if getattr(instance.tables, t) is None]
        if missing:
            return False, f"table {missing[0]} not configured (null)"
        return True, ""

    def tables_of(self, instance: Instance) -> tuple[str, ...]:
        """The tables (data-contract names) the job must have on ``instance``."""
        return self.tables(instance) if callable(self.tables) else self.tables

    def tables_read(self, instance: Instance) -> list[str]:
        """The physical names of the tables the job reads on ``instance``, in contract order (null ones left out)."""
        # an optional table's failure is told apart, by name: a failed statement is not about it
        names = (getattr(instance.tables, t) for t in (*self.tables_of(instance), *self.extra_tables(instance))
                 if t not in OPTIONAL_TABLES)
        return [str(n) for n in names if n]

    def failure(self, instance: Instance, problem: object) -> str:
        """``instance ads, job quality, tables predictions, labels: <problem>``: how a failed statement is told."""
        names = self.tables_read(instance)
        tables = f"table {names[0]}" if len(names) == 1 else f"tables {', '.join(names)}"
        return f"instance {instance.name}, job {self.name}, {tables}: {problem}"


def table_exists(engine: Engine, table: str) -> bool:
    """Whether ``table`` (a physical name) exists: a probe that reads no row."""
    try:
        engine.fetch(exists_query(table), {})
    except QueryError:
        return False
    return True


def absent_default_table(engine: Engine, instance: Instance, spec: JobSpec, known: set[str] | None = None,
                         *, explicit_too: bool = False) -> tuple[str, str] | None:
    """The first table ``spec`` reads that the config left at its default name (or any, ``explicit_too``)
    and that does not exist, with the engine's message; tables in ``known`` (found before) are not probed
    again, and found ones are added to it."""
    for table in spec.tables_of(instance):
        name = str(getattr(instance.tables, table))
        if (instance.tables.explicit(table) and not explicit_too) or (known is not None and name in known):
            continue
        try:
            engine.fetch(exists_query(name), {})
        except QueryError as exc:
            return table, str(exc)
        if known is not None:
            known.add(name)
    return None


def registry(*specs: JobSpec) -> dict[str, JobSpec]:
    """Name -> spec, in run order; a name declared twice is a bug."""
    out: dict[str, JobSpec] = {}
    for spec in specs:
        if spec.name in out:
            raise ValueError(f"job {spec.name} declared twice")
        out[spec.name] = spec
    return out
