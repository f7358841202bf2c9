"""Tags are sent as Datadog stores them (lower case, characters it does not keep as ``_``, at most 200 characters),
so that what mlmon counts and tests is what Datadog holds, and a value with a comma or a newline never splits into
two tags; two values that become one tag are told once (their series merge in Datadog)."""

from __future__ import annotations

import logging

import pytest
from tests.helpers import DuckDBWarehouse, utc

from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.samples import make_tags, normalize_tag
from mlmon.testing import RecordingSink


@pytest.mark.parametrize(("raw", "sent"), [
    ("model:CTR_Banner", "model:ctr_banner"),
    ("model_version:v1,env:prod", "model_version:v1_env:prod"),  # one tag, not two
    ("model:ctr\nvideo", "model:ctr_video"),
    ("model:a b|c#d@e", "model:a_b_c_d_e"),
    ("model:ctr-video.v2/eu", "model:ctr-video.v2/eu"),  # kept: - . / :
    ("segment_value:__other__", "segment_value:__other__"),
    ("model:広告_ctr", "model:広告_ctr"),  # letters of any script are kept
])
def test_normalize_tag(raw: str, sent: str) -> None:
    assert normalize_tag(raw) == sent


def test_a_long_tag_is_cut_at_200_characters() -> None:
    tag = normalize_tag("model:" + "x" * 500)
    assert len(tag) == 200 and tag.startswith("model:x")


def test_values_that_become_one_tag_are_told_once(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="mlmon.samples"):
        make_tags("model:Fraud_Score_A")
        make_tags("model:fraud_score_a")
        make_tags("model:FRAUD_SCORE_A")
    told = [r.getMessage() for r in caplog.records if "fraud_score_a" in r.getMessage()]
    assert len(told) == 1 and "Fraud_Score_A" in told[0] and "'model:fraud_score_a'" in told[0], told


def test_the_agent_sends_normalized_tags(tmp_path) -> None:
    """Model names and versions from the prediction log, with upper case, a comma, a space and a newline, reach
    the sink as Datadog would store them: one tag each, lower case, no comma."""
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    now = 1_795_183_380.0
    start = (now - 300) // 600 * 600 - 600
    rows = [(f"r{i}", utc(start + i), "CTR Banner,EU", "V2\nbeta", 0.1 + i / 1000) for i in range(50)]
    wh.write_predictions(rows)
    config = parse_config({
        "init_config": {"state_dir": str(tmp_path / "state")},
        "instances": [{"name": "ads", "warehouse": wh.config(),
                       "tables": {"labels": None, "replays": None, "training_runs": None, "training_features": None},
                       "jobs": {"predictions": {"initial_lookback": "10m"}}}],
    })
    sink = RecordingSink()
    Agent(config, sink, clock=lambda: now).run_once()
    counts = [s for s in sink.samples if s.name == "mlmon.prediction.count"]
    assert counts and all(s.tags == ("model:ctr_banner_eu", "model_version:v2_beta") for s in counts), counts
    assert all("," not in t and t == t.lower() for s in sink.samples for t in s.tags)
