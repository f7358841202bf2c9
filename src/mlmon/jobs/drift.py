"""What each (model, version, window) is compared with for drift: a reference found in order, pooled if needed.

For a window ``w`` of version ``v`` of model ``m``, each entry of ``drift_reference`` is tried in order:

* an offset ``R`` (``7d``, ``1d``): the current side is ``w`` (version ``v``), the reference side the window
  ``R`` earlier (every version of ``m`` merged). While either side holds fewer than ``drift_min_rows`` valid
  rows, the window before is added to both (``w - 1`` of version ``v``, and ``w - 1 - R``), up to
  ``drift_max_pool`` in all;
* ``training``: the reference side is version ``v``'s validation predictions (``validation_predictions``),
  the current side pooled as above until it holds ``drift_min_rows``.

The first entry whose two sides reach ``drift_min_rows`` is the window's :class:`Comparison`; none: no drift
metric for the window. Nothing is read for an entry that is not needed: the job's statement reads the
windows and the windows one first offset earlier (on a first run, the nearest offset, whose models are the
ones expected in the windows); the trailing windows a pooled comparison needs, and the spans of the other
entries, are read afterwards for the models that need them only (see :func:`resolve`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mlmon.config.jobs import TRAINING_REFERENCE, PredictionsJob
from mlmon.metrics.descriptive import PredictionAggregate
from mlmon.metrics.drift import DriftSample

log = logging.getLogger("mlmon.jobs.drift")

Reference = float | str


def reference_label(reference: Reference) -> str:
    """The ``drift_reference`` tag value of an entry: ``7d``, ``1d``, ``36h``, ``30m``, ``600s`` or ``training``."""
    if isinstance(reference, str):
        return reference
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if reference % size == 0:
            return f"{int(reference // size)}{unit}"
    return f"{reference:g}s"


def sample_of(agg: PredictionAggregate) -> DriftSample:
    """The drift sample of one group: its histogram and the sum of its valid predictions."""
    return DriftSample(agg.histogram, (agg.mean or 0.0) * agg.valid_count)


@dataclass(frozen=True)
class Comparison:
    """A window's current side and reference side, which entry of ``drift_reference`` it is, and how many
    windows each side pools."""

    reference: Reference
    windows: int
    current: DriftSample
    baseline: DriftSample

    @property
    def label(self) -> str:
        """The ``drift_reference`` tag value."""
        return reference_label(self.reference)


@dataclass
class History:
    """The groups the job's statements returned, by window index, and which (window, model) they covered:
    ``complete`` windows were read for every model, ``partial`` pairs for one model (an empty read counts)."""

    groups: dict[int, dict[tuple[str, str], PredictionAggregate]] = field(default_factory=lambda: defaultdict(dict))
    complete: set[int] = field(default_factory=set)
    partial: set[tuple[int, str]] = field(default_factory=set)
    #: ``(model, version)`` -> its validation sample (None: read, and it has none)
    validation: dict[tuple[str, str], DriftSample | None] = field(default_factory=dict)

    def record(self, groups: Mapping[tuple[str, str, int], PredictionAggregate], indexes: Iterable[int],
               models: Sequence[str] | None = None) -> None:
        """Keep ``groups`` (keyed ``(model, version, window index)``) and mark ``indexes`` read for ``models``
        (None: every model)."""
        for (model, version, index), agg in groups.items():
            self.groups[index][(model, version)] = agg
        if models is None:
            self.complete.update(indexes)
        else:
            self.partial.update((i, m) for i in indexes for m in models)

    def covers(self, index: int, model: str) -> bool:
        """Whether window ``index`` was read for ``model``."""
        return index in self.complete or (index, model) in self.partial

    def of_model(self, index: int, model: str) -> list[DriftSample]:
        """Every version of ``model`` in window ``index``."""
        return [sample_of(agg) for (m, _), agg in self.groups.get(index, {}).items() if m == model]

    def of_version(self, index: int, model: str, version: str) -> DriftSample | None:
        """Version ``version`` of ``model`` in window ``index``."""
        agg = self.groups.get(index, {}).get((model, version))
        return sample_of(agg) if agg is not None else None

    def forget_before(self, index: int) -> None:
        """Drop every window before ``index``."""
        for i in [i for i in self.groups if i < index]:
            del self.groups[i]
        self.complete = {i for i in self.complete if i >= index}
        self.partial = {(i, m) for i, m in self.partial if i >= index}


@dataclass(frozen=True)
class Needs:
    """What a comparison waits for: windows to read for a model, or a version's validation sample."""

    windows: frozenset[int] = frozenset()
    validation: tuple[str, str] | None = None


def compare(job: PredictionsJob, width: float, history: History, model: str, version: str,
            index: int) -> Comparison | Needs | None:
    """The comparison of window ``index`` of ``model`` ``version`` (None: no entry reaches ``drift_min_rows``),
    or what must be read first."""
    pool = max(1, round(job.drift_max_pool / width))
    need = max(job.drift_min_rows, 1)
    span = [index - k for k in range(pool)]
    for reference in job.drift_reference:
        offset: int | None = None  # training: a fixed reference side, the version's validation sample
        if isinstance(reference, str):
            assert reference == TRAINING_REFERENCE
            if (model, version) not in history.validation:
                return Needs(validation=(model, version))
            sample = history.validation[(model, version)]
            if sample is None or sample.rows < need:
                continue
            ref = [sample]
        else:
            offset, ref = round(reference / width), []
        reads = span if offset is None else [i for j in span for i in (j, j - offset)]
        if missing := frozenset(i for i in reads if not history.covers(i, model)):
            return Needs(windows=missing)
        cur: list[DriftSample] = []
        for i in span:
            found = history.of_version(i, model, version)
            cur += [found] if found is not None else []
            if offset is not None:
                ref += history.of_model(i - offset, model)
            current, baseline = DriftSample.merge(cur), DriftSample.merge(ref)
            if min(current.rows, baseline.rows) >= need:
                return Comparison(reference, index - i + 1, current, baseline)
    return None


Read = Callable[[Sequence[tuple[int, int]], Sequence[str]], Mapping[tuple[str, str, int], PredictionAggregate]]
ReadValidation = Callable[[Sequence[tuple[str, str]]], Mapping[tuple[str, str], DriftSample]]


def spans(indexes: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted window indexes as contiguous ``[first, last + 1)`` runs."""
    out: list[tuple[int, int]] = []
    for i in sorted(set(indexes)):
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def resolve(job: PredictionsJob, width: float, history: History, wanted: Iterable[tuple[str, str, int]],
            read: Read, read_validation: ReadValidation) -> dict[tuple[str, str, int], Comparison]:
    """The comparison of each wanted ``(model, version, window index)`` that has one, reading what they need:
    per round, the missing windows of every model that needs some, as contiguous spans (``read``, given the
    spans and the models), and the validation samples asked for (``read_validation``). A round reads for
    the models still waiting only; each round settles at least one entry of ``drift_reference`` per wait,
    so there are at most ``len(drift_reference)`` + 1 of them."""
    out: dict[tuple[str, str, int], Comparison] = {}
    waiting = list(wanted)
    for _ in range(2 * len(job.drift_reference) + 2):
        windows: dict[str, set[int]] = defaultdict(set)
        pairs: set[tuple[str, str]] = set()
        still = []
        for key in waiting:
            found = compare(job, width, history, *key)
            if isinstance(found, Needs):
                still.append(key)
                windows[key[0]] |= found.windows
                if found.validation is not None:
                    pairs.add(found.validation)
            elif found is not None:
                out[key] = found
        if not still:
            return out
        waiting = still
        if pairs:
            samples = read_validation(sorted(pairs))
            for pair in pairs:
                history.validation[pair] = samples.get(pair)
        if windows:
            models = sorted(windows)
            runs = spans(i for indexes in windows.values() for i in indexes)
            history.record(read(runs, models), (i for a, b in runs for i in range(a, b)), models)
    raise AssertionError(f"drift references unresolved after every round: {waiting[:3]}")  # pragma: no cover
