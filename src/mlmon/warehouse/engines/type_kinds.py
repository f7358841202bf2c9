"""Type names as engines report them (:meth:`~mlmon.warehouse.engines.Engine.column_types`), read as kinds."""

from __future__ import annotations

import re
from collections.abc import Mapping

#: numeric type names as engines report them (DuckDB: upper-case names; PostgreSQL: ``pg_type`` names;
#: Spark/Databricks: ``DataType.simpleString()``; BigQuery, Snowflake (``FIXED`` is NUMBER), Trino: their
#: DB-API type codes)
_NUMERIC_TYPES = frozenset({
    "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger", "ubigint",
    "uhugeint", "float", "double", "real", "decimal", "numeric",
    "int2", "int4", "int8", "float4", "float8",
    "int", "long", "short", "byte",
    "int64", "float64", "bignumeric", "bigdecimal", "fixed", "number", "decfloat", "double precision",
})


def is_numeric_type(name: str) -> bool:
    """Whether a type name from :meth:`Engine.column_types` is a number type (bool is not)."""
    return name.lower().split("(", 1)[0].strip() in _NUMERIC_TYPES


#: the other kinds of type, by the names engines report (as for :data:`_NUMERIC_TYPES`); Trino and Spark
#: add lengths (``varchar(10)``), Trino precisions (``timestamp(3) with time zone``)
_TYPE_KINDS: Mapping[str, frozenset[str]] = {
    "text": frozenset({"varchar", "text", "string", "char", "character", "character varying", "bpchar", "name",
                       "nvarchar", "nchar"}),
    "boolean": frozenset({"boolean", "bool"}),
    "date": frozenset({"date"}),
    # BigQuery's DATETIME is a civil time: UNIX_SECONDS and TIMESTAMP comparisons reject it
    "datetime": frozenset({"datetime"}),
    "time": frozenset({"time", "timetz", "time with time zone", "time without time zone"}),
    "uuid": frozenset({"uuid"}),
    "binary": frozenset({"blob", "bytea", "binary", "varbinary", "bytes"}),
}


def type_kind(name: str) -> str:
    """The kind of a type name from :meth:`Engine.column_types`: ``number``, ``text``, ``boolean``,
    ``timestamp`` (with or without time zone), ``date``, ``datetime``, ``time``, ``uuid``, ``binary``, or
    ``unknown`` (a type mlmon does not recognise: JSON, VARIANT, an enum, an array...)."""
    if is_numeric_type(name):
        return "number"
    base = re.sub(r"\(.*?\)", "", name.lower()).strip()
    if base.startswith("timestamp"):  # timestamptz, timestamp_ntz, timestamp with time zone, timestamp_ms...
        return "timestamp"
    return next((kind for kind, names in _TYPE_KINDS.items() if base in names), "unknown")
