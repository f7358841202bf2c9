"""Detection delay and false alarms of the shift monitors (``predictions_shifted``, ``predictions_mean_shifted``).

Three measurements, printed as tables (the numbers in ``monitors/README.md`` come from this script):

1. **Delay**: per shift incident of the incident suite's warehouse (a busy, a low-traffic and a young model
   shifted, a busy one stuck), planted ``--since`` before the suite's end time; the agent runs once there, as in
   the suite, and the shipped monitors are replayed every 5 minutes from three hours back. The delay is the
   first evaluation that fires on the incident's model, less the incident's start.
2. **Healthy**: every model of the scenarios (the demo's three, then the low-traffic, young and weekly-seasonal
   ones), eight days of healthy traffic, the agent over the last day: episodes of each shift monitor (false
   alarms, each model-day).
3. **Demo week**: ``mlmon demo`` (7 days) ending at ``--demo-ends`` times spread over a day (and ``--demo-at``);
   episodes of the shift monitors outside its planted shift (``ctr_banner``, from 6 h before the end) and stuck hours
   (``cvr_app``, and a day later, when they are the reference).

    python benchmarks/shift_monitors.py [--demo-ends 8] [--demo-at 2026-12-01T16:56:30 ...] [--since 7200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mlmon.assets.evaluate import Status, evaluate, load_monitors, replay  # noqa: E402
from mlmon.assets.recording import Recording  # noqa: E402
from mlmon.config import parse_config  # noqa: E402
from mlmon.runner import Agent  # noqa: E402
from mlmon.scenarios import DAY, EXTRA_MODELS, HOUR, MODELS, Incident, build_frames, write_duckdb  # noqa: E402
from mlmon.sinks.jsonl import JsonlSink  # noqa: E402

SHIFT_MONITORS = ("predictions_shifted", "predictions_mean_shifted")
END = dt.datetime(2026, 11, 20, 14, 3, tzinfo=dt.timezone.utc).timestamp()  # the incident suite's
STEP = 300.0


def run_agent(directory: Path, frames: dict, end: float, lookback: str) -> Recording:
    warehouse, jsonl = directory / "warehouse.duckdb", directory / "metrics.jsonl"
    write_duckdb(warehouse, frames)
    config = parse_config({
        "init_config": {"env": "bench", "state_dir": str(directory / "state"), "datadog": {"transport": "jsonl"}},
        "instances": [{"name": "bench", "warehouse": {"engine": "duckdb", "path": str(warehouse)}, "jobs": {
            "predictions": {"initial_lookback": lookback},
            "quality": {"enabled": False}, "reproducibility": {"enabled": False}, "training": {"enabled": False},
            "serving_features": {"enabled": False}}}],
    })
    Agent(config, JsonlSink(jsonl), clock=lambda: end).run_once()
    return Recording.load(jsonl)


def shift_episodes(recording: Recording, start: float, end: float) -> list:
    monitors = [m for m in load_monitors(ROOT) if m.name in SHIFT_MONITORS]
    return [e for e in replay(monitors, recording, start, end, STEP) if e.status is not Status.WARN]


def delays(since: float) -> None:
    print(f"1. delay: shift planted {since / 3600:g} h before the suite's end, monitors replayed every 5 min")
    print("incident / model / rows per 10 min / monitor / delay (min) / false alarms on other models")
    cases = (("shifted", "ctr_banner"), ("shifted", "ctr_native"), ("shifted", "ctr_story"), ("stuck", "cvr_app"))
    for kind, name in cases:
        models = (*MODELS, *(m for m in EXTRA_MODELS if m.name == name))
        incident = Incident(kind, name, since=since)
        with tempfile.TemporaryDirectory() as tmp:
            frames = build_frames(END, (incident,), hours=30, models=models)
            mine = frames["predictions"].loc[frames["predictions"]["model"] == name, "ts"]
            rows = len(mine) / mine.dt.floor("10min").nunique()  # per window it serves in
            recording = run_agent(Path(tmp), frames, END, "3h")
        start = END - since // 600 * 600
        episodes = shift_episodes(recording, END - 3 * HOUR, END)
        for monitor in SHIFT_MONITORS:
            mine = [e for e in episodes if e.monitor == monitor and dict(e.group).get("model") == name
                    and e.last >= start]
            others = [e for e in episodes if e.monitor == monitor and dict(e.group).get("model") != name]
            delay = f"{(min(e.first for e in mine) - start) / 60:.0f}" if mine else "not fired"
            print(f"{kind} / {name} / {rows:.0f} / {monitor} / {delay} / {len(others)}")


def healthy() -> None:
    print("\n2. healthy: eight days of every scenario model, the agent over the last day, replayed every 5 min")
    with tempfile.TemporaryDirectory() as tmp:
        frames = build_frames(END, (), hours=8 * 24, models=(*MODELS, *EXTRA_MODELS))
        recording = run_agent(Path(tmp), frames, END, "1d")
    episodes = shift_episodes(recording, END - DAY, END)
    monitors = [m for m in load_monitors(ROOT) if m.name in SHIFT_MONITORS]
    highest: dict[str, tuple[float, str]] = {}
    at = END - DAY + HOUR
    while at <= END:
        for r in evaluate(monitors, recording, at):
            if r.value is not None and r.value > highest.get(r.monitor, (-1.0, ""))[0]:
                highest[r.monitor] = (r.value, f"{r.group_name} at "
                                      f"{dt.datetime.fromtimestamp(at, dt.timezone.utc):%a %H:%M}")
        at += STEP
    print("monitor / episodes (false alarms) / models watched a day / highest value evaluated")
    for monitor in SHIFT_MONITORS:
        mine = [e for e in episodes if e.monitor == monitor]
        where = ", ".join(f"{e.group_name} at {dt.datetime.fromtimestamp(e.first, dt.timezone.utc):%a %H:%M}"
                          for e in mine)
        value, place = highest.get(monitor, (float("nan"), ""))
        print(f"{monitor} / {len(mine)}{' (' + where + ')' if where else ''} / {len(MODELS) + len(EXTRA_MODELS)} / "
              f"{value:.3f} ({place})")


def demo_week(ends: int, at: list[str]) -> None:
    from mlmon import demo
    from mlmon.cli import main

    print(f"\n3. demo week: `mlmon demo` ending at {ends} times over a day (and at {', '.join(at) or 'no other'}), "
          "its metrics replayed every 5 min")
    print("end (UTC) / monitor / planted shift (ctr_banner): delay (min) / stuck hours (cvr_app) fired / false alarms")
    real = time.time
    base = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc).timestamp()
    totals = dict.fromkeys(SHIFT_MONITORS, 0)
    chosen = [base + k * DAY / ends + 777.0 for k in range(ends)]  # arbitrary seconds past a window boundary
    chosen += [dt.datetime.fromisoformat(a).replace(tzinfo=dt.timezone.utc).timestamp() for a in at]
    for end in chosen:
        offset = end - real()
        with tempfile.TemporaryDirectory() as tmp:
            time.time = lambda offset=offset: real() + offset  # type: ignore[misc]
            try:
                import contextlib
                import io

                with contextlib.redirect_stdout(io.StringIO()):
                    main(["demo", "--dir", tmp, "--days", "7"])
            finally:
                time.time = real  # type: ignore[assignment]
            recording = Recording.load(Path(tmp) / "metrics.jsonl")
        assert recording.start is not None and recording.end is not None
        episodes = shift_episodes(recording, recording.start, recording.end)
        shift = next(i for i in demo.DEMO_INCIDENTS if i.kind == "shifted")
        stuck = next(i for i in demo.DEMO_INCIDENTS if i.kind == "stuck")
        shift_start = end - shift.since // 600 * 600
        stuck_start = (end - stuck.since) // 600 * 600
        stuck_spans = [(stuck_start, stuck_start + (stuck.duration or 0) + 2 * HOUR),
                       (stuck_start + DAY, stuck_start + DAY + (stuck.duration or 0) + 2 * HOUR)]
        for monitor in SHIFT_MONITORS:
            mine = [e for e in episodes if e.monitor == monitor]
            caught = [e for e in mine if e.group_name == f"model:{shift.model}" and e.last >= shift_start]
            stuck_fired = [e for e in mine if e.group_name == f"model:{stuck.model}"
                           and any(a <= e.first <= b for a, b in stuck_spans)]
            false = [e for e in mine if e not in caught and e not in stuck_fired]
            totals[monitor] += len(false)
            delay = f"{(min(e.first for e in caught) - shift_start) / 60:.0f}" if caught else "not fired"
            where = ", ".join(f"{e.group_name} {dt.datetime.fromtimestamp(e.first, dt.timezone.utc):%a %H:%M}"
                              for e in false)
            print(f"{dt.datetime.fromtimestamp(end, dt.timezone.utc):%H:%M:%S} / {monitor} / {delay} / "
                  f"{len(stuck_fired)} / {len(false)}{' (' + where + ')' if where else ''}")
    print("false alarms in all: " + ", ".join(f"{m} {n}" for m, n in totals.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-ends", type=int, default=8)
    parser.add_argument("--demo-at", nargs="*", default=[], help="more demo end times, e.g. 2026-12-01T16:56:30")
    parser.add_argument("--since", type=float, default=2 * HOUR, help="seconds before the end the shifts start")
    args = parser.parse_args()
    started = time.perf_counter()
    delays(args.since)
    healthy()
    if args.demo_ends or args.demo_at:
        demo_week(args.demo_ends, args.demo_at)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
