"""Apache Spark (``engine: spark``) through PySpark, in a session of the caller's :class:`SparkSessions`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from mlmon.config import SparkWarehouse
from mlmon.warehouse.engines.base import QueryError, WarehouseError
from mlmon.warehouse.engines.parquet import parquet_source
from mlmon.warehouse.engines.spark_sessions import SPARK, SparkSessions, spark_message
from mlmon.warehouse.sql import render


class SparkEngine:
    """Apache Spark through PySpark: Spark catalog tables and Parquet folders registered as views.

    It runs in ``sessions``' child session for ``warehouse`` (by default the process's, :data:`SPARK`).
    """

    dialect = "spark"

    def __init__(self, warehouse: SparkWarehouse, sessions: SparkSessions = SPARK) -> None:
        self._session = sessions.session(warehouse)
        for name, location in warehouse.parquet.items():
            source, folder = parquet_source(name, location)
            reader = self._session.read
            if folder:  # every *.parquet below, key=value folders read as partition columns
                reader = reader.option("pathGlobFilter", "*.parquet")
            try:
                # registered at each open: a view lists its files once, and new files arrive between runs
                reader.parquet(source).createOrReplaceTempView(name)
            except Exception as exc:
                raise WarehouseError(f"warehouse -> parquet -> {name}: cannot read {location}: "
                                     f"{spark_message(exc)}") from None

    def _frame(self, query: exp.Expression, params: Mapping[str, Any]) -> Any:
        # named parameter markers (:start): values are bound by Spark, never spliced into the text
        return self._session.sql(render(query, self.dialect), args=_spark_params(params))

    def _run(self, action: Any) -> Any:
        from py4j.protocol import Py4JError, Py4JNetworkError

        try:
            return action()
        except Py4JNetworkError as exc:
            raise WarehouseError(f"spark session lost: {spark_message(exc)}") from None
        except Py4JError as exc:
            raise QueryError(f"spark: {spark_message(exc)}") from None
        except Exception as exc:
            from pyspark.errors import PySparkException

            if isinstance(exc, PySparkException):
                raise QueryError(f"spark: {spark_message(exc)}") from None
            raise

    def fetch(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        def collect() -> list[tuple[Any, ...]]:
            from pyspark.sql.types import TimestampType

            frame = self._frame(query, params)
            local_ts = [isinstance(f.dataType, TimestampType) for f in frame.schema.fields]
            return [tuple(_utc_naive(v) if is_ts else v for v, is_ts in zip(row, local_ts, strict=True))
                    for row in frame.collect()]

        result: list[tuple[Any, ...]] = self._run(collect)
        return result

    def column_types(self, query: exp.Expression, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        def schema() -> list[tuple[str, str]]:
            fields = self._frame(query, params).schema.fields  # analysed, not run: it reads no rows
            return [(f.name, f.dataType.simpleString()) for f in fields]

        result: list[tuple[str, str]] = self._run(schema)
        return result

    def close(self) -> None:
        """Nothing to release: the session is its :class:`SparkSessions`' (stopped at exit)."""


def _spark_params(params: Mapping[str, Any]) -> dict[str, Any]:
    # PySpark turns a naive datetime into a TIMESTAMP literal through the *process's* local time zone;
    # an aware one is exact
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dt.datetime):
            value = value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
        out[key] = value
    return out


def _utc_naive(value: Any) -> Any:
    # and collect() hands TIMESTAMP values back as naive *local* times (TIMESTAMP_NTZ comes back as is)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value
