"""Jobs: turn warehouse aggregates for a range of windows, or a snapshot, into samples and service checks.

:data:`JOBS` is the registry: every job's :class:`~mlmon.jobs.spec.JobSpec`, in the order a run goes
through them. The runner, ``mlmon plan``, ``mlmon backfill``, ``mlmon check``, the CLI and the Agent
check iterate over it.
"""

from mlmon.jobs import predictions, quality, reproducibility, serving_features, training
from mlmon.jobs.spec import JobSpec, registry

JOBS: dict[str, JobSpec] = registry(
    predictions.SPEC, quality.SPEC, reproducibility.SPEC, training.SPEC, serving_features.SPEC
)
#: the jobs that work on windows (``mlmon backfill`` sends their past ranges)
WINDOW_JOBS: dict[str, JobSpec] = {name: spec for name, spec in JOBS.items() if spec.windowed}

__all__ = ["JOBS", "WINDOW_JOBS", "JobSpec"]
