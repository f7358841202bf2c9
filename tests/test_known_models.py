"""Known models do not only grow: a model not seen for a day is forgotten (no ``count`` 0, no availability check,
no failure check for it any more), while one silent for less than a day is still expected."""

from __future__ import annotations

import json

from tests.test_faults import (
    END,
    INSTANCE,
    make_config,
    warehouse,  # noqa: F401  (the module's warehouse fixture)
)

from mlmon.runner import Agent
from mlmon.samples import CheckStatus
from mlmon.state import JobState, StateStore
from mlmon.testing import RecordingSink

AVAILABLE = "mlmon.predictions.available"


def test_a_model_silent_for_a_day_is_forgotten(warehouse, tmp_path) -> None:  # noqa: F811
    state_dir = tmp_path / "state"
    store = StateStore(state_dir)
    watermark = (END - 3 * 3600) // 600 * 600  # three hours back: the run delivers some windows
    store.save(INSTANCE, "predictions", JobState(watermark=watermark, models={
        "retired": {"last_seen": watermark - 2 * 86400, "version": "v1"},
        "paused": {"last_seen": watermark - 20 * 3600, "version": "v7"},
    }))
    sink = RecordingSink()
    (report,) = [r for r in Agent(make_config(warehouse, state_dir), sink, clock=lambda: END).run_once()
                 if r.job == "predictions"]
    assert report.errors == 0 and report.windows_processed > 0
    models = json.loads((state_dir / INSTANCE / "predictions.json").read_text())["models"]
    assert "retired" not in models and "paused" in models, models
    checked = {t.split(":", 1)[1] for c in sink.checks if c.name == AVAILABLE for t in c.tags if t.startswith("model:")}
    assert "retired" not in checked
    assert "paused" in checked  # silent for 20 hours: still expected, and reported missing
    paused = [c for c in sink.checks if c.name == AVAILABLE and "model:paused" in c.tags]
    assert all(c.status is CheckStatus.CRITICAL for c in paused)
    zero = [s for s in sink.samples if s.name == "mlmon.prediction.count" and "model:paused" in s.tags]
    assert zero and all(s.value == 0 for s in zero)
    assert not [s for s in sink.samples if "model:retired" in s.tags]
