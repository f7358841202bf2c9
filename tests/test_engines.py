"""The engine registry: every ``engine:`` the config accepts opens, and Spark runs in the caller's sessions."""

from __future__ import annotations

from typing import Any, get_args

from mlmon.config import SparkWarehouse, Warehouse, parse_config
from mlmon.warehouse.engines import ENGINES, SparkEngine, open_engine


def test_every_configured_engine_is_registered() -> None:
    """ENGINES has an opener for each ``engine:`` name of the Warehouse union, and for no other."""
    models = get_args(get_args(Warehouse)[0])
    assert set(ENGINES) == {get_args(m.model_fields["engine"].annotation)[0] for m in models}


class _Sessions:
    """A stand-in for SparkSessions that hands out a marker session and records who asked."""

    def __init__(self) -> None:
        self.asked: list[Any] = []

    def session(self, warehouse: SparkWarehouse) -> Any:
        self.asked.append(warehouse)
        return "the caller's session"


def test_spark_runs_in_the_sessions_it_is_given() -> None:
    """open_engine(warehouse, spark=...) opens the Spark engine in that holder's session, starting no JVM."""
    warehouse = parse_config({"instances": [{"name": "a", "warehouse": {"engine": "spark"}}]}).instances[0].warehouse
    sessions = _Sessions()
    engine = open_engine(warehouse, spark=sessions)  # type: ignore[arg-type]
    assert isinstance(engine, SparkEngine) and engine._session == "the caller's session"
    assert sessions.asked == [warehouse]
