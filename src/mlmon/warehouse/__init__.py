"""The warehouse layer: the only place that knows SQL or an engine. It returns aggregates, never rows."""

from mlmon.warehouse.engines import Engine, QueryError, WarehouseError, open_engine
from mlmon.warehouse.sql import DIALECTS, render

__all__ = ["DIALECTS", "Engine", "QueryError", "WarehouseError", "open_engine", "render"]
