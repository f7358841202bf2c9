"""``mlmon init``: the shipped conf.yaml.example written as a starter config, its required values filled in."""

from __future__ import annotations

import time

import pytest
import yaml

from mlmon.cli import main
from mlmon.config import DEFAULT_CONFIG_PATH, PostgresWarehouse, SQLAlchemyWarehouse, load_config
from mlmon.shipped import EXAMPLE_CONFIG, shipped_root
from mlmon.starter import starter_config

EXAMPLE = (shipped_root() / EXAMPLE_CONFIG).read_text()


def changed_lines(text: str) -> list[tuple[str, str]]:
    """(shipped line, written line) for each line of ``text`` that differs from the shipped example's."""
    shipped, written = EXAMPLE.splitlines(), text.splitlines()
    assert len(shipped) == len(written)  # init replaces lines, it adds or removes none
    return [(a, b) for a, b in zip(shipped, written) if a != b]


def test_init_writes_the_example_at_the_default_path(tmp_path, monkeypatch, capsys) -> None:
    """Without arguments: conf.d/mlmon.d/conf.yaml (directories created), the example as shipped, loadable."""
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    written = tmp_path / DEFAULT_CONFIG_PATH
    assert written.read_text() == EXAMPLE
    assert load_config(written).instances[0].name == "main"
    out = capsys.readouterr().out
    assert f"wrote {DEFAULT_CONFIG_PATH}:" in out and "placeholder" in out and out.endswith(": mlmon check\n")


def test_init_refuses_to_overwrite(tmp_path, capsys) -> None:
    """An existing file is left alone: exit 2, the message names the file and --force."""
    path = tmp_path / "conf.yaml"
    path.write_text("mine\n")
    assert main(["init", str(path), "--name", "ads"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "--force" in err
    assert path.read_text() == "mine\n"


def test_init_force_overwrites(tmp_path) -> None:
    """--force replaces an existing file."""
    path = tmp_path / "conf.yaml"
    path.write_text("mine\n")
    assert main(["init", str(path), "--force", "--name", "ads"]) == 0
    assert load_config(path).instances[0].name == "ads"


def test_init_changes_only_the_lines_asked_for(tmp_path) -> None:
    """--name, --warehouse (a DuckDB file, made absolute), --env: their lines change, every other stays."""
    path = tmp_path / "conf.yaml"
    warehouse = tmp_path / "data" / "w.duckdb"
    assert main(["init", str(path), "--name", "ads", "--warehouse", str(warehouse), "--env", "prod"]) == 0
    assert changed_lines(path.read_text()) == [
        ("  # env: prod", "  env: prod"), ("  - name: main", "  - name: ads"),
        ("      path: warehouse.duckdb", f"      path: {warehouse}"),
    ]
    config = load_config(path)
    assert config.base_tags(config.instances[0]) == ("env:prod",)


def test_init_relative_duckdb_path_is_made_absolute(tmp_path, monkeypatch) -> None:
    """A relative --warehouse is written absolute, so that the config works from any working directory."""
    monkeypatch.chdir(tmp_path)
    assert main(["init", "conf.yaml", "--warehouse", "w.duckdb"]) == 0
    assert load_config(tmp_path / "conf.yaml").instances[0].warehouse.path == tmp_path / "w.duckdb"  # type: ignore[union-attr]


def test_init_postgres_url(tmp_path, monkeypatch) -> None:
    """A postgresql:// URL: engine postgres with the URL as given (${PGPASSWORD} left for load time), no path."""
    path = tmp_path / "conf.yaml"
    url = "postgresql://mlmon:${PGPASSWORD}@db:5432/ads"
    assert main(["init", str(path), "--warehouse", url]) == 0
    assert changed_lines(path.read_text()) == [
        ("      engine: duckdb", "      engine: postgres"),
        ("      path: warehouse.duckdb", "      # path: warehouse.duckdb"),
        ("      # url: postgresql://mlmon:${PGPASSWORD}@db:5432/ads", f"      url: {url}"),
    ]
    monkeypatch.setenv("PGPASSWORD", "s3cret")
    warehouse = load_config(path).instances[0].warehouse
    assert isinstance(warehouse, PostgresWarehouse)
    assert warehouse.url.get_secret_value() == "postgresql://mlmon:s3cret@db:5432/ads"


def test_init_other_urls_go_through_sqlalchemy(tmp_path) -> None:
    """Any other scheme:// URL is engine sqlalchemy, its dialect from the scheme."""
    path = tmp_path / "conf.yaml"
    assert main(["init", str(path), "--warehouse", "snowflake://me@acme/db/schema?warehouse=wh"]) == 0
    warehouse = load_config(path).instances[0].warehouse
    assert isinstance(warehouse, SQLAlchemyWarehouse) and warehouse.sql_dialect() == "snowflake"


@pytest.mark.parametrize(
    ("flags", "words"),
    [(["--name", "ads team"], "instances -> 0 -> name"),
     (["--warehouse", "oracle://db/x"], "cannot tell the SQL dialect from the URL scheme 'oracle'")],
    ids=["name", "url-scheme"],
)
def test_init_refuses_a_config_that_would_not_load(tmp_path, capsys, flags, words) -> None:
    """A value the config would reject is a usage error naming the setting; nothing is written."""
    path = tmp_path / "conf.yaml"
    assert main(["init", str(path), *flags]) == 2
    err = capsys.readouterr().err
    assert f"{path} (not written)" in err and words in err, err
    assert not path.exists()


def test_init_with_warehouse_passes_check(tmp_path, capsys, intake, monkeypatch) -> None:
    """The written file works as is: mlmon check accepts its instance (warehouse, tables, columns) and key."""
    from tests.helpers import API_KEY

    from mlmon import demo

    warehouse = tmp_path / "warehouse.duckdb"
    demo.build_warehouse(warehouse, time.time(), days=1)
    path = tmp_path / "conf.d" / "mlmon.d" / "conf.yaml"
    assert main(["init", str(path), "--warehouse", str(warehouse), "--name", "ads"]) == 0
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DATADOG_HOST", intake.url)
    capsys.readouterr()
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "instance ads: table predictions has the columns" in out and "PROBLEM" not in out
    assert out.rstrip().endswith("all checks passed")


@pytest.mark.parametrize(
    "kwargs",
    [{"name": "ads"}, {"warehouse": "w.duckdb"}, {"warehouse": "postgresql://db/x"}, {"env": "prod"}, {"agent": True}],
    ids=["name", "duckdb", "postgres", "env", "agent"],
)
def test_starter_config_says_when_the_example_lost_a_line(kwargs) -> None:
    """Each option replaces one line of the example; an example without that line is an error, not a silent
    starter config that ignores the option."""
    text = starter_config(EXAMPLE, **kwargs)
    assert text != EXAMPLE
    with pytest.raises(ValueError, match=r"conf\.yaml\.example: expected one line matching"):
        starter_config(EXAMPLE.replace("- name: main", "- nom: main").replace("engine: duckdb", "engine duckdb")
                       .replace("# env:", "# env =").replace("# min_collection_interval:", "#"), **kwargs)


def test_init_help_names_the_defaults(capsys) -> None:
    """init --help says where it writes by default and what --warehouse takes."""
    with pytest.raises(SystemExit):
        main(["init", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"(default: {DEFAULT_CONFIG_PATH})" in out and "postgresql:// URL" in out and "--force" in out
    assert yaml.safe_load(EXAMPLE)["instances"][0]["name"] == "main"  # the --name default the help gives
    assert "(default: main)" in out
