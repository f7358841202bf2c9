"""PostgreSQL statements that never come back: a server host that stops answering, and SIGTERM while a statement
hangs. Neither may hold the agent: the first is given up after ``query_timeout`` and as long again (the server's
own ``statement_timeout`` would have answered by then), the second is interrupted with a cancel request (and the
socket shut down if the server does not take it), its windows left pending.

The frozen host is a TCP proxy to the local server that stops forwarding in both directions while keeping both
sockets open: the client's kernel sees a live peer, so only the agent's own bound can end the wait.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlglot
import yaml
from tests.helpers import PG_URL
from tests.scenarios import write_every_table
from tests.test_query_timeout import sleeping_backends

from mlmon.warehouse.engines import QueryError, WarehouseError
from mlmon.warehouse.engines.postgres_engine import KEEPALIVES, PostgresEngine, keepalive_params

pytestmark = pytest.mark.postgres


class FreezableProxy:
    """A TCP proxy to the test server; ``freeze()`` stops it forwarding anything, the sockets left open."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                return
            while self.frozen.is_set():  # held: never forwarded while frozen
                time.sleep(0.05)
            try:
                dst.sendall(data)
            except OSError:
                return

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        self.listener.close()
        for s in self.sockets:
            s.close()


def proxied(url: str, port: int) -> str:
    scheme, rest = url.split("://", 1)
    user, hostpart = rest.split("@", 1)
    return f"{scheme}://{user}@127.0.0.1:{port}/{hostpart.split('/', 1)[1]}"


def test_a_server_that_stops_answering_is_given_up(postgres_warehouse) -> None:
    """query_timeout 1s through a proxy that freezes after the first statement: the next statement fails with a
    WarehouseError saying the server stopped answering, about query_timeout x 2 (+ the cancel's own wait) later,
    instead of waiting for ever; a statement of the same engine before the freeze answers normally."""
    host, port = PG_URL.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = FreezableProxy((host, int(port)))
    try:
        engine = PostgresEngine(proxied(PG_URL, proxy.port), connect_timeout=5, query_timeout=1.0)
        assert engine.fetch(sqlglot.parse_one("SELECT 1 AS one"), {}) == [(1,)]
        proxy.freeze()
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                engine.fetch(sqlglot.parse_one("SELECT 2 AS two"), {})
                outcome.append(None)
            except BaseException as exc:  # the test reads it
                outcome.append(exc)

        started = time.monotonic()
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(30)
        took = time.monotonic() - started
        assert not worker.is_alive(), "the statement still waits after 30 s: no bound on a silent server"
        (error,) = outcome
        assert isinstance(error, WarehouseError), error
        assert "stopped answering" in str(error) and "2 s" in str(error), error
        assert 1.9 < took < 10, took
        engine.close()
    finally:
        proxy.close()


def test_keepalives_are_on_unless_the_url_sets_its_own() -> None:
    """TCP keepalives bound an idle wait on a dead peer; a URL's own keepalive settings win."""
    assert keepalive_params("postgresql://u@h/db") == KEEPALIVES
    assert keepalive_params("postgresql://u@h/db?keepalives_idle=5") == {
        k: v for k, v in KEEPALIVES.items() if k != "keepalives_idle"}


def test_interrupt_cancels_the_statement_on_the_server(postgres_warehouse) -> None:
    """interrupt() from another thread while pg_sleep(60) runs: the statement ends at once as interrupted (a
    QueryError: the server took the cancel, the connection stays usable) and no backend goes on sleeping."""
    engine = PostgresEngine(PG_URL, connect_timeout=5, query_timeout=None)
    marker = f"mlmon_interrupt_{os.getpid()}"
    threading.Timer(1.0, engine.interrupt).start()
    started = time.monotonic()
    with pytest.raises(QueryError, match="interrupted"):
        engine.fetch(sqlglot.parse_one(f"SELECT pg_sleep(60) AS {marker}"), {})
    assert time.monotonic() - started < 5
    assert sleeping_backends(marker) == 0
    assert engine.fetch(sqlglot.parse_one("SELECT 1 AS one"), {}) == [(1,)]
    engine.interrupt()  # nothing in flight: nothing happens
    assert engine.fetch(sqlglot.parse_one("SELECT 2 AS two"), {}) == [(2,)]
    engine.close()


def _config(tmp_path: Path, pg: Any) -> Path:
    config = {
        "init_config": {"env": "test", "state_dir": str(tmp_path / "state"),
                        "datadog": {"api_key": "k-123456", "site": "127.0.0.1:9"}},
        "instances": [{
            "name": "pg", "warehouse": {"engine": "postgres", "url": pg.url, "query_timeout": "1h"},
            "tables": {t: pg.table(t) for t in ("predictions", "labels", "replays", "training_runs",
                                                 "training_features")},
            "jobs": {"predictions": {"enabled": False}, "reproducibility": {"enabled": False},
                     "training": {"enabled": False}, "serving_features": {"enabled": False},
                     "quality": {"initial_lookback": "4h"}},
        }],
    }
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_sigterm_ends_run_once_while_a_statement_hangs(postgres_warehouse, tmp_path) -> None:
    """`mlmon run --once` whose quality statement hangs (labels behind a view that sleeps 10 minutes, query_timeout
    1h): SIGTERM ends the process within seconds, the statement is cancelled on the server (no backend left
    sleeping) and the log says why; the state keeps the windows pending (no watermark past them)."""
    pg = postgres_warehouse
    now = time.time()  # the child runs on the wall clock
    write_every_table(pg, now)
    labels, real = f'"{pg.schema}"."labels"', f'"{pg.schema}"."real_labels"'
    with psycopg.connect(pg.url, autocommit=True) as con:
        con.execute(f'ALTER TABLE {labels} RENAME TO "real_labels"')
        con.execute(f"CREATE VIEW {labels} AS SELECT l.* FROM {real} AS l, (SELECT pg_sleep(600)) AS s")
    env = {**os.environ, "DD_API_KEY": "k-123456"}
    proc = subprocess.Popen([sys.executable, "-m", "mlmon", "run", "--once", "--config", str(_config(tmp_path, pg))],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while sleeping_backends(pg.schema) == 0:
            assert proc.poll() is None and time.monotonic() < deadline, "the statement never started"
            time.sleep(0.2)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 10, f"run --once took {took:.1f}s after SIGTERM"
    assert "ending the statements in flight" in out, out
    assert "interrupted" in out, out
    assert sleeping_backends(pg.schema) == 0
    state = tmp_path / "state" / "pg" / "quality.json"
    if state.exists():  # the first run set the watermark to its first window's start, nothing further
        import json

        watermark = json.loads(state.read_text())["watermark"]
        assert watermark is None or watermark <= now - 4 * 3600
