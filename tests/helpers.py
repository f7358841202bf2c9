"""Test helpers (not fixtures): warehouses to write rows into, the test API key, loopback ports, UTC
datetimes, a DogStatsD listener. The fixtures built on them are in ``conftest.py``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

PG_URL = os.environ.get("MLMON_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

PREDICTION_COLUMNS = ("request_id", "ts", "model", "model_version", "prediction")


class Warehouse:
    """A place to put prediction rows and the config snippet that points mlmon at it."""

    engine: str

    def write_predictions(self, rows: Sequence[tuple[Any, ...]], table: str = "predictions") -> None:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def table(self, name: str) -> str:
        return name


class DuckDBWarehouse(Warehouse):
    engine = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = path

    def write_predictions(self, rows: Sequence[tuple[Any, ...]], table: str = "predictions") -> None:
        import duckdb

        con = duckdb.connect(str(self.path))
        try:
            con.execute(
                f'CREATE TABLE IF NOT EXISTS "{table}" (request_id VARCHAR, ts TIMESTAMP, model VARCHAR, '
                "model_version VARCHAR, prediction DOUBLE)"
            )
            con.executemany(f'INSERT INTO "{table}" VALUES (?, ?, ?, ?, ?)', [tuple(r) for r in rows])
        finally:
            con.close()

    def config(self) -> dict[str, Any]:
        return {"engine": "duckdb", "path": str(self.path)}


class PostgresWarehouse(Warehouse):
    engine = "postgres"

    def __init__(self, url: str, schema: str) -> None:
        self.url = url
        self.schema = schema

    def write_predictions(self, rows: Sequence[tuple[Any, ...]], table: str = "predictions") -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(
                f'CREATE TABLE IF NOT EXISTS "{self.schema}"."{table}" (request_id TEXT, ts TIMESTAMP, '
                "model TEXT, model_version TEXT, prediction DOUBLE PRECISION)"
            )
            with con.cursor() as cur:
                cur.executemany(
                    f'INSERT INTO "{self.schema}"."{table}" VALUES (%s, %s, %s, %s, %s)', [tuple(r) for r in rows]
                )

    def config(self) -> dict[str, Any]:
        return {"engine": "postgres", "url": self.url}

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}"


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except Exception:
        return False


@contextlib.contextmanager
def postgres_schema() -> Iterator[PostgresWarehouse]:
    """A fresh schema on the test server, dropped on the way out; the test is skipped when the server is not
    reachable, and fails instead when ``MLMON_REQUIRE_POSTGRES`` is set."""
    import pytest

    if not postgres_available():
        if os.environ.get("MLMON_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL required but not reachable at {PG_URL}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    import psycopg

    schema = f"mlmon_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield PostgresWarehouse(PG_URL, schema)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as con:
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')


#: the Datadog variables that override the config (mlmon.config.DatadogConfig): a developer's shell or a CI
#: machine that exports them must not send a test's points to a real site
DATADOG_ENV = ("DD_API_KEY", "DATADOG_API_KEY", "DD_APP_KEY", "DATADOG_APP_KEY", "DD_SITE", "DATADOG_HOST",
               "DD_AGENT_HOST", "DD_DOGSTATSD_PORT", "DD_DOGSTATSD_SOCKET")


API_KEY = "test-api-key-0123456789"


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused), free for a server to bind later."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def utc(ts: float) -> dt.datetime:
    """A naive UTC datetime, as stored in TIMESTAMP columns."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None)


class Listener:
    """A datagram socket standing in for the Agent's DogStatsD server: collects what arrives."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(0.5)

    def datagrams(self) -> list[str]:
        out = []
        while True:
            try:
                out.extend(self.sock.recv(65535).decode().splitlines())
            except TimeoutError:
                return out


def asset_root(tmp_path: Path, name: str, dashboard: dict[str, Any]) -> Path:
    """A copy of the shipped monitors, dashboards and catalogue under ``tmp_path/assets``, plus ``dashboard`` as
    ``dashboards/<name>.json``."""
    root = Path(__file__).resolve().parents[1]
    folder = tmp_path / "assets"
    shutil.copytree(root / "monitors", folder / "monitors")
    shutil.copytree(root / "dashboards", folder / "dashboards")
    shutil.copy(root / "metadata.csv", folder)
    (folder / "dashboards" / f"{name}.json").write_text(json.dumps(dashboard))
    return folder
