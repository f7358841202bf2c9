"""Agent state on disk: one watermark per (instance, job), written atomically, and a single-agent lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: how long a model that stopped serving is remembered, and so expected (``mlmon.prediction.count`` 0 and
#: ``mlmon.predictions.available`` CRITICAL for it): a day
MODEL_MEMORY = 86400.0


class StateError(Exception):
    """The state directory cannot be used: not writable, not a directory, the disk full."""


class LockError(StateError):
    """Another agent holds the state directory (or its lock file cannot be created)."""


def _unusable(root: Path, exc: OSError, what: str) -> str:
    return (f"state_dir {root}: cannot {what} ({exc.strerror or exc}); make it a writable directory "
            "(init_config.state_dir)")


@dataclass
class JobState:
    """What a job remembers between runs.

    ``watermark`` is the end (Unix seconds) of the last window the sink accepted; a job's first run sets
    it to the start of its first window (``initial_lookback``), before anything is sent, so that
    windows a failed first run could not deliver are still due later. ``models`` maps a
    model name to ``{"last_seen": <window end>, "version": <last version>}`` so that a model that
    stops serving is still expected (and reported with ``count`` 0) for a day. ``lanes`` holds the
    watermarks of models with a delay of their own (``quality``'s ``label_delay_by_model``). ``segments``
    holds the segment values chosen for each UTC day (``segment_by``: :mod:`mlmon.jobs.segments`), keyed by
    the day's start in Unix seconds, so that they are chosen once a day.
    """

    watermark: float | None = None
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    lanes: dict[str, float] = field(default_factory=dict)
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def forget_models(self, before: float) -> list[str]:
        """Drop the models last seen before ``before`` (Unix seconds; never seen: kept); return their names."""
        gone = sorted(m for m, info in self.models.items()
                      if info.get("last_seen") is not None and info["last_seen"] < before)
        for model in gone:
            del self.models[model]
        return gone

    def lane_watermark(self, key: str) -> float | None:
        """The watermark of lane ``key`` (``""``: the job's own)."""
        return self.watermark if key == "" else self.lanes.get(key)

    def advance(self, key: str, end: float) -> None:
        """Record that every window of lane ``key`` up to ``end`` was delivered."""
        if key == "":
            self.watermark = end
        else:
            self.lanes[key] = end

    def oldest_watermark(self) -> float | None:
        """The lowest watermark over all lanes (what ``lag_seconds`` reports)."""
        marks = [m for m in (self.watermark, *self.lanes.values()) if m is not None]
        return min(marks) if marks else None


def _is_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


def _state_problem(data: Any) -> str:
    """What in a loaded state file is not of the shape :meth:`StateStore.save` writes ("" if nothing)."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    watermark = data.get("watermark")
    if watermark is not None and not _is_seconds(watermark):
        return f"watermark is {watermark!r}; expected Unix seconds or null"
    models, lanes = data.get("models", {}), data.get("lanes", {})
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        return "models: expected an object of objects"
    for model, info in models.items():
        if info.get("last_seen") is not None and not _is_seconds(info["last_seen"]):
            return f"models -> {model} -> last_seen is {info['last_seen']!r}; expected Unix seconds or null"
        if info.get("version") is not None and not isinstance(info["version"], str):
            return f"models -> {model} -> version is {info['version']!r}; expected text or null"
    if not isinstance(lanes, dict):
        return "lanes: expected an object"
    segments = data.get("segments", {})
    if not isinstance(segments, dict) or not all(isinstance(v, dict) for v in segments.values()):
        return "segments: expected an object of objects"
    for lane, mark in lanes.items():
        if not _is_seconds(mark):
            return f"lanes -> {lane} is {mark!r}; expected Unix seconds"
    return ""


class StateStore:
    """JSON files under ``state_dir/<instance>/<job>.json``."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.root = Path(state_dir)

    def _path(self, instance: str, job: str) -> Path:
        return self.root / instance / f"{job}.json"

    def load(self, instance: str, job: str) -> JobState:
        """The saved state, or a fresh one if there is none yet."""
        path = self._path(instance, job)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return JobState()
        except OSError as exc:  # the directory, not the file: not a directory, no permission
            raise StateError(_unusable(self.root, exc, f"read {path.name} of instance {instance}")) from None
        except ValueError as exc:
            raise ValueError(f"{path}: unreadable state file ({exc}); move it away to start over") from None
        problem = _state_problem(data)
        if problem:
            raise ValueError(f"{path}: not a state file mlmon wrote ({problem}); move it away to start over "
                             "(the job then starts again from its initial_lookback)")
        return JobState(
            watermark=_seconds(data.get("watermark")), models={m: dict(v) for m, v in data.get("models", {}).items()},
            lanes={k: float(v) for k, v in data.get("lanes", {}).items()},
            segments={k: dict(v) for k, v in data.get("segments", {}).items()},
        )

    def save(self, instance: str, job: str, state: JobState) -> None:
        """Write atomically: a crash leaves either the old or the new file, never half of one."""
        path = self._path(instance, job)
        try:
            self._write(path, job, state)
        except OSError as exc:
            raise StateError(_unusable(self.root, exc, f"write {path.name} of instance {instance}")) from None

    def _write(self, path: Path, job: str, state: JobState) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(
            {"watermark": state.watermark, "models": state.models, "lanes": state.lanes,
             **({"segments": state.segments} if state.segments else {})}, sort_keys=True, indent=1,
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{job}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class AgentLock:
    """An exclusive ``flock`` on ``state_dir/mlmon.lock``, held for the agent's lifetime."""

    #: the lock file under ``state_dir``, and who holds it (for the refusal message)
    file_name = "mlmon.lock"
    holder = "mlmon agent"

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.path = Path(state_dir) / self.file_name
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockError` naming the holder's pid."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise LockError(_unusable(self.path.parent, exc, f"create its lock file {self.file_name}")) from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise LockError(
                f"another {self.holder} (pid {holder}) is using state directory {self.path.parent}; "
                "refusing to start"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Drop the lock."""
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> AgentLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class BackfillLock(AgentLock):
    """``state_dir/backfill.lock``: one ``mlmon backfill`` per state directory at a time.

    Not the agent's lock: a backfill keeps its watermarks under keys of its own (see
    :func:`mlmon.backfill.state_key`) and never touches the live jobs' files, so it runs beside
    ``mlmon run``; two backfills could share a range's watermark, so they exclude each other.
    """

    file_name = "backfill.lock"
    holder = "mlmon backfill"


def check_writable(root: str | os.PathLike[str]) -> str:
    """"" when ``root`` is (or can be made) a directory a file can be written to and removed from; else why not."""
    path = Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path, prefix=".mlmon-check.", suffix=".tmp")
        try:
            os.write(fd, b"{}")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as exc:
        return _unusable(path, exc, "write a file there")
    return ""
