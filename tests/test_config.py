"""Config: the shipped example loads; errors name the file and the YAML path; env expansion; durations."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlmon.cli import main
from mlmon.config import ConfigError, load_config, parse_config, parse_duration

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "conf.d" / "mlmon.d" / "conf.yaml.example"


def minimal(**instance) -> dict:
    return {"instances": [{"name": "ads", "warehouse": {"engine": "duckdb", "path": "w.duckdb"}, **instance}]}


def test_example_loads_with_documented_defaults(monkeypatch) -> None:
    """The shipped example is valid, and its values are what it says."""
    monkeypatch.setenv("DD_API_KEY", "k" * 32)
    cfg = load_config(EXAMPLE)
    inst = cfg.instances[0]
    assert cfg.init_config.env == "prod"
    assert cfg.init_config.datadog.resolved_api_key() == "k" * 32
    assert inst.jobs.predictions.interval == 600 and inst.jobs.predictions.lateness == 300
    assert inst.jobs.reproducibility.atol == 1e-6
    assert inst.jobs.training.features == ("age", "device", "bid_floor")
    assert cfg.base_tags(inst) == ("env:prod", "team:ads")


def test_every_model_field_is_documented_in_the_example() -> None:
    """Each config key has an @param line in the example."""
    from mlmon.config import DatadogConfig, InitConfig, Instance, PredictionsJob

    text = EXAMPLE.read_text()
    for model, prefix in ((InitConfig, ""), (DatadogConfig, ""), (Instance, ""), (PredictionsJob, "predictions.")):
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


def test_config_values_beat_environment(monkeypatch) -> None:
    """Config api_key and site override the environment."""
    monkeypatch.setenv("DD_API_KEY", "env-key")
    monkeypatch.setenv("DD_SITE", "datadoghq.eu")
    cfg = parse_config({"init_config": {"datadog": {"api_key": "cfg-key", "site": "us3.datadoghq.com"}},
                        **minimal()})
    assert cfg.init_config.datadog.resolved_api_key() == "cfg-key"
    assert cfg.init_config.datadog.resolved_api_host() == "https://api.us3.datadoghq.com"


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
