"""The DogStatsD sink, with a loopback UDP socket and a Unix socket standing in for the Agent."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from tests.helpers import Listener
from tests.scenarios import known_answers

from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.samples import CheckStatus, MetricType, Sample, ServiceCheck
from mlmon.sinks.base import SinkError
from mlmon.sinks.dogstatsd import DogStatsdSink
from mlmon.sinks.factory import make_sink

NOW = 1_800_000_123.0


def parse_metric(line: str) -> tuple[str, float, str, list[str], int]:
    """``name:value|type|#tags|Ttimestamp`` -> (name, value, type, tags, timestamp)."""
    head, *fields = line.split("|")
    name, value = head.rsplit(":", 1)
    tags = next(f[1:].split(",") for f in fields if f.startswith("#"))
    ts = next(int(f[1:]) for f in fields if f.startswith("T"))
    return name, float(value), fields[0], tags, ts


def test_points_carry_their_timestamps_and_no_host(udp) -> None:
    """Gauges and counts keep the sample's timestamp (|T), service checks theirs (d:); every datagram has the
    empty host tag, and a '|' in a check message cannot cut the datagram."""
    listener, port = udp
    sink = DogStatsdSink("127.0.0.1", port)
    sink.submit([
        Sample("mlmon.prediction.mean", 0.125, ("env:test", "model:ctr"), NOW - 600),
        Sample("mlmon.agent.points_sent", 7, ("env:test", "job:predictions"), NOW, MetricType.COUNT),
        ServiceCheck("mlmon.predictions.available", CheckStatus.CRITICAL, ("model:ctr",), NOW - 600,
                     "no rows in predictions | since 10:00"),
    ])
    sink.close()
    lines = listener.datagrams()
    assert len(lines) == 3
    assert parse_metric(lines[0]) == ("mlmon.prediction.mean", 0.125, "g", ["env:test", "model:ctr", "host:"],
                                      int(NOW - 600))
    assert parse_metric(lines[1]) == ("mlmon.agent.points_sent", 7.0, "c", ["env:test", "job:predictions", "host:"],
                                      int(NOW))
    check = lines[2].split("|")
    assert check[:3] == ["_sc", "mlmon.predictions.available", "2"]
    assert f"d:{int(NOW - 600)}" in check and "#model:ctr,host:" in check
    assert check[-1] == "m:no rows in predictions / since 10:00"


def test_unix_socket_without_agent_is_a_sink_error(tmp_path) -> None:
    """Nothing listening on the socket: SinkError (the window stays pending), not silence."""
    sink = DogStatsdSink(socket_path=str(tmp_path / "dsd.socket"))
    with pytest.raises(SinkError, match=r"1 of 1 datagram\(s\) could not be written"):
        sink.submit([Sample("mlmon.prediction.mean", 0.5, (), NOW)])
    sink.close()


def test_unix_socket_delivers(tmp_path) -> None:
    """The Agent's Unix socket (datagram mode) receives the same datagrams."""
    path = tmp_path / "dsd.socket"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        listener = Listener(sock)
        sink = DogStatsdSink(socket_path=str(path))
        sink.submit([Sample("mlmon.prediction.count", 3, ("model:a",), NOW)])
        sink.close()
        (line,) = listener.datagrams()
    assert parse_metric(line) == ("mlmon.prediction.count", 3.0, "g", ["model:a", "host:"], int(NOW))


def test_agent_run_through_dogstatsd_matches_the_recorded_run(duckdb_warehouse, tmp_path: Path, udp,
                                                             monkeypatch) -> None:
    """transport: dogstatsd in the config (with historical ingestion): the agent's window metrics arrive with
    their window-end timestamps, the same values a recording sink gets, and no API key is needed."""
    from mlmon.testing import RecordingSink

    monkeypatch.delenv("DD_API_KEY", raising=False)
    listener, port = udp
    sc = known_answers(NOW)
    duckdb_warehouse.write_predictions(sc.rows)

    def config(state: str, transport: dict) -> object:
        return parse_config({
            "init_config": {"env": "test", "state_dir": str(tmp_path / state), "datadog": transport},
            "instances": [{"name": "ads", "warehouse": duckdb_warehouse.config(),
                           "jobs": {"predictions": {"initial_lookback": "1h"}}}],
        })

    cfg = config("dsd", {"transport": "dogstatsd", "dogstatsd_host": "127.0.0.1", "dogstatsd_port": port,
                         "historical_ingestion": True})
    sink = make_sink(cfg.init_config.datadog)  # type: ignore[attr-defined]
    assert isinstance(sink, DogStatsdSink)
    report = Agent(cfg, sink, clock=lambda: NOW).run_once()[0]  # type: ignore[arg-type]
    assert report.job == "predictions"
    sink.close()
    assert report.errors == 0 and report.windows_processed >= len(sc.window_ends)
    received = {}
    for line in listener.datagrams():
        if not line.startswith("_sc") and line.startswith("mlmon.prediction."):
            name, value, _, tags, ts = parse_metric(line)
            received[(name, tuple(sorted(t for t in tags if t != "host:")), ts)] = value
    recorded = RecordingSink()
    Agent(config("rec", {"transport": "jsonl"}), recorded, clock=lambda: NOW).run_once()  # type: ignore[arg-type]
    expected = {(s.name, s.tags, int(s.timestamp)): s.value for s in recorded.samples
                if s.name.startswith("mlmon.prediction.")}
    assert received.keys() == expected.keys()
    assert all(received[k] == pytest.approx(v, rel=1e-12) for k, v in expected.items())
    assert {ts for _, _, ts in received} >= {int(e) for e in sc.window_ends}
