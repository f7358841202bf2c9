"""The file's sections: ``init_config``, each of ``instances`` with its tables and columns, and the whole file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator

from mlmon.config.assets import AssetsConfig
from mlmon.config.datadog import DatadogConfig
from mlmon.config.jobs import Jobs
from mlmon.config.types import Identifier, OptionalStr, _Frozen
from mlmon.config.warehouse import Warehouse

#: Datadog's list price for custom metrics beyond the allotment, in US dollars per 100 custom metrics per month:
#: $5 (https://www.datadoghq.com/pricing/list/, "Custom Metrics"). Pro and Enterprise differ in the allotment each
#: host includes (100 custom metrics per host on Pro, 200 on Enterprise; https://www.datadoghq.com/pricing/), not
#: in this price: mlmon takes the plain list price for additional custom metrics and subtracts no allotment.
#: How the count is billed (the hourly average of distinct series over the month):
#: https://docs.datadoghq.com/account_management/billing/custom_metrics/
DEFAULT_CUSTOM_METRIC_PRICE = 5.0


def _price(value: object) -> object:
    """A price is a number: YAML's ``true`` would otherwise read as 1.0."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number of US dollars per 100 custom metrics per month, such as 5, got {value!r}")
    return value


#: a non-negative finite number of US dollars (a string of one, as ``${VAR}`` expands, is read as the number)
Price = Annotated[float, BeforeValidator(_price), Field(ge=0, allow_inf_nan=False)]


class InitConfig(_Frozen):
    """Settings shared by every instance."""

    env: OptionalStr = None
    state_dir: Path = Path(".mlmon/state")
    #: the most distinct series (metric name and tag set) one job run sends: the ones beyond it are not sent,
    #: counted in ``mlmon.agent.series_capped`` and told in one WARNING (5 000 model versions in an hour once made
    #: 140 000 series in one run); ``mlmon plan`` flags a job whose first run would reach it
    series_cap: int = Field(default=50_000, ge=1)
    #: US dollars per 100 custom metrics per month: ``mlmon plan`` estimates each job's monthly cost from it
    custom_metric_price: Price = DEFAULT_CUSTOM_METRIC_PRICE
    datadog: DatadogConfig = DatadogConfig()
    assets: AssetsConfig = AssetsConfig()


class Tables(_Frozen):
    """Physical table names; ``null`` disables the jobs that need the table.

    A table left at its default name that does not exist in the warehouse skips its jobs (logged
    once); a table named in the config that does not exist is an error.
    """

    predictions: Identifier | None = "predictions"
    labels: Identifier | None = "labels"
    replays: Identifier | None = "replays"
    training_runs: Identifier | None = "training_runs"
    training_features: Identifier | None = "training_features"
    #: the offline validation predictions of each model version: the ``training`` drift reference (optional)
    validation_predictions: Identifier | None = "validation_predictions"
    #: the serving inputs of the ``serving_features`` job; ``null`` (the default): the columns of ``predictions``
    serving_features: Identifier | None = None

    def explicit(self, table: str) -> bool:
        """Whether the config names ``table`` (rather than leaving the default)."""
        return table in self.model_fields_set


TABLE_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "predictions": ("request_id", "ts", "model", "model_version", "prediction"),
    "labels": ("request_id", "label", "label_ts"),
    "replays": ("request_id", "model_version", "prediction"),
    "training_runs": (
        "model", "model_version", "trained_at", "train_rows", "valid_rows", "valid_logloss", "valid_auc",
    ),
    "training_features": ("model", "model_version"),
    "validation_predictions": ("model", "model_version", "prediction"),
    "serving_features": ("request_id", "ts", "model", "model_version"),
}

#: tables a job reads only when they exist (at their default name), and what it does without them
OPTIONAL_TABLES: Mapping[str, str] = {"validation_predictions": "the predictions job's training drift reference"}

#: columns of the data contract a table may have: ``replays.ts`` (when the replayed request was served)
#: bounds the reproducibility statement's scan
OPTIONAL_COLUMNS: Mapping[str, tuple[str, ...]] = {"replays": ("ts",)}

#: the tables read by time, and their time column (a ``partitions:`` entry holds that column's UTC date)
TIME_COLUMNS: Mapping[str, str] = {"predictions": "ts", "labels": "label_ts", "replays": "ts",
                                   "serving_features": "ts"}
#: tables whose other columns are features, named by the jobs' ``features`` (any rename is accepted)
FEATURE_TABLES = ("training_features", "serving_features")


class Instance(_Frozen):
    """One warehouse to watch."""

    name: Identifier
    warehouse: Warehouse
    tables: Tables = Tables()
    columns: dict[str, dict[str, Identifier]] = Field(default_factory=dict)
    #: table -> its date partition column (``dt`` of ``dt=2026-12-01/`` folders: the UTC date of the table's
    #: time column, DATE or ``'YYYY-MM-DD'`` text); the statements then bound it too, so that the engine
    #: reads only the partitions of the windows processed
    partitions: dict[str, Identifier] = Field(default_factory=dict)
    models: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    jobs: Jobs = Jobs()
    #: Datadog Agent check only (``mlmon run`` ignores them): how often the Agent runs the check, and
    #: whether it submits without the Agent's host name
    min_collection_interval: float | None = Field(default=None, gt=0)
    empty_default_hostname: bool = False

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for table, renames in value.items():
            if table not in TABLE_COLUMNS:
                raise ValueError(f"unknown table {table!r}; expected one of {', '.join(TABLE_COLUMNS)}")
            if table in FEATURE_TABLES:
                continue
            known = (*TABLE_COLUMNS[table], *OPTIONAL_COLUMNS.get(table, ()))
            for logical in renames:
                if logical not in known:
                    raise ValueError(
                        f"unknown column {logical!r} for table {table}; expected one of {', '.join(known)}"
                    )
        return value

    @field_validator("partitions")
    @classmethod
    def _time_tables(cls, value: dict[str, str]) -> dict[str, str]:
        for table in value:
            if table not in TIME_COLUMNS:
                raise ValueError(f"unknown table {table!r}; partitions apply to the tables read by time: "
                                 f"{', '.join(TIME_COLUMNS)}")
        return value

    @field_validator("tags")
    @classmethod
    def _tag_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not tag or "," in tag or tag.startswith(("env:", "model:", "model_version:")):
                raise ValueError(f"bad static tag {tag!r} (no commas; env/model tags are set by mlmon)")
        return value

    def partition(self, table: str) -> str | None:
        """The date partition column of ``table`` (None: not partitioned by date, or not said)."""
        return self.partitions.get(table)

    def column(self, table: str, logical: str) -> str:
        """The physical column name for a logical column of the data contract."""
        return self.columns.get(table, {}).get(logical, logical)


class Config(_Frozen):
    """The whole file."""

    init_config: InitConfig = InitConfig()
    instances: tuple[Instance, ...] = Field(min_length=1)

    @field_validator("instances")
    @classmethod
    def _unique_names(cls, value: tuple[Instance, ...]) -> tuple[Instance, ...]:
        names = [i.name for i in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"instance names must be unique; repeated: {', '.join(dupes)}")
        return value

    def base_tags(self, instance: Instance) -> tuple[str, ...]:
        """Tags every metric of ``instance`` carries: ``env:<env>`` and the static tags."""
        env = (f"env:{self.init_config.env}",) if self.init_config.env else ()
        return (*env, *instance.tags)
