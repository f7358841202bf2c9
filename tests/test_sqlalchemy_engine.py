"""``engine: sqlalchemy``: any SQLAlchemy URL, queries in the URL's dialect, values bound by ``text()``.

Tested for real against the local PostgreSQL through ``postgresql+psycopg://`` (the same numbers as the
native PostgreSQL engine); BigQuery, Snowflake, Trino, Databricks and Redshift are compiled only
(tests/test_dialects.py) and their URLs mapped to dialects here.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from urllib.parse import quote

import pytest
from tests.helpers import closed_port
from tests.scenarios import write_every_table
from tests.test_parquet import assert_same_numbers, run_agent

from mlmon.cli import _secrets
from mlmon.config import ConfigError, SQLAlchemyWarehouse, parse_config
from mlmon.logs import SecretFilter
from mlmon.runner import Agent
from mlmon.testing import RecordingSink
from mlmon.warehouse.engines import QueryError, SQLAlchemyEngine, WarehouseError, is_numeric_type, open_engine
from mlmon.warehouse.sql import bind_source, parse_template

PASSWORD = "pw-SECRET-Zq7/x@y:%w"
SECRET_FORMS = (PASSWORD, quote(PASSWORD, safe=""), "SECRET")


def sqlalchemy_url(pg_url: str) -> str:
    """The libpq URL of the test server as a SQLAlchemy psycopg 3 URL."""
    return "postgresql+psycopg://" + pg_url.split("://", 1)[1]


def warehouse(url: str, **extra) -> SQLAlchemyWarehouse:
    config = parse_config({"instances": [{"name": "ads", "warehouse": {"engine": "sqlalchemy", "url": url, **extra}}]})
    return config.instances[0].warehouse  # type: ignore[return-value]


@pytest.mark.postgres
def test_sqlalchemy_postgres_gives_the_numbers_of_native_postgres(tmp_path, postgres_warehouse) -> None:
    """Every job, metric by metric: postgresql+psycopg:// through SQLAlchemy = the native psycopg engine."""
    now = time.time()
    write_every_table(postgres_warehouse, now)
    schema = postgres_warehouse.schema
    want = run_agent({"engine": "postgres", "url": postgres_warehouse.url}, now, tmp_path / "native", schema)
    got = run_agent({"engine": "sqlalchemy", "url": sqlalchemy_url(postgres_warehouse.url)}, now, tmp_path / "sa",
                    schema)
    assert_same_numbers(want, got)


@pytest.mark.postgres
def test_a_failed_query_does_not_poison_the_next(postgres_warehouse) -> None:
    """A missing table is a QueryError naming it; the connection still answers the next query."""
    postgres_warehouse.write_predictions([])
    engine = open_engine(warehouse(sqlalchemy_url(postgres_warehouse.url)))
    try:
        count = parse_template("SELECT COUNT(*) AS n FROM __source__ AS src")
        with pytest.raises(QueryError, match=r'postgresql \(sqlalchemy\): relation ".*nowhere" does not exist'):
            engine.fetch(bind_source(count, f"{postgres_warehouse.schema}.nowhere", {}), {})
        assert engine.fetch(bind_source(count, postgres_warehouse.table("predictions"), {}), {}) == [(0,)]
    finally:
        engine.close()


@pytest.mark.postgres
def test_values_are_bound_and_the_session_is_utc(postgres_warehouse) -> None:
    """Quotes in a value are data; the session runs in UTC; percent signs in SQL survive text()."""
    engine = open_engine(warehouse(sqlalchemy_url(postgres_warehouse.url)))
    try:
        query = parse_template("SELECT CAST($v AS VARCHAR) AS v, CAST(7 % 3 AS INTEGER) AS m, "
                               "CAST(current_setting('TimeZone') AS VARCHAR) AS tz")
        assert engine.fetch(query, {"v": "x' OR '1'='1"}) == [("x' OR '1'='1", 1, "UTC")]
    finally:
        engine.close()


@pytest.mark.postgres
def test_column_types_through_sqlalchemy(postgres_warehouse) -> None:
    """psycopg's type OIDs become names that :func:`is_numeric_type` reads."""
    engine = open_engine(warehouse(sqlalchemy_url(postgres_warehouse.url)))
    try:
        query = parse_template("SELECT CAST(1 AS DOUBLE) AS d, CAST(1 AS BIGINT) AS b, CAST('x' AS VARCHAR) AS s, "
                               "TRUE AS t WHERE 1 = 0")
        types = dict(engine.column_types(query, {}))
        assert {k: is_numeric_type(v) for k, v in types.items()} == {"d": True, "b": True, "s": False, "t": False}
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("postgresql+psycopg://u@h/db", "postgres"),
        ("postgresql://u@h/db", "postgres"),
        ("bigquery://project/dataset", "bigquery"),
        ("snowflake://u:p@account/db/schema?warehouse=wh", "snowflake"),
        ("trino://u@host:443/hive/default", "trino"),
        ("databricks://token:dapi123@host?http_path=/sql/1.0/warehouses/x", "databricks"),
        ("redshift+redshift_connector://u:p@cluster:5439/db", "redshift"),
        ("duckdb:///w.duckdb", "duckdb"),
    ],
    ids=["psycopg", "postgresql", "bigquery", "snowflake", "trino", "databricks", "redshift", "duckdb"],
)
def test_dialect_follows_the_url_scheme(url, dialect) -> None:
    """The SQL dialect comes from the scheme, driver suffix ignored."""
    assert warehouse(url).sql_dialect() == dialect


def test_explicit_dialect_wins() -> None:
    """``dialect: spark`` renders Databricks queries in sqlglot's Spark dialect instead."""
    assert warehouse("databricks://token:x@host", dialect="spark").sql_dialect() == "spark"


@pytest.mark.parametrize(
    ("url", "words"),
    [(f"oracle://scott:{PASSWORD}@db/orcl", "cannot tell the SQL dialect from the URL scheme 'oracle'"),
     (f"scott:{PASSWORD}@db", "expected a SQLAlchemy URL")],
    ids=["unknown-scheme", "no-scheme"],
)
def test_url_errors_name_the_key_and_hide_the_url(url, words) -> None:
    """An unusable URL is a config error naming ``warehouse``; no part of the password shows."""
    with pytest.raises(ConfigError) as err:
        warehouse(url)
    text = str(err.value)
    assert "instances -> 0 -> warehouse" in text and words in text
    assert not [s for s in SECRET_FORMS if s in text]


def test_missing_driver_names_the_extra() -> None:
    """A URL whose SQLAlchemy driver is not installed says which extra installs it."""
    if importlib.util.find_spec("sqlalchemy_bigquery") is not None:
        pytest.skip("sqlalchemy-bigquery is installed")
    with pytest.raises(WarehouseError) as err:
        open_engine(warehouse("bigquery://project/dataset"))
    assert str(err.value) == "no SQLAlchemy driver for bigquery URLs: pip install 'mlmon[bigquery]'"


def test_connection_failure_leaks_no_password() -> None:
    """Refused connection: a WarehouseError naming the engine, without any form of the password."""
    url = f"postgresql+psycopg://mlmon:{quote(PASSWORD, safe='')}@127.0.0.1:{closed_port()}/ads"
    with pytest.raises(WarehouseError) as err:
        SQLAlchemyEngine(url, "postgres", "postgresql")
    text = str(err.value)
    assert text.startswith("cannot connect to postgresql (sqlalchemy): ")
    assert not [s for s in SECRET_FORMS if s in text], text


def test_the_log_scrubber_knows_the_url_and_its_password(tmp_path, caplog) -> None:
    """``mlmon``'s log filter hides the URL and its password (as written and decoded), and the agent's
    reports carry neither."""
    url = f"postgresql+psycopg://mlmon:{quote(PASSWORD, safe='')}@127.0.0.1:{closed_port()}/ads"
    config = parse_config({
        "init_config": {"state_dir": str(tmp_path / "state")},
        "instances": [{"name": "sa", "warehouse": {"engine": "sqlalchemy", "url": url},
                       "tables": {"labels": None, "replays": None, "training_runs": None,
                                  "training_features": None}}],
    })
    scrubber = SecretFilter(_secrets(config))
    line = scrubber.scrub(f"url {url} password {PASSWORD} encoded {quote(PASSWORD, safe='')}")
    assert not [s for s in SECRET_FORMS if s in line], line
    with caplog.at_level(logging.DEBUG):
        reports = Agent(config, RecordingSink(), clock=time.time).run_once()
    messages = [m for r in reports for m in r.messages]
    assert any(m.startswith("instance sa: cannot connect to postgresql (sqlalchemy)") for m in messages), messages
    leaked = [s for s in SECRET_FORMS for text in (*messages, caplog.text) if s in text]
    assert not leaked
