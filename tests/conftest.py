"""Shared fixtures: warehouses (a real DuckDB file, a real PostgreSQL schema) and a loopback intake."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import (
    DATADOG_ENV,
    DuckDBWarehouse,
    Listener,
    PostgresWarehouse,
    Warehouse,
    postgres_schema,
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
    with postgres_schema() as warehouse:
        yield warehouse


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
