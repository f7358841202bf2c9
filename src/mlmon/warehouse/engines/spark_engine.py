"""Apache Spark (``engine: spark``) through PySpark, in a session of the caller's :class:`SparkSessions`.

``warehouse.query_timeout``: Spark has no statement timeout of its own. Each statement's jobs carry a job tag
of their own (``SparkContext.addJobTag``: a thread-local property, so it is added and removed in the thread
that runs the statement, which in PySpark's pinned-thread mode is the JVM thread that starts its jobs); past
the timeout a :class:`~.base.Watchdog` cancels the jobs with that tag (``cancelJobsWithTag``, from its own
thread; again every second, since a statement may start its jobs later or run several), and the cancelled
statement is a :class:`~.base.QueryTimeout`. Other statements, other instances' sessions and the shared
SparkContext go on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from mlmon.config import SparkWarehouse
from mlmon.warehouse.engines.base import QueryError, WarehouseError, Watchdog, timeout_error
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
        self._query_timeout = warehouse.query_timeout
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
        """``action()`` (a statement: its analysis and its jobs) with its jobs cancelled past the timeout."""
        from py4j.protocol import Py4JError, Py4JNetworkError

        context = self._session.sparkContext
        tag = f"mlmon-{uuid.uuid4().hex}"  # one statement's jobs, not another thread's or instance's
        watchdog = Watchdog(self._query_timeout, lambda: context.cancelJobsWithTag(tag))
        try:
            context.addJobTag(tag)
            with watchdog:
                return action()
        except Py4JNetworkError as exc:
            raise WarehouseError(f"spark session lost: {spark_message(exc)}") from None
        except Py4JError as exc:
            raise self._query_error(exc, watchdog) from None
        except Exception as exc:
            from pyspark.errors import PySparkException

            if isinstance(exc, PySparkException):
                raise self._query_error(exc, watchdog) from None
            raise
        finally:
            with contextlib.suppress(Exception):  # the JVM may be gone
                context.removeJobTag(tag)

    def _query_error(self, exc: Exception, watchdog: Watchdog) -> QueryError:
        if watchdog.fired:  # [SPARK_JOB_CANCELLED] Job 3 cancelled part of cancelled job tags mlmon-...
            return timeout_error("spark", self._query_timeout, spark_message(exc))
        return QueryError(f"spark: {spark_message(exc)}")

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
