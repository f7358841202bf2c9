"""HTTP 413 (a series payload over Datadog's limit): the sink splits the payload and sends each half, never the
same body twice, and sends later payloads at the size that went through; one series alone too large is an error
naming it. The intake refuses bodies over its limit like Datadog (``IntakeServer(max_series_bytes=...)``)."""

from __future__ import annotations

import json

import pytest
from tests.helpers import API_KEY

from mlmon.samples import Sample
from mlmon.sinks.base import SinkError
from mlmon.sinks.datadog_api import DatadogApiSink
from mlmon.testing import IntakeServer

NOW = 1_795_183_380.0


def samples(n: int, tag: str = "x") -> list[Sample]:
    return [Sample("mlmon.prediction.count", float(i), (f"model:m{i}", f"batch:{tag}"), NOW) for i in range(n)]


def test_a_413_splits_the_payload_and_never_resends_it(caplog) -> None:
    """2 000 series (about 200 KB) to an intake that takes at most 30 KB: every series arrives exactly once, no
    refused body is sent again, and the next submission is cut to the learned size at once (no 413)."""
    with IntakeServer(max_series_bytes=30_000) as intake:
        sink = DatadogApiSink(api_key=API_KEY, api_host=intake.url, max_retries=2, sleep=lambda s: None)
        sink.submit(samples(2000))
        got = [(s["metric"], tuple(s["tags"])) for s in intake.series()]
        assert sorted(got) == sorted((s.name, s.tags) for s in samples(2000))
        refused = [json.dumps(r.body, sort_keys=True) for r in intake.requests if r.status == 413]
        assert refused and len(refused) == len(set(refused))  # split, never resent as is
        assert all(len(json.dumps(r.body)) <= 30_000 for r in intake.accepted("/series"))
        before = len(intake.requests)
        sink.submit(samples(500, "y"))
        later = intake.requests[before:]
        assert later and all(r.status == 202 for r in later), [r.status for r in later]
    assert "413" in caplog.text


def test_one_series_too_large_alone_is_an_error_naming_it() -> None:
    with IntakeServer(max_series_bytes=100) as intake:
        sink = DatadogApiSink(api_key=API_KEY, api_host=intake.url, max_retries=2, sleep=lambda s: None)
        with pytest.raises(SinkError, match=r"refused one series of \d+ bytes as too large .*mlmon.prediction.count"):
            sink.submit(samples(1))
        assert [r.status for r in intake.requests] == [413]  # once: a 413 is not retried as is
