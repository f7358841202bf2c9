"""Configuration: one YAML file, ``init_config`` + ``instances``, validated once into frozen models.

Errors name the file and the YAML path (``instances -> 0 -> tables -> predictions``). ``${VAR}``
references in string values are expanded from the environment (an unset variable expands to an
empty string, which optional fields read as "not set"). Defaults live in the models and nowhere else.

The value types are in :mod:`~mlmon.config.types`; the models in :mod:`~mlmon.config.datadog`,
:mod:`~mlmon.config.assets`, :mod:`~mlmon.config.warehouse`, :mod:`~mlmon.config.jobs` and
:mod:`~mlmon.config.instance`; reading the file in :mod:`~mlmon.config.load`. This package lists the
public names.
"""

from mlmon.config.assets import (
    ASSET_IDENTITY_TAG,
    AssetsConfig,
    AssetTag,
    MonitorOverride,
    MonitorThresholds,
    NotifyHandle,
)
from mlmon.config.datadog import DatadogConfig
from mlmon.config.instance import (
    OPTIONAL_COLUMNS,
    OPTIONAL_TABLES,
    TABLE_COLUMNS,
    TIME_COLUMNS,
    Config,
    InitConfig,
    Instance,
    Tables,
)
from mlmon.config.jobs import (
    Jobs,
    PredictionsJob,
    QualityJob,
    ReproducibilityJob,
    ServingFeaturesJob,
    TimestampPolicy,
    TrainingJob,
)
from mlmon.config.load import DEFAULT_CONFIG_PATH, ConfigError, expand_env, load_config, parse_config
from mlmon.config.types import IDENTIFIER_RE, Duration, Identifier, OptionalSecret, OptionalStr, parse_duration
from mlmon.config.warehouse import (
    SQLALCHEMY_DIALECTS,
    DuckDBWarehouse,
    MemorySize,
    ParquetLocation,
    PostgresWarehouse,
    SparkWarehouse,
    SQLAlchemyDialect,
    SQLAlchemyWarehouse,
    ViewName,
    Warehouse,
)

__all__ = [
    "ASSET_IDENTITY_TAG", "DEFAULT_CONFIG_PATH", "IDENTIFIER_RE", "OPTIONAL_COLUMNS", "OPTIONAL_TABLES",
    "SQLALCHEMY_DIALECTS",
    "TABLE_COLUMNS", "TIME_COLUMNS",
    "AssetTag", "AssetsConfig", "Config", "ConfigError", "DatadogConfig", "DuckDBWarehouse", "Duration",
    "Identifier", "InitConfig", "Instance", "Jobs", "MemorySize", "MonitorOverride", "MonitorThresholds",
    "NotifyHandle", "OptionalSecret", "OptionalStr", "ParquetLocation", "PostgresWarehouse", "PredictionsJob",
    "QualityJob", "ReproducibilityJob", "SQLAlchemyDialect", "SQLAlchemyWarehouse", "ServingFeaturesJob",
    "SparkWarehouse", "Tables", "TimestampPolicy", "TrainingJob", "ViewName", "Warehouse", "expand_env",
    "load_config", "parse_config", "parse_duration",
]
