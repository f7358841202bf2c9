"""Configuration: one YAML file, ``init_config`` + ``instances``, validated once into frozen models.

Errors name the file and the YAML path (``instances -> 0 -> tables -> predictions``). ``${VAR}``
references in string values are expanded from the environment (an unset variable expands to an
empty string, which optional fields read as "not set"). Defaults live here and nowhere else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_PATH = Path("conf.d/mlmon.d/conf.yaml")

IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HANDLE_RE = re.compile(r"@[^\s@][^\s]*")
_TAG_RE = re.compile(r"[^\s,]+")
#: the tag (monitors) and description marker (dashboards) by which `mlmon assets sync` finds its assets
ASSET_IDENTITY_TAG = "mlmon_asset"


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid. The message names file and path."""


def parse_duration(value: object) -> float:
    """Parse ``30s``, ``10m``, ``1h``, ``1d``, ``1w`` or a number of seconds into seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m, 1h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration such as 30s, 10m, 1h or 1d, got {value!r}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _identifier(value: object) -> str:
    if not isinstance(value, str) or not IDENTIFIER_RE.fullmatch(value):
        raise ValueError(f"expected an identifier matching [A-Za-z_][A-Za-z0-9_.]*, got {value!r}")
    return value


def _empty_to_none(value: object) -> object:
    return None if value == "" else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Identifier = Annotated[str, BeforeValidator(_identifier)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_empty_to_none)]
OptionalStr = Annotated[str | None, BeforeValidator(_empty_to_none)]


def _env(*names: str) -> str | None:
    """The first of ``names`` set to a non-empty value in the environment."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value() or None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_section(cls, data: Any) -> Any:
        # a section whose every setting is commented out (`datadog:`, `jobs:` in conf.yaml.example, as in
        # the Datadog Agent's files) is YAML null: it means the defaults, as an empty mapping does
        return {} if data is None else data


class DatadogConfig(_Frozen):
    """Where and how metrics are sent."""

    api_key: OptionalSecret = None
    app_key: OptionalSecret = None
    site: OptionalStr = None
    api_host: OptionalStr = None
    transport: Literal["api", "jsonl", "dogstatsd"] = "api"
    jsonl_path: Path = Path("metrics.jsonl")
    dogstatsd_host: OptionalStr = None
    dogstatsd_port: int | None = Field(default=None, ge=1, le=65535)
    dogstatsd_socket: OptionalStr = None
    #: Datadog Agent check only: where windows older than ``late_after`` go (the Agent stamps at flush)
    late_windows: Literal["agent", "dogstatsd", "api"] = "agent"
    late_after: Duration = Field(default=15 * 60, gt=0)
    historical_ingestion: bool = False
    ingestion_horizon: Duration = Field(default=50 * 60, gt=0)
    timeout: Duration = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_backoff: Duration = Field(default=1.0, ge=0)
    max_payload_bytes: int = Field(default=450_000, ge=10_000, le=3_000_000)

    @property
    def horizon(self) -> float | None:
        """How old a point's timestamp may be for the destination to keep it: ``ingestion_horizon`` for the API
        and DogStatsD without ``historical_ingestion``; None (any age) then, and for the JSON Lines file."""
        return None if self.transport == "jsonl" or self.historical_ingestion else self.ingestion_horizon

    # One precedence rule, the Datadog Agent's: the config file, with the Datadog environment variables
    # (``DD_*``, and the ``datadog`` package's ``DATADOG_*``) overriding it when set and not empty.

    def resolved_api_key(self) -> str | None:
        """The API key: ``DD_API_KEY`` / ``DATADOG_API_KEY`` when set, else ``api_key``."""
        return _env("DD_API_KEY", "DATADOG_API_KEY") or _secret(self.api_key)

    def resolved_app_key(self) -> str | None:
        """The application key: ``DD_APP_KEY`` / ``DATADOG_APP_KEY`` when set, else ``app_key``."""
        return _env("DD_APP_KEY", "DATADOG_APP_KEY") or _secret(self.app_key)

    def resolved_dogstatsd(self) -> tuple[str, int, str | None]:
        """DogStatsD (host, port, socket path): ``DD_AGENT_HOST``, ``DD_DOGSTATSD_PORT`` and
        ``DD_DOGSTATSD_SOCKET`` when set (as the Datadog client libraries read them), else the config's
        ``dogstatsd_*``, else localhost:8125 over UDP."""
        host = _env("DD_AGENT_HOST") or self.dogstatsd_host or "localhost"
        port_text = _env("DD_DOGSTATSD_PORT")
        port = int(port_text) if port_text and port_text.isdigit() else self.dogstatsd_port or 8125
        socket_path = _env("DD_DOGSTATSD_SOCKET") or self.dogstatsd_socket or None
        return host, port, socket_path

    def resolved_api_host(self) -> str:
        """API base URL: ``DATADOG_HOST``, then ``DD_SITE`` when set; else ``api_host``, then ``site``;
        else datadoghq.com."""
        if _env("DATADOG_HOST"):
            return str(_env("DATADOG_HOST")).rstrip("/")
        if _env("DD_SITE"):
            return f"https://api.{_env('DD_SITE')}"
        if self.api_host:
            return self.api_host.rstrip("/")
        if self.site:
            return f"https://api.{self.site}"
        return "https://api.datadoghq.com"

    def configured_secrets(self) -> list[str]:
        """The keys written in the config, used or overridden: the log scrubber knows both."""
        return [k for k in (_secret(self.api_key), _secret(self.app_key)) if k]


def _notify_handle(value: object) -> str:
    if not isinstance(value, str) or not _HANDLE_RE.fullmatch(value):
        raise ValueError(f"expected a notification handle such as @slack-ml-alerts, got {value!r}")
    return value


def _asset_tag(value: object) -> str:
    if not isinstance(value, str) or not _TAG_RE.fullmatch(value) or value.startswith(ASSET_IDENTITY_TAG + ":"):
        raise ValueError(f"expected a tag such as team:ads (no commas or spaces; {ASSET_IDENTITY_TAG}: is "
                         f"set by mlmon), got {value!r}")
    return value


NotifyHandle = Annotated[str, BeforeValidator(_notify_handle)]
AssetTag = Annotated[str, BeforeValidator(_asset_tag)]


class MonitorThresholds(_Frozen):
    """Threshold overrides: each key given replaces the file's value; ``null`` removes it (not critical)."""

    critical: float | None = None
    warning: float | None = None
    ok: float | None = None
    critical_recovery: float | None = None
    warning_recovery: float | None = None

    @model_validator(mode="after")
    def _critical_stays(self) -> MonitorThresholds:
        if "critical" in self.model_fields_set and self.critical is None:
            raise ValueError("critical cannot be removed, only changed")
        return self

    def overrides(self) -> dict[str, float | None]:
        """The thresholds the config sets (``None``: remove that threshold)."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class MonitorOverride(_Frozen):
    """Changes to one shipped monitor, keyed by its file name under ``monitors/`` without ``.json``."""

    enabled: bool = True
    thresholds: MonitorThresholds = MonitorThresholds()
    #: handles for this monitor instead of ``assets.notify`` (``[]``: none)
    notify: tuple[NotifyHandle, ...] | None = None
    tags: tuple[AssetTag, ...] = ()


class AssetsConfig(_Frozen):
    """How ``mlmon assets sync`` adapts the shipped dashboards and monitors to an account."""

    notify: tuple[NotifyHandle, ...] = ()
    tags: tuple[AssetTag, ...] = ()
    monitors: dict[str, MonitorOverride] = Field(default_factory=dict)


class InitConfig(_Frozen):
    """Settings shared by every instance."""

    env: OptionalStr = None
    state_dir: Path = Path(".mlmon/state")
    datadog: DatadogConfig = DatadogConfig()
    assets: AssetsConfig = AssetsConfig()


#: the name of a view a Parquet entry registers (no dots: a view lives in no schema)
_VIEW_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _view_name(value: object) -> str:
    if not isinstance(value, str) or not _VIEW_RE.fullmatch(value):
        raise ValueError(f"expected a view name matching [A-Za-z_][A-Za-z0-9_]* (no dots), got {value!r}")
    return value


ViewName = Annotated[str, BeforeValidator(_view_name)]


def _parquet_location(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a Parquet folder, file or glob")
    return value


ParquetLocation = Annotated[str, BeforeValidator(_parquet_location)]


_MEMORY_RE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _memory_size(value: object) -> str:
    if not isinstance(value, str) or not _MEMORY_RE.fullmatch(value.strip()):
        raise ValueError(f"expected a size such as 256MB or 2GB, got {value!r}")
    return value.strip()


MemorySize = Annotated[str, BeforeValidator(_memory_size)]


class DuckDBWarehouse(_Frozen):
    """The embedded engine: a DuckDB file (opened read-only) and/or folders of Parquet files."""

    engine: Literal["duckdb"]
    #: the database file; leave it out when every table comes from ``parquet`` (in-memory DuckDB)
    path: Path | None = None
    #: view name -> Parquet folder (every ``*.parquet`` below it, ``key=value`` folders read as columns),
    #: file or glob; each becomes a view that ``tables:`` can name
    parquet: dict[ViewName, ParquetLocation] = Field(default_factory=dict)
    #: DuckDB's buffer memory cap (``256MB``, ``2GB``); beyond it joins, sorts and aggregations spill to
    #: ``temp_directory``. Keeps the agent small next to the service it watches; raise it to spill less.
    memory_limit: MemorySize = "256MB"
    #: worker threads (default: DuckDB's, one per core)
    threads: int | None = Field(default=None, ge=1)
    #: where DuckDB spills (default: DuckDB's, ``<path>.tmp`` or ``.tmp`` in the working directory)
    temp_directory: Path | None = None

    @model_validator(mode="after")
    def _path_or_parquet(self) -> DuckDBWarehouse:
        if self.path is None and not self.parquet:
            raise ValueError("give path (a DuckDB file), parquet (view name -> folder), or both")
        return self


class PostgresWarehouse(_Frozen):
    """A PostgreSQL server, by libpq URL (``postgresql://user:password@host:5432/db``)."""

    engine: Literal["postgres"]
    url: SecretStr
    connect_timeout: Duration = Field(default=10.0, gt=0)


class SparkWarehouse(_Frozen):
    """Apache Spark through PySpark: a local master, a cluster, or Parquet folders read by Spark.

    One Spark session serves the whole process (a JVM per job would be slow); it runs in UTC.
    """

    engine: Literal["spark"]
    #: ``local[N]``, ``spark://host:7077``, ``yarn``, ``k8s://...``; ignored when a session already runs
    master: str = "local[2]"
    #: Spark settings (``spark.sql.shuffle.partitions: 8``); static ones apply when the session starts
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)
    #: view name -> Parquet folder or glob, registered as temporary views; other tables are catalog tables
    parquet: dict[ViewName, ParquetLocation] = Field(default_factory=dict)

    @field_validator("conf")
    @classmethod
    def _spark_keys(cls, value: dict[str, object]) -> dict[str, object]:
        for key in value:
            if not key.startswith("spark."):
                raise ValueError(f"expected Spark settings (spark.*), got {key!r}")
        return value


#: URL scheme (before any ``+driver``) -> sqlglot dialect
_URL_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9.-]*)(?:\+[A-Za-z0-9_.-]+)?://")
SQLALCHEMY_DIALECTS: Mapping[str, str] = {
    "postgresql": "postgres", "postgres": "postgres", "duckdb": "duckdb", "bigquery": "bigquery",
    "snowflake": "snowflake", "trino": "trino", "databricks": "databricks", "redshift": "redshift",
}
SQLAlchemyDialect = Literal["postgres", "duckdb", "bigquery", "snowflake", "trino", "databricks", "spark", "redshift"]


class SQLAlchemyWarehouse(_Frozen):
    """Any warehouse with a SQLAlchemy driver (BigQuery, Snowflake, Trino, Databricks SQL, Redshift, ...).

    The SQL dialect follows the URL's scheme unless ``dialect`` is given; the URL may hold a password or
    token and is never logged.
    """

    engine: Literal["sqlalchemy"]
    url: SecretStr
    dialect: SQLAlchemyDialect | None = None

    @model_validator(mode="after")
    def _known_dialect(self) -> SQLAlchemyWarehouse:
        # the messages quote the scheme only: the rest of the URL may hold a password
        if not _URL_SCHEME_RE.match(self.url.get_secret_value()):
            raise ValueError("expected a SQLAlchemy URL such as snowflake://user:password@account/db")
        if self.dialect is None and self.scheme() not in SQLALCHEMY_DIALECTS:
            raise ValueError(
                f"cannot tell the SQL dialect from the URL scheme {self.scheme()!r}; set dialect to one of "
                f"{', '.join(get_args(SQLAlchemyDialect))}"
            )
        return self

    def scheme(self) -> str:
        """The URL's scheme without its driver (``postgresql+psycopg://`` -> ``postgresql``)."""
        match = _URL_SCHEME_RE.match(self.url.get_secret_value())
        return match.group(1).lower() if match else ""

    def sql_dialect(self) -> str:
        """The sqlglot dialect queries are rendered in."""
        return self.dialect or SQLALCHEMY_DIALECTS[self.scheme()]


Warehouse = Annotated[
    DuckDBWarehouse | PostgresWarehouse | SparkWarehouse | SQLAlchemyWarehouse, Field(discriminator="engine")
]


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
}


TimestampPolicy = Literal["window_end", "send_time"]


class _WindowJob(_Frozen):
    """Settings every windowed job shares."""

    enabled: bool = True
    interval: Duration = Field(default=3600, gt=0)
    window: Duration = Field(default=3600, ge=60)
    initial_lookback: Duration = Field(default=3600, ge=0)
    timestamp_policy: TimestampPolicy = "send_time"
    max_windows_per_query: int = Field(default=24, ge=1, le=10_000)

    @model_validator(mode="after")
    def _window_divides_day(self) -> _WindowJob:
        if 86400 % self.window:
            raise ValueError("window must divide a day evenly (e.g. 5m, 10m, 15m, 1h)")
        return self


class PredictionsJob(_WindowJob):
    """Descriptive statistics, same-value ratio, invalid counts and drift of served predictions."""

    interval: Duration = Field(default=600, gt=0)
    window: Duration = Field(default=600, ge=60)
    lateness: Duration = Field(default=300, ge=0)
    drift_reference: Duration = Field(default=86400, gt=0)
    #: PSI and KS are sent only when the window and its reference both hold this many valid rows:
    #: PSI's noise floor is about 9 * (1/n_ref + 1/n_cur), 0.06 at 300 rows, near the alert threshold below
    drift_min_rows: int = Field(default=300, ge=0)
    timestamp_policy: TimestampPolicy = "window_end"
    max_windows_per_query: int = Field(default=36, ge=1, le=10_000)

    @model_validator(mode="after")
    def _reference_multiple(self) -> PredictionsJob:
        if self.drift_reference % self.window:
            raise ValueError("drift_reference must be a multiple of window")
        return self


class QualityJob(_WindowJob):
    """Online logloss, AUC, calibration and more on predictions joined with their matured labels.

    A window is processed once ``end + label_delay`` has passed (per model with
    ``label_delay_by_model``); only label rows with ``label_ts`` before that moment count, so a
    window's numbers do not depend on when the agent ran.
    """

    label_delay: Duration = Field(default=3600, ge=0)
    label_delay_by_model: dict[str, Duration] = Field(default_factory=dict)
    #: a valid prediction with no label row counted for it: ``skip`` leaves it unlabeled (out of every
    #: metric but ``label_coverage``), ``negative`` counts it as label 0 once its window has matured, for
    #: labels tables that hold only the positives (clicks, conversions). Label rows that are all invalid
    #: values stay an invalid label either way.
    missing_label: Literal["skip", "negative"] = "skip"


class ReproducibilityJob(_WindowJob):
    """Share of online predictions that the offline replays reproduce within tolerance."""

    replay_delay: Duration = Field(default=3600, ge=0)
    atol: float = Field(default=1e-6, ge=0)
    rtol: float = Field(default=1e-4, ge=0)


class TrainingJob(_Frozen):
    """Offline metrics, training-row trends and feature breakdowns of each model's latest version."""

    enabled: bool = True
    interval: Duration = Field(default=3600, gt=0)
    #: columns of ``training_features`` to break down; numeric columns get mean/stddev, others top-K shares
    features: tuple[Identifier, ...] = ()
    #: features to treat as categorical even when their column is numeric (e.g. integer-coded ids)
    categorical: tuple[Identifier, ...] = ()
    top_k: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _categorical_are_features(self) -> TrainingJob:
        unknown = sorted(set(self.categorical) - set(self.features))
        if unknown:
            raise ValueError(f"categorical lists columns that are not in features: {', '.join(unknown)}")
        return self


class Jobs(_Frozen):
    """Per-job settings."""

    predictions: PredictionsJob = PredictionsJob()
    quality: QualityJob = QualityJob()
    reproducibility: ReproducibilityJob = ReproducibilityJob()
    training: TrainingJob = TrainingJob()


class Instance(_Frozen):
    """One warehouse to watch."""

    name: Identifier
    warehouse: Warehouse
    tables: Tables = Tables()
    columns: dict[str, dict[str, Identifier]] = Field(default_factory=dict)
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
            if table == "training_features":
                continue
            for logical in renames:
                if logical not in TABLE_COLUMNS[table]:
                    raise ValueError(
                        f"unknown column {logical!r} for table {table}; "
                        f"expected one of {', '.join(TABLE_COLUMNS[table])}"
                    )
        return value

    @field_validator("tags")
    @classmethod
    def _tag_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not tag or "," in tag or tag.startswith(("env:", "model:", "model_version:")):
                raise ValueError(f"bad static tag {tag!r} (no commas; env/model tags are set by mlmon)")
        return value

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


def expand_env(value: Any) -> Any:
    """Expand ``${VAR}`` in every string of a loaded YAML tree (unset variables become "")."""
    if isinstance(value, str):
        return _ENV_RE.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    return value


def _format_errors(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    errors = error.errors(include_url=False, include_input=False)
    # an invalid instance also leaves the tuple short of its minimum length: that line says nothing more
    bad_items = {str(e["loc"][0]) for e in errors if len(e["loc"]) > 1}
    for err in errors:
        if err["type"] == "too_short" and tuple(map(str, err["loc"])) in {(k,) for k in bad_items}:
            continue
        loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "tagged-union"))]
        # a discriminated union adds the tag ("duckdb") to the path; keep the user's path
        path = " -> ".join(p for p in loc if p not in ("duckdb", "postgres", "spark", "sqlalchemy")) or "(top level)"
        lines.append(f"  {path}: {err['msg']}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> Config:
    """Validate an already-loaded YAML tree. Raises :class:`ConfigError` naming ``source``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with init_config and instances")
    try:
        return Config.model_validate(expand_env(data))
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, without PyYAML's quote of the line: that line may hold a key or password."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    context = getattr(exc, "context", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{context + ': ' if context else ''}{problem}{where}"


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, expand and validate a config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    return parse_config(data, str(path))
