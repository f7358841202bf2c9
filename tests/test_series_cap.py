"""``init_config.series_cap``: a job run sends at most that many distinct series (metric name and tag set); the
points of the series beyond are not sent, counted in ``mlmon.agent.series_capped`` and told in one WARNING, and
the windows are still acknowledged (a cap is a choice, not an outage: nothing is resent). ``mlmon plan`` flags a
job whose first run would reach it."""

from __future__ import annotations

import logging
from typing import Any

from tests.test_faults import (
    END,
    INSTANCE,
    make_config,
    warehouse,  # noqa: F401  (the module's warehouse fixture)
)

from mlmon.config import parse_config
from mlmon.jobs.predictions import METRICS as PREDICTION_METRICS
from mlmon.plan import format_text, plan_config
from mlmon.runner import Agent
from mlmon.state import StateStore
from mlmon.testing import RecordingSink


def with_cap(config: Any, cap: int | None) -> Any:
    data = config.model_dump(mode="json")
    if cap is not None:
        data["init_config"]["series_cap"] = cap
    for instance in data["instances"]:
        instance["warehouse"].pop("url", None)
    return parse_config(data)


def job_series(sink: RecordingSink, prefix: str) -> set[tuple[str, tuple[str, ...]]]:
    return {(s.name, s.tags) for s in sink.samples if s.name.startswith(prefix)}


def test_a_run_sends_at_most_series_cap_series(warehouse, tmp_path, caplog) -> None:  # noqa: F811
    """series_cap 40 against a predictions run of 57 series over 18 windows: 40 distinct series sent, the rest counted
    (the self-metric equals the report), one WARNING naming the setting, the watermark at the last window; with
    the default cap the same run sends every series and counts none."""
    free = RecordingSink()
    reports = Agent(make_config(warehouse, tmp_path / "free"), free, clock=lambda: END).run_once()
    (clean,) = [r for r in reports if r.job == "predictions"]
    # 3 models x every metric of the job (the drift ones tagged with the one reference each window used)
    assert clean.series_capped == 0 and len(job_series(free, "mlmon.prediction.")) == 3 * len(PREDICTION_METRICS)

    sink = RecordingSink()
    config = with_cap(make_config(warehouse, tmp_path / "capped"), 40)
    with caplog.at_level(logging.WARNING):
        reports = Agent(config, sink, clock=lambda: END).run_once()
    (report,) = [r for r in reports if r.job == "predictions"]
    sent = job_series(sink, "mlmon.prediction.")
    assert len(sent) == 40 and sent <= job_series(free, "mlmon.prediction.")
    assert report.series_capped == sum(1 for s in free.samples if s.name.startswith("mlmon.prediction.")) - sum(
        1 for s in sink.samples if s.name.startswith("mlmon.prediction."))
    (capped,) = [s for s in sink.samples if s.name == "mlmon.agent.series_capped" and "job:predictions" in s.tags]
    assert capped.value == report.series_capped > 0
    warnings = [r.getMessage() for r in caplog.records if "series_cap" in r.getMessage()]
    assert len([w for w in warnings if "job predictions" in w]) == 1 and "init_config.series_cap (40" in warnings[0]
    watermark = StateStore(tmp_path / "capped").load(INSTANCE, "predictions").watermark
    assert watermark == max(o.window.end for o in clean.outputs)  # acknowledged, not left pending


def test_plan_flags_a_job_over_the_cap(warehouse, tmp_path) -> None:  # noqa: F811
    plans = plan_config(with_cap(make_config(warehouse, tmp_path / "s"), 40), END)
    jobs = {j.job: j for j in plans[0].jobs}
    assert jobs["predictions"].over_cap and jobs["predictions"].total > 40
    assert "WARNING more than init_config.series_cap (40) series" in format_text(plans)
    default = {j.job: j for j in plan_config(make_config(warehouse, tmp_path / "s"), END)[0].jobs}
    assert not any(j.over_cap for j in default.values())
