"""The shipped online monitors replayed over the demo's quality metrics: they fire on the planted incidents
that move a model's online quality and on no healthy model, at end times where they once did.

The demo's week starts mid-hour, so each model's first hourly window holds minutes of traffic (50-160 labeled
rows, a few clicks) and was, for an hour, the monitors' 3-hour average alone: calibration 1.5-2.4x and logloss
1.3-2.8x offline on healthy models. ``mlmon demo --days 3`` failed at the first three end times (run at the wall
clock, whose fraction of a second changes the data); at whole seconds the last three fire without the monitors'
``new_group_delay`` (3 hours: the window), which keeps a new model's first windows from being judged alone.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from mlmon import demo
from mlmon.assets.evaluate import Status, load_monitors, replay
from mlmon.assets.recording import Recording
from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.scenarios import HOUR
from mlmon.sinks.jsonl import JsonlSink

ROOT = Path(__file__).resolve().parents[1]
ONLINE = ("online_miscalibrated", "online_quality_degraded")
#: the demo's incidents that move a model's online quality (the rest act on other metrics)
MOVES_ONLINE = {"shifted", "stuck", "segment_uninformative"}
#: an episode is explained by an incident it overlaps, the monitors' window and evaluation delay included
TAIL = 3 * HOUR + 600
DAYS = 3


def utc(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()


def planted(model: str, end: float) -> list[tuple[float, float]]:
    """The spans of ``model``'s online-moving incidents (as :meth:`Incident.mask` places them)."""
    spans = []
    for incident in demo.DEMO_INCIDENTS:
        if incident.model == model and incident.kind in MOVES_ONLINE:
            start = math.floor((end - incident.since) / 600) * 600
            spans.append((start, end if incident.duration is None else start + incident.duration))
    return spans


@pytest.mark.parametrize("end", ["2026-12-01T16:56:30", "2026-12-01T21:10:00", "2026-12-01T16:02:46",
                                 "2026-12-01T17:59:41", "2026-12-01T05:53:24", "2026-12-01T16:59:01"])
def test_online_monitors_fire_on_planted_incidents_only(end: str, tmp_path: Path) -> None:
    """The demo's quality job over three days ending at ``end``, the online monitors replayed every 10 minutes:
    every episode that fires overlaps an incident of its model, and the shift on ctr_banner is caught."""
    at = utc(end)
    warehouse, jsonl = tmp_path / "warehouse.duckdb", tmp_path / "metrics.jsonl"
    demo.build_warehouse(warehouse, at, days=DAYS)
    raw = demo.config(warehouse, tmp_path / "state", jsonl, DAYS)
    jobs = raw["instances"][0]["jobs"]
    for job in ("predictions", "reproducibility", "training", "serving_features"):
        jobs[job] = {"enabled": False}
    jobs["quality"].pop("segment_by")  # the model-wide metrics do not depend on the slices
    Agent(parse_config(raw, "test"), JsonlSink(jsonl), clock=lambda: at).run_once()
    recording = Recording.load(jsonl)
    assert recording.start is not None and recording.end is not None
    monitors = [m for m in load_monitors(ROOT) if m.name in ONLINE]
    assert len(monitors) == len(ONLINE)
    fired = [e for e in replay(monitors, recording, recording.start, recording.end, 600) if e.status is Status.ALERT]
    unexplained = [
        e for e in fired
        if not any(e.first <= stop + TAIL and e.last >= start for start, stop in planted(dict(e.group)["model"], at))
    ]
    assert not unexplained, "\n".join(
        f"{e.monitor} {e.group_name} {dt.datetime.fromtimestamp(e.first, dt.timezone.utc)} worst {e.worst_value}"
        for e in unexplained)
    shift = next(i for i in demo.DEMO_INCIDENTS if i.kind == "shifted")
    shift_start = math.floor((at - shift.since) / 600) * 600
    assert any(e.monitor == "online_miscalibrated" and e.group_name == "model:ctr_banner" and e.first >= shift_start
               for e in fired)
