"""``init_config.datadog.send_budget``: a job run stops handing windows to a slow Datadog once it has spent that
long sending; the windows not yet sent stay pending (the message says how many) and the next run delivers them,
every window exactly once."""

from __future__ import annotations

import time
from collections import Counter

from tests.helpers import API_KEY
from tests.test_faults import (
    END,
    INSTANCE,
    make_config,
    warehouse,  # noqa: F401  (the module's warehouse fixture)
)

from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.sinks.datadog_api import DatadogApiSink
from mlmon.state import StateStore
from mlmon.testing import IntakeServer, Reply


def budgeted(path, state, budget: str):
    data = make_config(path, state).model_dump(mode="json")
    data["init_config"]["datadog"] = {"send_budget": budget}
    data["instances"][0]["jobs"] = {"predictions": {"initial_lookback": "3h", "max_windows_per_query": 1},
                                    "quality": {"enabled": False}, "reproducibility": {"enabled": False},
                                    "training": {"enabled": False}}
    return parse_config(data)


def test_a_slow_intake_leaves_the_rest_pending(warehouse, tmp_path) -> None:  # noqa: F811
    """18 windows, one statement and one submission each, every series request answered after 0.4 s, a budget of
    1 s: the run stops after about three submissions instead of taking 7 s, says how many windows stay pending,
    and the next runs deliver the rest, each window once."""
    state = tmp_path / "state"
    with IntakeServer() as intake:
        sink = DatadogApiSink(api_key=API_KEY, api_host=intake.url, horizon=None, timeout=5)
        intake.fail_next(*[Reply(202, delay=0.4)] * 6, path="/api/v1/series")
        started = time.monotonic()
        (report,) = [r for r in Agent(budgeted(warehouse, state, "1s"), sink, clock=lambda: END).run_once()
                     if r.job == "predictions"]
        took = time.monotonic() - started
        assert 1 <= report.windows_processed < 18 and took < 4, (report.windows_processed, took)
        (message,) = [m for m in report.messages if "send_budget" in m]
        assert "the windows not sent yet stay pending for the next run" in message
        first = report.windows_processed
        watermark = StateStore(state).load(INSTANCE, "predictions").watermark
        assert watermark is not None
        rest = next(r for r in Agent(budgeted(warehouse, state, "1m"), sink, clock=lambda: END).run_once()
                    if r.job == "predictions")
        assert rest.errors == 0 and first + rest.windows_processed == 18
        ends = Counter(int(p[0]) for s in intake.series() if s["metric"] == "mlmon.prediction.count"
                       for p in s["points"])
        assert len(ends) == 18 and set(ends.values()) == {3}  # each window once, for each of the three models
