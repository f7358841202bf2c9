"""The README's commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    """The last line of .ci/run is the README's test command, verbatim."""
    ci_line = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert "pytest" in ci_line
    assert f"\n{ci_line}\n" in (ROOT / "README.md").read_text()


def test_readme_starts_with_the_demo_command() -> None:
    """The first command block installs and runs the demo."""
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert "mlmon demo" in first_block and "pip install" in first_block


def test_ci_installs_and_requires_every_tested_engine() -> None:
    """The test command installs the extras holding PySpark and SQLAlchemy, and CI makes the PostgreSQL
    and Spark tests fail (not skip) when their engine is missing."""
    import re

    import pytest

    tomllib = pytest.importorskip("tomllib")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export MLMON_REQUIRE_POSTGRES=1" in ci and "export MLMON_REQUIRE_SPARK=1" in ci
    match = re.search(r"-e '\.\[([a-z,]+)\]'", ci.strip().splitlines()[-1])
    assert match, "the test command installs the package with extras"
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = [req for extra in match.group(1).split(",") for req in optional[extra]]
    assert any(req.startswith("pyspark") for req in installed)
    assert any(req.startswith("sqlalchemy") for req in installed)
