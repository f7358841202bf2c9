"""Shared fixtures: warehouses (a real DuckDB file, a real PostgreSQL schema) and a loopback intake."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import (
    DATADOG_ENV,
    PG_URL,
    DuckDBWarehouse,
    Listener,
    PostgresWarehouse,
    Warehouse,
    postgres_available,
)

from mlmon.testing import IntakeServer


@pytest.fixture(autouse=True)
def _no_datadog_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DATADOG_ENV:
        monkeypatch.delenv(name, raising=False)



@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture
def postgres_warehouse() -> Iterator[PostgresWarehouse]:
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


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    return request.getfixturevalue(f"{request.param}_warehouse")


@pytest.fixture
def intake() -> Iterator[IntakeServer]:
    with IntakeServer(valid_keys=("test-api-key-0123456789",)) as server:
        yield server


@pytest.fixture
def udp() -> Iterator[tuple[Listener, int]]:
    """A DogStatsD listener on a loopback UDP port, and the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield Listener(sock), sock.getsockname()[1]
