"""The package as a user installs it: the wheel built from this tree, ``pip install``-ed into a fresh venv, run
from an empty directory. Nothing of the checkout or of the test environment's site-packages is on its path.

Building and installing takes about 15 s here (dependencies come from pip's cache or the index); the time is
printed with the results. Deselect with ``-m 'not wheel'``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlmon.testing import IntakeServer

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[1]
#: variables that would point the installed mlmon back at this checkout or at a real Datadog account
_LEAKS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "VIRTUAL_ENV", "DD_API_KEY",
          "DATADOG_API_KEY", "DD_APP_KEY", "DATADOG_APP_KEY", "DD_SITE", "DATADOG_HOST", "DD_AGENT_HOST",
          "DD_DOGSTATSD_PORT", "DD_DOGSTATSD_SOCKET")
SHIPPED_ASSETS = sorted(p.relative_to(ROOT).as_posix() for d in ("dashboards", "monitors")
                        for p in (ROOT / d).glob("*.json"))


def environment(venv: Path, **extra: str) -> dict[str, str]:
    """This process's environment less what would leak into the venv's commands, with the venv's bin/ first."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKS}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


@dataclass(frozen=True)
class Installed:
    """The wheel, the venv it is installed in, and a way to run that venv's commands from an empty directory."""

    wheel: Path
    venv: Path
    base: Path

    def empty_directory(self, name: str) -> Path:
        directory = self.base / name
        directory.mkdir()
        return directory

    def run(self, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``args[0]`` from the venv's bin/ (``mlmon``, ``python``), in ``cwd``."""
        command = [str(self.venv / "bin" / args[0]), *args[1:]]
        return subprocess.run(command, cwd=cwd, env=environment(self.venv, **env), capture_output=True, text=True,
                              timeout=300, check=False)


def _step(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(command)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    dist, venv = base / "dist", base / "venv"
    env = environment(venv)
    started = time.perf_counter()
    # pip builds it as `pip install .` would, in an isolated environment with the build backend of pyproject.toml
    _step([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), str(ROOT)], base, env)
    (wheel,) = dist.glob("mlmon-*.whl")
    built = time.perf_counter()
    # the venv comes from the base interpreter (venv ignores the test venv it is started from)
    _step([sys.executable, "-m", "venv", str(venv)], base, env)
    _step([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile", str(wheel)], base, env)
    ready = time.perf_counter()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # printed in the run's output, not captured with the test's
            reporter.write_line(f"\ntests/test_wheel.py: wheel built in {built - started:.1f}s, fresh venv with "
                                f"the wheel and its dependencies in {ready - built:.1f}s")
    return Installed(wheel, venv, base)


@pytest.fixture(scope="module")
def demo_directory(installed: Installed) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """An empty directory in which the installed ``mlmon demo --days 2`` ran, and that run."""
    directory = installed.empty_directory("demo")
    return directory, installed.run(directory, "mlmon", "demo", "--days", "2")


def test_wheel_ships_the_assets_the_agent_check_and_the_example_config(installed) -> None:
    """The wheel holds every dashboard and monitor, metadata.csv, conf.yaml.example and checks.d/mlmon.py,
    under mlmon/_shipped/ with the repository's layout, and py.typed."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        example = wheel.read("mlmon/_shipped/conf.d/mlmon.d/conf.yaml.example").decode()
    expected = {f"mlmon/_shipped/{path}" for path in
                (*SHIPPED_ASSETS, "metadata.csv", "conf.d/mlmon.d/conf.yaml.example", "checks.d/mlmon.py")}
    assert expected <= names, sorted(expected - names)
    assert "mlmon/py.typed" in names and "mlmon/cli/__init__.py" in names
    assert example == (ROOT / "conf.d" / "mlmon.d" / "conf.yaml.example").read_text()


def test_installed_mlmon_is_the_wheel(installed) -> None:
    """The venv imports mlmon from its own site-packages, finds the shipped files there, and nothing of the
    checkout is on its path."""
    cwd = installed.empty_directory("imports")
    probe = ("import sys, mlmon, mlmon.shipped; print(mlmon.__file__); print(mlmon.shipped.shipped_root()); "
             "print('\\n'.join(sys.path))")
    done = installed.run(cwd, "python", "-c", probe)
    assert done.returncode == 0, done.stderr
    module, shipped, *path = done.stdout.splitlines()
    site_packages = installed.venv.resolve()
    assert Path(module).resolve().is_relative_to(site_packages), module
    assert Path(shipped).resolve() == Path(module).resolve().parent / "_shipped"
    assert not [p for p in path if p and Path(p).resolve().is_relative_to(ROOT)], path
    agent_check = installed.run(cwd, "mlmon", "assets", "path", "checks.d/mlmon.py")
    assert agent_check.returncode == 0, agent_check.stderr
    assert Path(agent_check.stdout.strip()).read_text() == (ROOT / "checks.d" / "mlmon.py").read_text()


def test_assets_validate_from_an_empty_directory(installed) -> None:
    """`mlmon assets validate` without --root validates the shipped assets: exit 0, their count."""
    cwd = installed.empty_directory("validate")
    done = installed.run(cwd, "mlmon", "assets", "validate")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{len(SHIPPED_ASSETS)} asset(s) valid\n", "")
    assert not list(cwd.iterdir())


def test_demo_lists_the_monitors_that_fire(demo_directory) -> None:
    """`mlmon demo` replays the shipped monitors: the planted incidents fire their monitors."""
    _, done = demo_directory
    assert done.returncode == 0, done.stdout + done.stderr
    section = next(s for s in done.stdout.split("\n\n") if s.startswith("Monitors that would have fired"))
    fired = {tuple(line.split()[:2]) for line in section.splitlines()[2:-1]}
    assert {("predictions_unavailable", "model:ctr_video"), ("same_value_ratio_high", "model:cvr_app"),
            ("reproducibility_low", "model:cvr_app"), ("training_rows_drop_prev", "model:ctr_video")} <= fired, section


def test_init_then_check_accepts_the_demo_warehouse(installed, demo_directory) -> None:
    """`mlmon init conf.yaml --warehouse <the demo's warehouse>`, then `mlmon check --config conf.yaml`: exit 0,
    the API key validated against a loopback intake (DD_API_KEY, DATADOG_HOST)."""
    cwd, demo = demo_directory
    assert demo.returncode == 0, demo.stderr
    init = installed.run(cwd, "mlmon", "init", "conf.yaml", "--warehouse", "mlmon-demo/warehouse.duckdb")
    assert init.returncode == 0, init.stderr
    key = "0123456789abcdef0123456789abcdef"
    with IntakeServer(valid_keys=(key,)) as intake:
        check = installed.run(cwd, "mlmon", "check", "--config", "conf.yaml", DD_API_KEY=key, DATADOG_HOST=intake.url)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.rstrip().endswith("all checks passed") and "PROBLEM" not in check.stdout
    assert intake.accepted("/validate"), "the key was not validated"


def test_first_run_of_the_init_config_sends_every_family(installed, demo_directory) -> None:
    """The config `mlmon init` writes (name and warehouse set, every other setting at its default), run once by
    the installed mlmon at the wall-clock time: predictions, online quality, reproducibility and training points
    reach the intake named by DATADOG_HOST, and each job logs its summary line."""
    cwd, demo = demo_directory
    assert demo.returncode == 0, demo.stderr
    run_dir = installed.empty_directory("first-run")
    init = installed.run(run_dir, "mlmon", "init", "conf.yaml", "--warehouse", str(cwd / "mlmon-demo/warehouse.duckdb"))
    assert init.returncode == 0, init.stderr
    key = "0123456789abcdef0123456789abcdef"
    with IntakeServer(valid_keys=(key,)) as intake:
        done = installed.run(run_dir, "mlmon", "run", "--once", "--config", "conf.yaml", DD_API_KEY=key,
                             DATADOG_HOST=intake.url)
        sent = {s["metric"] for s in intake.series()}
    assert done.returncode == 0, done.stderr
    for family in ("mlmon.prediction.", "mlmon.online.", "mlmon.reproducibility.", "mlmon.training."):
        assert any(m.startswith(family) for m in sent), f"no {family}* point: {sorted(sent)}"
    for job in ("predictions", "quality", "reproducibility", "training"):
        assert f"job {job}: " in done.stderr, done.stderr
    assert (run_dir / ".mlmon" / "state").is_dir()  # the default state_dir, relative to the working directory
