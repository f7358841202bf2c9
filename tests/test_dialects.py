"""Every query the agent issues renders for every target dialect, and parses back in it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot

from mlmon.config import parse_config
from mlmon.preflight import probe_query
from mlmon.warehouse.cardinality import build_feature_counts_query, build_pairs_query
from mlmon.warehouse.predictions import build_query
from mlmon.warehouse.quality import build_label_balance_query, build_offline_query, build_quality_query
from mlmon.warehouse.reproducibility import build_reproducibility_query
from mlmon.warehouse.serving import build_serving_query
from mlmon.warehouse.sql import DIALECTS, exists_query, render
from mlmon.warehouse.validation import build_validation_query

CONFIG = parse_config({"instances": [{
    "name": "ads",
    "warehouse": {"engine": "duckdb", "path": "w.duckdb"},
    "tables": {"predictions": "analytics.serving.predictions"},
    "columns": {"predictions": {"ts": "served_at", "prediction": "score"}},
    "jobs": {"training": {"features": ["age", "device"]}},
}]})
INSTANCE = CONFIG.instances[0]
#: the same with date partition columns (a data lake's dt=YYYY-MM-DD/ folders) and a renamed replays.ts
LAKE = parse_config({"instances": [{
    **CONFIG.instances[0].model_dump(include={"name", "tables"}),
    "warehouse": {"engine": "duckdb", "path": "w.duckdb"},
    "columns": {"predictions": {"ts": "served_at", "prediction": "score"}, "replays": {"ts": "served_at"}},
    "partitions": {"predictions": "dt", "labels": "dt", "replays": "dt"},
}]}).instances[0]


def every_query():
    yield "predictions", build_query(INSTANCE)
    yield "predictions-filtered", build_query(INSTANCE, ["ctr_a", "cvr_b"])
    yield "quality", build_quality_query(INSTANCE)
    yield "quality-lanes", build_quality_query(INSTANCE, ["ctr_a"], ["cvr_b"])
    yield "label-balance", build_label_balance_query(INSTANCE, ["ctr_a"], ["cvr_b"])
    yield "reproducibility", build_reproducibility_query(INSTANCE, ["ctr_a"])
    yield "reproducibility-untimed", build_reproducibility_query(INSTANCE, ["ctr_a"], timed=False)
    yield "lake-predictions", build_query(LAKE)
    yield "lake-quality", build_quality_query(LAKE, ["ctr_a"], ["cvr_b"])
    yield "lake-reproducibility", build_reproducibility_query(LAKE)
    yield "lake-plan-pairs", build_pairs_query(LAKE)
    yield "offline", build_offline_query(INSTANCE, ["ctr_a"], ["v1", "v2"])
    yield "validation", build_validation_query(INSTANCE, ["ctr_a"], ["v1", "v2"])
    yield "exists", exists_query("analytics.serving.predictions")
    yield "plan-pairs", build_pairs_query(INSTANCE)
    yield "plan-pairs-lanes", build_pairs_query(INSTANCE, ["ctr_a"], ["cvr_b"])
    yield "plan-features", build_feature_counts_query(
        INSTANCE, ["age", "device"], {"age": "numeric", "device": "categorical"}, [2, 1])
    kinds: dict[str, Any] = {"age": "numeric", "device": "categorical"}
    yield "serving", build_serving_query(INSTANCE, list(kinds), kinds, list(kinds), ["ctr_a", "cvr_b"])
    yield "serving-no-reference", build_serving_query(INSTANCE, list(kinds), kinds)
    yield "lake-serving", build_serving_query(LAKE, list(kinds), kinds, ["age"])
    for table in ("predictions", "labels", "replays", "training_runs", "training_features", "validation_predictions"):
        yield f"probe-{table}", probe_query(INSTANCE, table)


QUERIES = dict(every_query())


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", list(QUERIES))
def test_query_compiles_and_round_trips(name: str, dialect: str) -> None:
    """No UnsupportedError; the text parses again in the same dialect; identifiers are quoted."""
    sql = render(QUERIES[name], dialect)
    sqlglot.parse_one(sql, read=dialect)
    quote = "`" if dialect in {"bigquery", "spark", "databricks"} else '"'
    reads_predictions = {"predictions", "predictions-filtered", "quality", "quality-lanes", "label-balance",
                         "reproducibility", "reproducibility-untimed", "plan-pairs", "plan-pairs-lanes", "serving",
                         "serving-no-reference"}
    if name in reads_predictions | {"probe-predictions"} or name.startswith("lake-"):
        assert f"{quote}served_at{quote}" in sql
    if name.startswith("lake-"):  # every table it reads is bounded by its partition column too
        # predictions: the windows and the drift reference; the joins: predictions and labels or replays
        # serving_features: its serving table only (training_features is read by version, not by time)
        assert sql.count(f"{quote}dt{quote}") == (1 if name in {"lake-plan-pairs", "lake-serving"} else 2), sql
    assert "TIME_TO_UNIX" not in sql.upper()  # not a function anywhere but sqlglot's own tree


def test_bigquery_epoch_uses_unix_seconds() -> None:
    """BigQuery has no EPOCH/TIME_TO_UNIX: the window index uses UNIX_SECONDS."""
    assert "UNIX_SECONDS(" in render(QUERIES["predictions"], "bigquery")


def test_config_values_are_placeholders_not_text() -> None:
    """Model names and versions are bound parameters; they never appear in the SQL text."""
    for dialect in DIALECTS:
        for name in ("predictions-filtered", "quality-lanes", "label-balance", "reproducibility", "offline",
                     "plan-pairs-lanes", "serving"):
            sql = render(QUERIES[name], dialect)
            assert "ctr_a" not in sql and "cvr_b" not in sql and "'v2'" not in sql, (name, dialect)


def test_spark_epoch_keeps_the_fraction_of_a_second() -> None:
    """Spark's UNIX_TIMESTAMP truncates to whole seconds; the window index uses UNIX_MICROS / 10^6 like EPOCH."""
    for dialect in ("spark", "databricks"):
        sql = render(QUERIES["predictions"], dialect)
        assert "UNIX_MICROS(" in sql and "UNIX_TIMESTAMP(" not in sql, dialect


@pytest.mark.parametrize("dialect", DIALECTS)
def test_sqlalchemy_renders_colon_placeholders(dialect: str) -> None:
    """For SQLAlchemy's text(), every dialect's bound values are ``:name`` markers, never values."""
    sql = render(QUERIES["quality-lanes"], dialect, placeholders="colon")
    assert ":model_0" in sql and ":exclude_0" in sql
    assert "%(" not in sql and "@model_0" not in sql and "$model_0" not in sql
    assert "ctr_a" not in sql and "cvr_b" not in sql
