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
