"""Config: the shipped example loads; errors name the file and the YAML path; env expansion; durations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mlmon.cli import main
from mlmon.config import ConfigError, load_config, parse_config, parse_duration

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "conf.d" / "mlmon.d" / "conf.yaml.example"


def minimal(**instance) -> dict:
    return {"instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": "w.duckdb"}, **instance}]}


#: the example's required settings, at their placeholder values (mlmon init --name and --warehouse fill them)
EXAMPLE_REQUIRED = {"instances": [{"name": "main", "warehouse": {"engine": "duckdb", "path": "warehouse.duckdb"}}]}
_PARAM_RE = re.compile(r"^\s*## @param (\S+) - .+ - optional - default: (.+)$")
_COMMENTED_RE = re.compile(r"^(\s*)# (\w+): (.+)$")
#: documented defaults that the model leaves unset (None) and that apply later: the Agent's interval, and the
#: site used when neither api_host nor the environment names one
NOT_MODEL_DEFAULTS = {"min_collection_interval", "site"}


def _literal(text: str) -> object:
    """A documented default that is one YAML value (15, 10m, api, []), else None (none, $DD_SITE, prose)."""
    if text == "none" or "$" in text or " " in text:
        return None
    return yaml.safe_load(text)


def commented_defaults(text: str) -> list[tuple[int, str, bool]]:
    """Each commented-out setting shown at a documented default: (line number, the setting uncommented,
    whether uncommenting it fits the example's DuckDB instance). Asserts that the shown value is the
    documented default; a setting shown with an example value (env: prod, threads: 2) is left out."""
    found: list[tuple[int, str, bool]] = []
    block: dict[str, str] = {}
    other_engine = False
    for number, line in enumerate(text.splitlines()):
        if not line.strip():
            block, other_engine = {}, False
        elif param := _PARAM_RE.match(line):
            block[param.group(1)] = param.group(2)
        elif line.lstrip().startswith("## engine ") and "duckdb" not in line:
            other_engine = True  # postgres/spark settings do not belong under the example's duckdb warehouse
        elif (setting := _COMMENTED_RE.match(line)) and block:
            indent, key, shown = setting.groups()
            value = yaml.safe_load(shown)
            entries = value if isinstance(value, dict) and key not in block else {None: value}
            defaults = {k: _literal(block.get(key if k is None else f"{key}.{k}", "none")) for k in entries}
            # an empty default ({}, []) is shown by an example, as Datadog's files do
            defaults = {k: None if d in ({}, []) and entries[k] else d for k, d in defaults.items()}
            for k, default in defaults.items():
                if default is not None:
                    assert entries[k] == default, f"line {number + 1}: {k or key} shown as {entries[k]!r}, "\
                                                  f"documented default {default!r}"
            if all(d is not None for d in defaults.values()):
                found.append((number, f"{indent}{key}: {shown}", not other_engine and key not in NOT_MODEL_DEFAULTS))
    return found


def test_example_sets_only_the_required_settings() -> None:
    """The shipped example loads, and only its required settings are set: everything else is commented out,
    so the example's config is the placeholder instance with every default."""
    assert load_config(EXAMPLE) == parse_config(EXAMPLE_REQUIRED)


def test_commented_out_settings_show_the_model_defaults(tmp_path) -> None:
    """A commented-out setting shows its documented default, and that is the model's: the example with
    every such line uncommented loads to the same config as with none."""
    text = EXAMPLE.read_text()
    shown = commented_defaults(text)
    assert len(shown) >= 15, shown  # not vacuous: most optional settings have a one-value default
    lines = text.splitlines()
    for number, setting, fits in shown:
        if fits:
            lines[number] = setting
    uncommented = tmp_path / "conf.yaml"
    uncommented.write_text("\n".join(lines) + "\n")
    assert load_config(uncommented) == parse_config(EXAMPLE_REQUIRED)
    assert "    jsonl_path: metrics.jsonl" in lines and "      memory_limit: 256MB" in lines  # they were uncommented


def test_a_section_with_every_setting_commented_out_means_the_defaults(tmp_path) -> None:
    """`init_config:`, `datadog:` or `jobs:` with nothing but comments below (YAML null) is the defaults, as an
    empty mapping is and as the Datadog Agent reads its files."""
    f = tmp_path / "conf.yaml"
    f.write_text("init_config:\n  datadog:\n    # site: datadoghq.com\n  assets:\n"
                 "instances:\n  - name: main\n    warehouse: {engine: duckdb, path: warehouse.duckdb}\n"
                 "    jobs:\n      quality:\n")
    assert load_config(f) == parse_config(EXAMPLE_REQUIRED)
    f.write_text("init_config:\ninstances:\n  - name: main\n    warehouse: {engine: duckdb, path: warehouse.duckdb}\n")
    assert load_config(f) == parse_config(EXAMPLE_REQUIRED)


def test_every_model_field_is_documented_in_the_example() -> None:
    """Each config key has an @param line in the example."""
    from mlmon import config

    text = EXAMPLE.read_text()
    models = ((config.InitConfig, ""), (config.DatadogConfig, ""), (config.AssetsConfig, "assets."),
              (config.MonitorOverride, "assets.monitors.<name>."), (config.Instance, ""),
              (config.DuckDBWarehouse, ""), (config.PostgresWarehouse, ""), (config.SparkWarehouse, ""),
              (config.SQLAlchemyWarehouse, ""), (config.PredictionsJob, "predictions."),
              (config.QualityJob, "quality."), (config.ReproducibilityJob, "reproducibility."),
              (config.TrainingJob, "training."), (config.ServingFeaturesJob, "serving_features."))
    for model, prefix in models:
        for name in model.model_fields:
            if name in {"datadog", "jobs"}:
                continue
            assert f"@param {prefix}{name} " in text, f"{prefix}{name} undocumented"


def test_config_is_frozen() -> None:
    """Validated config cannot be changed after load."""
    cfg = parse_config(minimal())
    with pytest.raises(Exception, match="frozen"):
        cfg.instances[0].name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        (minimal(tables={"predictions": "preds; DROP TABLE x"}), "instances -> 0 -> tables -> predictions",
         "identifier"),
        (minimal(jobs={"predictions": {"interval": "ten minutes"}}),
         "instances -> 0 -> jobs -> predictions -> interval", "duration"),
        ({"instances": [{"name": "a", "warehouse": {"engine": "oracle"}}]}, "instances -> 0 -> warehouse", "engine"),
        (minimal(colums={}), "instances -> 0 -> colums", "not permitted"),
        (minimal(columns={"predictions": {"score": "s"}}), "instances -> 0 -> columns", "unknown column 'score'"),
        ({"instances": []}, "instances", "at least 1"),
        (minimal(jobs={"predictions": {"window": "7m"}}), "instances -> 0 -> jobs -> predictions", "divide a day"),
        ({"instances": [{"name": "a", "warehouse": {"engine": "duckdb", "path": "w", "memory_limit": "lots"}}]},
         "instances -> 0 -> warehouse -> memory_limit", "256MB"),
        ({"instances": [{"name": "a", "warehouse": {"engine": "spark", "conf": {"x": 1}}}]},
         "instances -> 0 -> warehouse -> conf", "spark."),
    ],
    ids=["sql-in-identifier", "bad-duration", "bad-engine", "unknown-key", "unknown-column", "no-instances", "window",
         "memory-limit", "spark-conf"],
)
def test_errors_name_file_and_path(tmp_path, data, path, words) -> None:
    """A bad value is reported with the file, the YAML path and what was expected."""
    f = tmp_path / "conf.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_config(f)
    text = str(err.value)
    assert str(f) in text and path in text and words in text, text


def test_one_bad_instance_is_one_line() -> None:
    """An invalid instance is reported once, at its own path (not also as "instances: too short")."""
    with pytest.raises(ConfigError) as err:
        parse_config({"instances": [{"name": "a", "warehouse": {"engine": "duckdb", "path": "w", "threads": 0}}]})
    lines = str(err.value).splitlines()[1:]
    assert len(lines) == 1 and lines[0].startswith("  instances -> 0 -> warehouse -> threads:"), lines


def test_duckdb_settings_reach_the_engine(tmp_path) -> None:
    """memory_limit, threads and temp_directory are DuckDB's settings on the agent's connection."""
    import duckdb

    from mlmon.warehouse.engines import open_engine

    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    warehouse = {"engine": "duckdb", "path": str(path)}
    defaults = parse_config({"instances": [{"name": "a", "warehouse": warehouse}]}).instances[0].warehouse
    tuned = parse_config({"instances": [{"name": "a", "warehouse": {
        **warehouse, "memory_limit": "1GB", "threads": 1, "temp_directory": str(tmp_path / "spill")}}]})
    settings = ("memory_limit", "threads", "temp_directory", "TimeZone")
    probe = "SELECT " + ", ".join(f"current_setting('{s}')" for s in settings)
    results = []
    for config in (defaults, tuned.instances[0].warehouse):
        engine = open_engine(config)
        try:
            results.append(engine._con.execute(probe).fetchone())  # type: ignore[attr-defined]
        finally:
            engine.close()
    (limit, _, _, zone), (tuned_limit, threads, temp, tuned_zone) = results
    assert limit == "244.1 MiB" and zone == tuned_zone == "UTC"  # DuckDB reports 256 MB in MiB
    assert (tuned_limit, threads, temp) == ("953.6 MiB", 1, str(tmp_path / "spill"))


def test_cli_exits_2_on_bad_config(tmp_path, capsys) -> None:
    """Usage/config errors exit 2 with the message on stderr."""
    f = tmp_path / "conf.yaml"
    f.write_text("instances: [{name: 'x y', warehouse: {engine: duckdb, path: a}}]")
    assert main(["run", "--once", "--config", str(f)]) == 2
    assert "instances -> 0 -> name" in capsys.readouterr().err
    assert main(["run", "--once", "--config", str(tmp_path / "missing.yaml")]) == 2


def test_yaml_is_loaded_safely(tmp_path, capsys) -> None:
    """A YAML tag that would run code is refused as a config error naming the file; nothing runs."""
    marker = tmp_path / "ran"
    f = tmp_path / "conf.yaml"
    f.write_text(f'init_config: !!python/object/apply:os.system ["touch {marker}"]\ninstances: []\n')
    assert main(["check", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "not valid YAML" in err
    assert not marker.exists()


def test_env_expansion_and_secret_fallbacks(monkeypatch) -> None:
    """${VAR} expands; an unset optional secret falls back to DD_API_KEY/DATADOG_API_KEY."""
    monkeypatch.setenv("WH", "/data/w.duckdb")
    monkeypatch.delenv("DD_API_KEY", raising=False)
    monkeypatch.setenv("DATADOG_API_KEY", "from-datadog-env")
    monkeypatch.setenv("DD_SITE", "datadoghq.eu")
    monkeypatch.delenv("DATADOG_HOST", raising=False)
    cfg = parse_config({"init_config": {"datadog": {"api_key": "${UNSET_VAR_XYZ}"}},
                        "instances": [{"name": "a", "warehouse": {"engine": "duckdb", "path": "${WH}"}}]})
    assert str(cfg.instances[0].warehouse.path) == "/data/w.duckdb"
    assert cfg.init_config.datadog.resolved_api_key() == "from-datadog-env"
    assert cfg.init_config.datadog.resolved_api_host() == "https://api.datadoghq.eu"
    monkeypatch.setenv("DATADOG_HOST", "https://api.us5.datadoghq.com")
    assert cfg.init_config.datadog.resolved_api_host() == "https://api.us5.datadoghq.com"


PRECEDENCE = [
    # (config datadog section, environment, expected API host, expected API key)
    pytest.param({}, {}, "https://api.datadoghq.com", None, id="defaults"),
    pytest.param({"site": "us3.datadoghq.com", "api_key": "cfg-key"}, {},
                 "https://api.us3.datadoghq.com", "cfg-key", id="config-only"),
    pytest.param({"site": "us3.datadoghq.com", "api_key": "cfg-key"},
                 {"DD_SITE": "datadoghq.eu", "DD_API_KEY": "env-key"},
                 "https://api.datadoghq.eu", "env-key", id="DD_SITE-and-DD_API_KEY-override-config"),
    pytest.param({"api_host": "https://api.us5.datadoghq.com"}, {"DATADOG_HOST": "http://127.0.0.1:9/"},
                 "http://127.0.0.1:9", None, id="DATADOG_HOST-overrides-api_host"),
    pytest.param({"site": "us3.datadoghq.com"}, {"DATADOG_HOST": "http://127.0.0.1:9", "DD_SITE": "datadoghq.eu"},
                 "http://127.0.0.1:9", None, id="DATADOG_HOST-before-DD_SITE"),
    pytest.param({"api_key": "cfg-key"}, {"DATADOG_API_KEY": "datadog-env-key"},
                 "https://api.datadoghq.com", "datadog-env-key", id="DATADOG_API_KEY-overrides-config"),
    pytest.param({"site": "us3.datadoghq.com", "api_key": "cfg-key"}, {"DD_SITE": "", "DD_API_KEY": ""},
                 "https://api.us3.datadoghq.com", "cfg-key", id="empty-variables-are-unset"),
]


@pytest.mark.parametrize(("datadog", "environ", "host", "key"), PRECEDENCE)
def test_environment_overrides_config(monkeypatch, datadog, environ, host, key) -> None:
    """The Agent's rule: the config file, with DD_*/DATADOG_* variables overriding it when set and not empty."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    cfg = parse_config({"init_config": {"datadog": datadog}, **minimal()}).init_config.datadog
    assert cfg.resolved_api_host() == host
    assert cfg.resolved_api_key() == key


def test_dogstatsd_environment_overrides_config(monkeypatch) -> None:
    """DD_AGENT_HOST, DD_DOGSTATSD_PORT and DD_DOGSTATSD_SOCKET beat dogstatsd_* in the file, as the Agent's do."""
    datadog = {"transport": "dogstatsd", "dogstatsd_host": "cfg-host", "dogstatsd_port": 8200}
    cfg = parse_config({"init_config": {"datadog": datadog}, **minimal()}).init_config.datadog
    assert cfg.resolved_dogstatsd() == ("cfg-host", 8200, None)
    monkeypatch.setenv("DD_AGENT_HOST", "10.0.0.7")
    monkeypatch.setenv("DD_DOGSTATSD_PORT", "8126")
    monkeypatch.setenv("DD_DOGSTATSD_SOCKET", "/var/run/datadog/dsd.socket")
    assert cfg.resolved_dogstatsd() == ("10.0.0.7", 8126, "/var/run/datadog/dsd.socket")


def test_overridden_config_key_is_still_scrubbed(monkeypatch) -> None:
    """A key written in the file but overridden by DD_API_KEY is still known to the log scrubber."""
    from mlmon.sinks.factory import secrets_of

    monkeypatch.setenv("DD_API_KEY", "env-key-0123")
    cfg = parse_config({"init_config": {"datadog": {"api_key": "file-key-4567"}}, **minimal()}).init_config.datadog
    assert {"env-key-0123", "file-key-4567"} <= set(secrets_of(cfg, []))


def test_password_is_hidden_in_repr() -> None:
    """Secrets are SecretStr: printing the config does not show them."""
    cfg = parse_config({"init_config": {"datadog": {"api_key": "sekrit-key-123"}},
                        "instances": [{"name": "a", "warehouse": {"engine": "postgres",
                                                                  "url": "postgresql://u:pw-sekrit@h/db"}}]})
    assert "sekrit" not in repr(cfg) and "sekrit" not in str(cfg.model_dump())


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("1h", 3600), ("1d", 86400), (90, 90),
                                                ("1.5h", 5400), ("250ms", 0.25)])
def test_durations(text, seconds) -> None:
    """Durations parse to seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["-5m", "5 minutes", True, "m"])
def test_bad_durations(bad) -> None:
    """Anything else is refused."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("init", "warehouse", "where", "variable"),
    [({}, {"engine": "postgres", "url": "${MLMON_TEST_UNSET_URL}"}, "instances -> 0 -> warehouse -> url",
      "MLMON_TEST_UNSET_URL"),
     ({"state_dir": "${MLMON_TEST_UNSET_DIR}"}, {"engine": "duckdb", "path": "w.duckdb"}, "init_config -> state_dir",
      "MLMON_TEST_UNSET_DIR"),
     ({}, {"engine": "duckdb", "path": "${MLMON_TEST_EMPTY}/w.duckdb"}, None, None)],
    ids=["url", "state_dir", "partly-set"],
)
def test_an_unset_variable_in_a_required_value_is_an_error(tmp_path, monkeypatch, capsys, init, warehouse, where,
                                                           variable) -> None:
    """`url: ${UNSET}` used to become an empty URL (libpq then connects to the local socket) and `state_dir:
    ${UNSET}` the working directory: exit 2 naming the file, the key and the variable. An optional key
    (`api_key: ${DD_API_KEY}`, `env`) unset means "not set"; a value with text besides the variable is kept."""
    for name in ("MLMON_TEST_UNSET_URL", "MLMON_TEST_UNSET_DIR", "MLMON_TEST_UNSET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLMON_TEST_EMPTY", "")
    data = {"init_config": {**init, "env": "${MLMON_TEST_UNSET_KEY}",
                            "datadog": {"api_key": "${MLMON_TEST_UNSET_KEY}", "transport": "jsonl"}},
            "instances": [{"name": "ads", "warehouse": warehouse}]}
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(data))
    if where is None:
        config = load_config(path)
        assert config.init_config.datadog.api_key is None and config.init_config.env is None
        assert str(config.instances[0].warehouse.path) == "/w.duckdb"
        return
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: invalid configuration\n  {where}: ${{{variable}}} is not set (the environment "
                              f"variable {variable} is unset or empty)")
    assert main(["check", "--config", str(path)]) == 2
    assert f"{where}: ${{{variable}}} is not set" in capsys.readouterr().err


@pytest.mark.parametrize("value", [1_000_000_000_000_000, "367d", "53w", float("inf"), float("nan"), "1e400"])
def test_durations_are_bounded(value) -> None:
    """`initial_lookback: 1000000000000000` listed windows until the machine ran out of memory: a duration
    longer than a year and a day is refused, naming the key."""
    data = {"instances": [{"name": "a", "warehouse": {"engine": "duckdb", "path": "w.duckdb"},
                           "jobs": {"predictions": {"initial_lookback": value}}}]}
    with pytest.raises(ConfigError) as err:
        parse_config(data, "conf.yaml")
    assert "instances -> 0 -> jobs -> predictions -> initial_lookback: " in str(err.value)
    assert "at most 366d" in str(err.value) or "expected a duration such as" in str(err.value)
    assert parse_config({**data, "instances": [{**data["instances"][0], "jobs": {"predictions": {
        "initial_lookback": "366d"}}}]}).instances[0].jobs.predictions.initial_lookback == 366 * 86400


def test_a_repeated_yaml_key_is_an_error(tmp_path) -> None:
    """PyYAML keeps the last of two equal keys silently: `quality: {enabled: false}` then `quality: {interval: 2h}`
    turned the job back on. Refused, naming the key and the line; at any depth."""
    path = tmp_path / "conf.yaml"
    path.write_text("instances:\n  - name: a\n    warehouse: {engine: duckdb, path: w.duckdb}\n    jobs:\n"
                    "      quality: {enabled: false}\n      quality: {interval: 2h}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: not valid YAML: duplicate key 'quality' (the first would be ignored), "
                              "line 6, column 7")
    path.write_text("init_config: {env: a, env: b}\ninstances: [{name: a, warehouse: {engine: duckdb, path: w}}]\n")
    with pytest.raises(ConfigError, match="duplicate key 'env'"):
        load_config(path)
    path.write_text("instances:\n  - {name: a, warehouse: {engine: duckdb, path: w}}\n  - {name: b, warehouse: "
                    "{engine: duckdb, path: w}}\n")  # the same keys in two mappings are fine
    assert [i.name for i in load_config(path).instances] == ["a", "b"]


@pytest.mark.parametrize("name", ["a..b", "a.", ".a", "ads.1st"])
def test_table_names_need_a_name_between_dots(name) -> None:
    """`a..b` matched the identifier rule and failed only at run time; now the config names the key."""
    with pytest.raises(ConfigError) as err:
        parse_config({"instances": [{"name": "a", "warehouse": {"engine": "duckdb", "path": "w"},
                                     "tables": {"labels": name}}]}, "conf.yaml")
    assert "instances -> 0 -> tables -> labels: Value error, expected an identifier" in str(err.value)
    assert parse_config({"instances": [{"name": "a", "warehouse": {"engine": "duckdb", "path": "w"},
                                        "tables": {"labels": "ads.raw.labels"}}]}).instances[0].tables.labels \
        == "ads.raw.labels"


@pytest.mark.parametrize("job", ["predictions", "quality", "reproducibility", "training", "serving_features"])
@pytest.mark.parametrize("value", ["500ms", 0.2, "0s"])
def test_sub_second_intervals_are_refused(job, value) -> None:
    """`interval: 500ms` had the scheduler run a job back to back: an interval under a second is refused, naming
    the key; one second is accepted."""
    def data(interval: object) -> dict:
        return {"instances": [{"name": "a", "warehouse": {"engine": "duckdb", "path": "w.duckdb"},
                               "jobs": {job: {"interval": interval}}}]}

    with pytest.raises(ConfigError) as err:
        parse_config(data(value), "conf.yaml")
    assert f"instances -> 0 -> jobs -> {job} -> interval: " in str(err.value)
    assert getattr(parse_config(data("1s")).instances[0].jobs, job).interval == 1.0
