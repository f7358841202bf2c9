"""No secret leaks: the Datadog API key, the application key and warehouse passwords never show up in a
log line, printed message, exception text, report message, payload sent to Datadog or written file.

Every test runs mlmon with distinctive secrets (all holding ``SECRET``), drives it through the paths
where a secret could escape (the intake rejecting the key or failing, Datadog unreachable, PostgreSQL
refusing the connection or missing a table, a malformed config), captures everything it produced and
greps it. Each test also asserts that the expected errors were reported (naming the instance or host),
so an empty capture cannot pass for a clean one.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import pytest
import yaml
from tests.helpers import PG_URL, closed_port, utc

import mlmon.logs
from mlmon.cli import main
from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.samples import Sample
from mlmon.sinks.base import SinkError
from mlmon.sinks.factory import make_sink
from mlmon.testing import IntakeServer, Reply

API_KEY = "ddapi-SECRET-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
APP_KEY = "ddapp-SECRET-f9e8d7c6b5a4938271605f4e3d2c1b0a9f8e7d6c"
#: characters a URL must percent-encode, so that both the written and the decoded form are looked for
PASSWORD = "pw-SECRET-Zq7/x@y:%w"
PASSWORD_IN_URL = quote(PASSWORD, safe="")
#: a password whose ``%`` the user did not encode: libpq refuses the URL and quotes the bad token
RAW_PERCENT_PASSWORD = "pw-SECRET-Jk4%zz"
#: what must never appear: every secret, each encoding of the password, and the common marker
FORBIDDEN = (
    API_KEY, APP_KEY, API_KEY.split("-")[-1], APP_KEY.split("-")[-1],
    PASSWORD, PASSWORD_IN_URL, quote(PASSWORD), quote_plus(PASSWORD), "pw-SECRET-Zq7",
    RAW_PERCENT_PASSWORD, "pw-SECRET-Jk4",
    "SECRET",
)
DD_ENV = ("DD_API_KEY", "DATADOG_API_KEY", "DD_APP_KEY", "DATADOG_APP_KEY", "DATADOG_HOST", "DD_SITE", "PGPASSWORD")
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------------
# capture and grep


class Captured:
    """Named texts and files collected from one scenario, grepped for every form of every secret."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, bytes]] = []

    def add(self, label: str, text: str | bytes) -> None:
        self.texts.append((label, text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")))

    def add_files(self, root: Path, skip: Path) -> int:
        """Every file under ``root`` (but the config files under ``skip``, which hold the secrets on purpose)."""
        n = 0
        for path in sorted(root.rglob("*")):
            if path.is_file() and skip not in path.parents:
                self.add(f"file {path.relative_to(root)}", path.read_bytes())
                n += 1
        return n

    def add_intake(self, intake: IntakeServer) -> None:
        """What Datadog received, but the key headers (the one place the keys belong)."""
        for r in intake.requests:
            headers = {k: v for k, v in r.headers.items() if k not in ("dd-api-key", "dd-application-key")}
            self.add(f"intake {r.method} {r.path}", f"{r.path} {r.query} {headers} {r.body}")

    def text_of(self, label_prefix: str) -> str:
        """The texts whose label starts with ``label_prefix``."""
        return "\n".join(t.decode("utf-8", "replace") for label, t in self.texts if label.startswith(label_prefix))

    def joined(self) -> str:
        """The captured texts (files left out: a warehouse file is binary)."""
        return "\n".join(t.decode("utf-8", "replace") for label, t in self.texts if not label.startswith("file "))

    def assert_clean(self) -> None:
        leaks = []
        for label, text in self.texts:
            found = [secret for secret in FORBIDDEN if secret.encode() in text]
            if found:  # the most specific form, with its context
                leaks.append(f"  {found[0]!r} in {label}: ...{_around(text, found[0])}...")
        assert not leaks, f"secret(s) leaked in {len(leaks)} capture(s):\n" + "\n".join(leaks[:20])

    def expect(self, *fragments: str) -> None:
        """The capture is not trivial: each fragment appears somewhere."""
        text = self.joined()
        missing = [f for f in fragments if f not in text]
        assert not missing, f"expected {missing} in the captured output:\n{text[-4000:]}"


def _around(text: bytes, secret: str) -> str:
    i = text.find(secret.encode())
    return text[max(0, i - 120): i + len(secret) + 40].decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------------------------
# fixtures and helpers


def with_password(url: str, password_in_url: str) -> str:
    """``url`` with its user's password set (already percent-encoded as it goes into the URL)."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password_in_url}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DD_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def every_logger_at_debug() -> Iterator[None]:
    """No logger keeps a level of its own during the test (libraries set some: psycopg's, and urllib3's once
    datadog-api-client was imported by another test), so that caplog at DEBUG sees every record."""
    logging.getLogger("datadog.api")  # configure_logging sets its level: restored below with the others
    loggers = [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.NOTSET)
        lg.disabled = False
    yield
    for lg, level, disabled in saved:
        lg.setLevel(level)
        lg.disabled = disabled


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG for every logger, kept across the CLI's ``configure_logging`` (which replaces the root
    handlers: caplog is put back behind the CLI's scrubbing handler, so it records what the agent prints)."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    real = mlmon.logs.configure_logging

    def configure(level: str = "INFO", secrets: Any = ()) -> Any:
        secret_filter = real(level, secrets)
        root.addHandler(caplog.handler)
        return secret_filter

    monkeypatch.setattr(mlmon.logs, "configure_logging", configure)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def write_predictions(path: Path) -> None:
    """Predictions for the last 90 minutes (two models), so that `run --once` delivers windows."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE TABLE predictions AS SELECT 'r' || i AS request_id, "
                    "CAST(? AS TIMESTAMP) + to_seconds(i * 9) AS ts, 'ctr_' || (i % 2) AS model, "
                    "'v1' AS model_version, (i % 97) / 100.0 AS prediction FROM range(600) AS t(i)",
                    [utc(time.time() - 5400)])
    finally:
        con.close()


class Setup:
    """A working directory with a DuckDB warehouse, a config file holding (or referencing) the secrets, and
    the environment the config expects."""

    def __init__(self, tmp_path: Path, *, source: str, dd_host: str, pg_port: int,
                 extra_instances: tuple[dict[str, Any], ...] = (), transport: str = "api") -> None:
        self.dir = tmp_path
        self.conf_dir = tmp_path / "conf"
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.warehouse = tmp_path / "warehouse.duckdb"
        if not self.warehouse.exists():
            write_predictions(self.warehouse)
        self.pg_port = pg_port
        self.env: dict[str, str] = {}
        datadog: dict[str, Any] = {"transport": transport, "jsonl_path": str(tmp_path / "out" / "metrics.jsonl"),
                                   "max_retries": 1, "retry_backoff": 0, "timeout": 2}
        if source == "literal":
            datadog.update(api_key=API_KEY, app_key=APP_KEY, api_host=dd_host)
            password = PASSWORD_IN_URL
        elif source == "env":  # the datadog package's variables, and ${VAR} in the URL
            self.env = {"DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY, "DATADOG_HOST": dd_host,
                        "PGPASSWORD": PASSWORD_IN_URL}
            password = "${PGPASSWORD}"
        else:  # the DATADOG_* spellings
            self.env = {"DATADOG_API_KEY": API_KEY, "DATADOG_APP_KEY": APP_KEY, "DATADOG_HOST": dd_host,
                        "MLMON_PG_PASSWORD": PASSWORD_IN_URL}
            password = "${MLMON_PG_PASSWORD}"
        self.data = {
            "init_config": {"env": "test", "state_dir": str(tmp_path / "state"), "datadog": datadog},
            "instances": [
                {"name": "lake", "warehouse": {"engine": "duckdb", "path": str(self.warehouse)},
                 "jobs": {"predictions": {"initial_lookback": "1h"}}},
                {"name": "pgdown",
                 "warehouse": {"engine": "postgres", "connect_timeout": 1,
                               "url": f"postgresql://mlmon:{password}@127.0.0.1:{pg_port}/ads"}},
                *extra_instances,
            ],
        }
        self.config = self.conf_dir / "conf.yaml"
        self.config.write_text(yaml.safe_dump(self.data, sort_keys=False))
        assert (PASSWORD_IN_URL if source == "literal" else "${") in self.config.read_text()

    def capture(self) -> Captured:
        captured = Captured()
        captured.add_files(self.dir, skip=self.conf_dir)
        return captured


def run_cli(argv: list[str], logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
            captured: Captured) -> int:
    """``main(argv)`` in this process; its log records, stdout and stderr (fd level) go into ``captured``."""
    logs.clear()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        captured.add(f"SystemExit of {argv}", str(exc))
        code = int(exc.code or 0)
    out, err = capfd.readouterr()
    captured.add(f"stdout of {argv}", out)
    captured.add(f"stderr of {argv}", err)
    captured.add(f"caplog of {argv}", logs.text)
    for record in logs.records:
        captured.add(f"log record of {argv}", f"{record.getMessage()} {record.exc_text or ''}")
    return code


# ---------------------------------------------------------------------------------------------------------------
# the CLI in this process


@pytest.mark.parametrize(("datadog", "source"), [
    ("accepts", "literal"), ("accepts", "env"), ("rejects_key_403", "env"), ("fails_500", "literal"),
    ("unreachable", "literal"),
])
def test_cli_run_check_plan_leak_nothing(tmp_path, logs, capfd, monkeypatch, source, datadog) -> None:
    """`check`, `run --once` and `plan` at DEBUG, with a PostgreSQL URL (password) on a closed port and the
    intake accepting, rejecting the key, failing with 500 or not listening: nothing shows a secret."""
    with IntakeServer(valid_keys=("another-key-0000",) if datadog == "rejects_key_403" else (API_KEY,)) as intake:
        if datadog == "fails_500":
            intake.fail_next(*[Reply(500, {"errors": ["Internal Server Error"]})] * 200)
        dd_host = f"http://127.0.0.1:{closed_port()}" if datadog == "unreachable" else intake.url
        setup = Setup(tmp_path, source=source, dd_host=dd_host, pg_port=closed_port())
        for name, value in setup.env.items():
            monkeypatch.setenv(name, value)
        captured = Captured()
        common = ["--config", str(setup.config), "--log-level", "DEBUG"]
        check = run_cli(["check", *common], logs, capfd, captured)
        run = run_cli(["run", "--once", *common], logs, capfd, captured)
        plan = run_cli(["plan", *common], logs, capfd, captured)
        captured.add_intake(intake)
        requests = list(intake.requests)
    captured.texts += setup.capture().texts
    captured.assert_clean()

    assert (check, run, plan) == (1, 1, 1)  # the PostgreSQL instance is down in every scenario
    refused = f'connection to server at "127.0.0.1", port {setup.pg_port} failed: Connection refused'
    captured.expect(
        f"PROBLEM instance pgdown: cannot connect to postgres: connection failed: {refused}",  # check
        f"instance pgdown: cannot connect to postgres: connection failed: {refused}",  # run (log) and plan
        "instance lake: table predictions has the columns job(s)",
        "DEBUG",  # the run logged at DEBUG
    )
    # caplog recorded the run's lines (behind the CLI's scrubbing handler), not only stderr
    assert f"port {setup.pg_port} failed: Connection refused" in captured.text_of("caplog of ['run'")
    assert "Connection refused" in captured.text_of("stderr of ['run'")
    assert "PROBLEM instance pgdown" in captured.text_of("stdout of ['check'")
    if datadog == "unreachable":
        assert not requests
        captured.expect(f"PROBLEM datadog: cannot reach {dd_host}", "failed after 2 attempts")
    else:
        # the API key was in use, in headers only; the application key is not sent with metrics at all
        assert requests and all(r.headers.get("dd-api-key") == API_KEY for r in requests)
        assert not any("dd-application-key" in r.headers for r in requests)
    if datadog == "accepts":
        captured.expect("datadog: API key valid")
        assert re.search(r"instance lake job predictions: [1-9]\d* window\(s\), [1-9]\d* point\(s\) sent",
                         captured.joined())
        assert (tmp_path / "state" / "lake" / "predictions.json").is_file()
        # the CRITICAL can_connect check went to Datadog with the reason, scrubbed
        messages = [c.get("message", "") for c in intake.service_checks() if "instance:pgdown" in c["tags"]]
        assert any(f"port {setup.pg_port}" in m for m in messages), messages
    elif datadog == "rejects_key_403":
        captured.expect(f"PROBLEM datadog: API key rejected by {intake.url} (HTTP 403)",
                        "Datadog rejected series (HTTP 403)")
    elif datadog == "fails_500":
        captured.expect("Datadog series failed after 2 attempts", "window(s) stay pending")
    assert (tmp_path / "state" / "mlmon.lock").is_file()


@pytest.mark.parametrize("source", ["literal", "env", "datadog_env"])
def test_cli_log_scrubber_knows_every_secret(tmp_path, logs, capfd, monkeypatch, source) -> None:
    """Whatever a library logs, the handler `mlmon` installs hides the keys and the password, however they were
    given (config file, DD_* or DATADOG_* variables, ${VAR} in the URL): records planted right after the CLI
    configured logging, as a library that logs its DSN, request URL or a traceback would."""
    setup = Setup(tmp_path, source=source, dd_host="http://127.0.0.1:9", pg_port=closed_port(), transport="jsonl")
    for name, value in setup.env.items():
        monkeypatch.setenv(name, value)
    url = f"postgresql://mlmon:{PASSWORD_IN_URL}@127.0.0.1:{setup.pg_port}/ads"
    configure = mlmon.logs.configure_logging

    def configure_and_plant(level: str = "INFO", secrets: Any = ()) -> Any:
        secret_filter = configure(level, secrets)
        logging.getLogger("somelib.db").debug("planted conninfo %s", url)  # (psycopg's own logger is at WARNING)
        logging.getLogger("urllib3.connectionpool").debug(
            "planted GET /api/v1/validate?api_key=%s&application_key=%s", API_KEY, APP_KEY)
        logging.getLogger("somelib").info("planted password=%s user=mlmon", PASSWORD)
        try:
            raise ConnectionError(f"planted {url} key {API_KEY} app {APP_KEY} password {PASSWORD}")
        except ConnectionError:
            logging.getLogger("somelib").exception("planted failure")
        return secret_filter

    monkeypatch.setattr(mlmon.logs, "configure_logging", configure_and_plant)
    captured = Captured()
    assert run_cli(["plan", "--config", str(setup.config), "--log-level", "DEBUG"], logs, capfd, captured) == 1
    captured.assert_clean()
    stderr, caplog_text = captured.text_of("stderr of"), captured.text_of("caplog of")
    for text in (stderr, caplog_text):  # the planted lines went out, scrubbed
        assert "planted conninfo ***" in text
        assert "api_key=***&application_key=***" in text and "planted password=*** user=mlmon" in text
        assert "ConnectionError: planted *** key *** app *** password ***" in text
    assert f"instance pgdown: cannot connect to postgres: connection failed: connection to server at \"127.0.0.1\", " \
           f"port {setup.pg_port} failed" in stderr


def test_jsonl_output_and_state_files_leak_nothing(tmp_path, logs, capfd) -> None:
    """The JSON Lines sink writes every service check message (an unreachable warehouse's reason) to disk, and
    `check` prints every problem: a URL whose unencoded ``%`` libpq quotes back shows in neither."""
    badurl = {"name": "pgbadurl", "warehouse": {"engine": "postgres", "connect_timeout": 1,
                                                "url": f"postgresql://mlmon:{RAW_PERCENT_PASSWORD}@127.0.0.1/ads"}}
    setup = Setup(tmp_path, source="literal", dd_host="http://127.0.0.1:9", pg_port=closed_port(), transport="jsonl",
                  extra_instances=(badurl,))
    captured = Captured()
    common = ["--config", str(setup.config), "--log-level", "DEBUG"]
    assert run_cli(["run", "--once", *common], logs, capfd, captured) == 1
    assert run_cli(["check", *common], logs, capfd, captured) == 1
    captured.texts += setup.capture().texts
    captured.assert_clean()
    jsonl = (tmp_path / "out" / "metrics.jsonl").read_text()
    assert f"port {setup.pg_port} failed: Connection refused" in jsonl  # the reasons are there, not the password
    assert 'instance pgbadurl: cannot connect to postgres: invalid percent-encoded token: \\"***\\"' in jsonl
    assert "mlmon.prediction.count" in jsonl and (tmp_path / "state" / "lake" / "predictions.json").is_file()
    captured.expect('PROBLEM instance pgbadurl: cannot connect to postgres: invalid percent-encoded token: "***"')


def test_assets_sync_with_rejected_app_key_leaks_nothing(tmp_path, logs, capfd) -> None:
    """`assets sync --dry-run` sends both keys; the intake refuses the application key (403)."""
    with IntakeServer(valid_keys=(API_KEY,), valid_app_keys=("another-app-key",)) as intake:
        setup = Setup(tmp_path, source="literal", dd_host=intake.url, pg_port=closed_port())
        captured = Captured()
        code = run_cli(["assets", "sync", "--dry-run", "--root", str(ROOT), "--config", str(setup.config),
                        "--log-level", "DEBUG"], logs, capfd, captured)
        captured.add_intake(intake)
        assert intake.requests and all(r.headers.get("dd-application-key") == APP_KEY for r in intake.requests)
    captured.texts += setup.capture().texts
    captured.assert_clean()
    assert code == 1
    captured.expect("403")


@pytest.mark.parametrize("problem", ["unknown_key", "secret_under_unknown_key", "bad_type"])
def test_config_errors_leak_nothing(tmp_path, logs, capfd, problem) -> None:
    """An invalid config is printed with file and path, never with the values next to the error."""
    setup = Setup(tmp_path, source="literal", dd_host="http://127.0.0.1:9", pg_port=closed_port())
    data = setup.data
    if problem == "unknown_key":
        data["init_config"]["datadog"]["apikey"] = API_KEY  # a typo next to the real keys
        where = "init_config -> datadog -> apikey: Extra inputs are not permitted"
    elif problem == "secret_under_unknown_key":
        data["instances"][1]["warehouse"]["password"] = PASSWORD  # libpq style, which mlmon does not take
        where = "instances -> 1 -> warehouse -> password: Extra inputs are not permitted"
    else:
        data["instances"][1]["warehouse"]["url"] = {"dsn": data["instances"][1]["warehouse"]["url"]}
        data["init_config"]["datadog"]["app_key"] = [APP_KEY]
        where = "instances -> 1 -> warehouse -> url: Input should be a valid string"
    setup.config.write_text(yaml.safe_dump(data, sort_keys=False))
    captured = Captured()
    for command in (["check"], ["run", "--once"], ["plan"]):
        assert run_cli([*command, "--config", str(setup.config), "--log-level", "DEBUG"], logs, capfd, captured) == 2
    captured.texts += setup.capture().texts
    captured.assert_clean()
    captured.expect(f"{setup.config}: invalid configuration", where)


@pytest.mark.parametrize("line", [f"    api_key: {API_KEY}: x", f'    url: "postgresql://mlmon:{PASSWORD_IN_URL}@db/ads'],
                         ids=["api_key_line", "unterminated_url"])
def test_yaml_syntax_error_on_a_secret_line_leaks_nothing(tmp_path, logs, capfd, line) -> None:
    """A YAML syntax error on the line that holds a secret: the error names file, line and column only."""
    config = tmp_path / "conf" / "conf.yaml"
    config.parent.mkdir()
    config.write_text("init_config:\n  datadog:\n" + line + "\n" if "api_key" in line else
                      "instances:\n  - name: a\n    warehouse:\n      engine: postgres\n  " + line + "\n")
    captured = Captured()
    assert run_cli(["check", "--config", str(config), "--log-level", "DEBUG"], logs, capfd, captured) == 2
    captured.expect(f"mlmon: {config}: not valid YAML", ", line ")
    captured.assert_clean()


# ---------------------------------------------------------------------------------------------------------------
# the CLI as a user runs it: a separate process


def _mlmon_command() -> list[str]:
    script = Path(sys.executable).parent / "mlmon"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlmon"]


def test_cli_subprocess_leaks_nothing(tmp_path) -> None:
    """The console script, as cron or a shell runs it, at DEBUG: check, run --once and plan with the secrets in
    the config file (the intake refuses the key: 403), run --once with them in the environment (DATADOG_API_KEY,
    DATADOG_APP_KEY, ${VAR} in the URL; the intake answers 500), and a config with an unknown key; the
    processes run side by side; stdout and stderr of each, and every file they wrote."""
    setups, intakes, procs = {}, {}, {}
    with IntakeServer(valid_keys=("another-key-0000",)) as intakes["literal"], \
            IntakeServer(valid_keys=(API_KEY,)) as intakes["datadog_env"]:
        intakes["datadog_env"].fail_next(*[Reply(500, {"errors": ["Internal Server Error"]})] * 200)
        for source, intake in intakes.items():
            setup = setups[source] = Setup(tmp_path / source, source=source, dd_host=intake.url,
                                           pg_port=closed_port())
            env = {k: v for k, v in os.environ.items() if k not in DD_ENV} | setup.env
            common = ["--config", str(setup.config), "--log-level", "DEBUG"]
            commands = {"run": ["run", "--once", *common]}
            if source == "literal":  # check and plan with the environment run in process (keeps this test fast)
                commands.update(check=["check", *common], plan=["plan", *common])
                broken = setup.conf_dir / "broken.yaml"
                data = {**setup.data, "init_config": {**setup.data["init_config"], "state_directory": "x"}}
                broken.write_text(yaml.safe_dump(data))
                commands["broken"] = ["run", "--once", "--config", str(broken)]
            for name, argv in commands.items():
                procs[source, name] = subprocess.Popen([*_mlmon_command(), *argv], cwd=setup.dir, env=env,
                                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        captured = Captured()
        codes = {}
        for (source, name), proc in procs.items():
            out, err = proc.communicate(timeout=60)
            codes[source, name] = proc.returncode
            captured.add(f"{source} {name} stdout", out)
            captured.add(f"{source} {name} stderr", err)
        for source, intake in intakes.items():
            captured.add_intake(intake)
            assert intake.requests and all(r.headers.get("dd-api-key") == API_KEY for r in intake.requests), source
    for setup in setups.values():
        captured.texts += setup.capture().texts
    captured.assert_clean()
    assert codes == {("literal", "check"): 1, ("literal", "plan"): 1, ("literal", "run"): 1,
                     ("literal", "broken"): 2, ("datadog_env", "run"): 1}
    for source, setup in setups.items():
        captured.expect(f"port {setup.pg_port} failed: Connection refused")
    captured.expect("PROBLEM instance pgdown", "DEBUG", "(HTTP 403)", "failed after 2 attempts",
                    "init_config -> state_directory: Extra inputs are not permitted")


# ---------------------------------------------------------------------------------------------------------------
# the agent and the sink as a library: report messages, exception texts, raw log records


@pytest.mark.parametrize("datadog", ["rejects_key_403", "fails_500", "unreachable"])
def test_agent_reports_and_exceptions_leak_nothing(tmp_path, caplog, datadog) -> None:
    """Agent.run_once() with no scrubbing handler installed: the raw log records (messages and tracebacks),
    JobReport.messages, the exceptions the sink and engine raise, and reprs hold no secret."""
    from mlmon.warehouse.engines import WarehouseError, open_engine

    caplog.set_level(logging.DEBUG)
    with IntakeServer(valid_keys=("another-key-0000",) if datadog == "rejects_key_403" else (API_KEY,)) as intake:
        if datadog == "fails_500":
            intake.fail_next(*[Reply(500, {"errors": ["Internal Server Error"]})] * 200)
        dd_host = f"http://127.0.0.1:{closed_port()}" if datadog == "unreachable" else intake.url
        setup = Setup(tmp_path, source="literal", dd_host=dd_host, pg_port=closed_port(), extra_instances=(
            {"name": "pgbadurl", "warehouse": {"engine": "postgres", "connect_timeout": 1,
                                               "url": f"postgresql://mlmon:{RAW_PERCENT_PASSWORD}@127.0.0.1/ads"}},
            {"name": "pgbadquery", "warehouse": {"engine": "postgres", "connect_timeout": 1, "url":
                                                 f"postgresql://mlmon@127.0.0.1/ads?password={RAW_PERCENT_PASSWORD}"}},
        ))
        config = parse_config(setup.data, str(setup.config))
        sink = make_sink(config.init_config.datadog)
        captured = Captured()
        reports = Agent(config, sink).run_once()
        for r in reports:
            captured.add(f"report {r.instance}/{r.job}", "\n".join(r.messages))
        with pytest.raises(SinkError) as sink_error:
            sink.submit([Sample("mlmon.prediction.count", 1.0, ("model:a",), time.time())])
        captured.add("SinkError", f"{sink_error.value} {sink_error.value!r}")
        captured.add("validate()", str(sink.validate()))
        for instance in config.instances[1:]:
            with pytest.raises(WarehouseError) as warehouse_error:
                open_engine(instance.warehouse)
            captured.add(f"WarehouseError {instance.name}", f"{warehouse_error.value} {warehouse_error.value!r}")
        captured.add("reprs", f"{config!r} {config} {config.model_dump_json()} {sink!r} {sink}")
        captured.add_intake(intake)
    captured.add("caplog", caplog.text)
    assert "invalid percent-encoded token" in caplog.text  # the raw record, before any scrubbing handler
    assert "Starting new HTTP connection" in caplog.text  # third-party DEBUG records are captured too
    for record in caplog.records:
        captured.add("log record", f"{record.getMessage()} {record.exc_text or ''}")
    captured.texts += setup.capture().texts
    captured.assert_clean()

    by_instance = {r.instance: r for r in reports if r.errors}
    assert set(by_instance) == {"lake", "pgdown", "pgbadurl", "pgbadquery"}
    captured.expect(f"instance pgdown: cannot connect to postgres: connection failed: connection to server at "
                    f'"127.0.0.1", port {setup.pg_port} failed: Connection refused',
                    'instance pgbadurl: cannot connect to postgres: invalid percent-encoded token: "***"',
                    'instance pgbadquery: cannot connect to postgres: invalid percent-encoded token: "***"',
                    "window(s) stay pending")
    if datadog == "rejects_key_403":
        captured.expect("Datadog rejected series (HTTP 403)", f"API key rejected by {intake.url} (HTTP 403)")
    elif datadog == "fails_500":
        captured.expect("Datadog series failed after 2 attempts")
    else:
        captured.expect(f"cannot reach {dd_host}", "failed after 2 attempts")


# ---------------------------------------------------------------------------------------------------------------
# a real PostgreSQL server: the password is accepted (trust auth ignores it) and a table is missing


@pytest.fixture
def pg_url_with_password(postgres_warehouse: Any) -> tuple[str, str]:
    """(URL holding the password, schema) on the test server; its trust auth accepts and ignores the password."""
    import psycopg

    url = with_password(PG_URL, PASSWORD_IN_URL)
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        pytest.skip("the test PostgreSQL server does not accept an arbitrary password (not trust auth)")
    return url, postgres_warehouse.schema


@pytest.mark.postgres
def test_postgres_missing_table_leaks_nothing(tmp_path, logs, capfd, caplog, pg_url_with_password) -> None:
    """check, run --once and plan against the live server whose URL holds the password, with a named table
    that does not exist, plus the agent's report messages."""
    url, schema = pg_url_with_password
    missing = f"{schema}.no_such_predictions"
    pglive = {"name": "pglive", "warehouse": {"engine": "postgres", "url": url, "connect_timeout": 3},
              "tables": {"predictions": missing, "training_runs": None}, "models": ["ctr_pg"]}
    with IntakeServer(valid_keys=(API_KEY,)) as intake:
        setup = Setup(tmp_path, source="literal", dd_host=intake.url, pg_port=closed_port(), extra_instances=(pglive,))
        captured = Captured()
        common = ["--config", str(setup.config), "--log-level", "DEBUG"]
        codes = [run_cli([*cmd, *common], logs, capfd, captured) for cmd in (["check"], ["run", "--once"], ["plan"])]
        root = logging.getLogger()
        for handler in [h for h in root.handlers if h is not caplog.handler]:
            root.removeHandler(handler)  # the CLI's scrubbing handler: the agent's raw records from here on
        caplog.clear()
        config = parse_config(setup.data, str(setup.config))
        reports = Agent(config, make_sink(config.init_config.datadog)).run_once()
        for r in reports:
            captured.add(f"report {r.instance}/{r.job}", "\n".join(r.messages))
        captured.add("caplog (agent, no scrubbing handler)", caplog.text)
        assert "does not exist" in caplog.text
        captured.add_intake(intake)
    captured.texts += setup.capture().texts
    captured.assert_clean()
    assert codes == [1, 1, 1]
    captured.expect("instance pglive: connected (postgres)",
                    f'PROBLEM instance pglive, table {missing} (job(s) predictions, quality, reproducibility)',
                    f"instance pglive, job predictions, table {missing}: postgres: relation",
                    "does not exist")
    assert any(r.instance == "pglive" and r.errors for r in reports)
    # the expected model's availability went CRITICAL in Datadog, with the reason (the table), not the password
    messages = [c.get("message", "") for c in intake.service_checks() if "model:ctr_pg" in c["tags"]]
    assert messages and all(missing in m and "does not exist" in m for m in messages), messages


#: passwords written into the URL unencoded: each character a URL parser may stop at, so that the driver
#: quotes a piece of the password (libpq ends the user part at the first ``@``: "failed to resolve host
#: 'Raw2SECRET@127.0.0.1'")
RAW_PASSWORDS = ("Raw1SECRET@Raw2SECRET", "Raw3SECRET:Raw4SECRET", "Raw5SECRET/Raw6SECRET",
                 "Raw7SECRET%Raw8SECRET", "Raw9SECRET#RawASECRET")


@pytest.mark.parametrize("password", RAW_PASSWORDS)
@pytest.mark.parametrize("form", ["postgres", "sqlalchemy", "query"])
def test_unencoded_password_characters_leak_nothing(tmp_path, capfd, password, form) -> None:
    """A password holding an unencoded ``@``, ``:``, ``/``, ``%`` or ``#``, in a postgres URL, a SQLAlchemy
    URL or a libpq ``?password=`` parameter: `mlmon check`, the engine's error and the can_connect message
    sent to Datadog hold no piece of it, and still say what failed."""
    from mlmon.samples import CheckStatus
    from mlmon.testing import RecordingSink

    port = closed_port()
    url = {"postgres": f"postgresql://mlmon:{password}@127.0.0.1:{port}/ads",
           "sqlalchemy": f"postgresql+psycopg://mlmon:{password}@127.0.0.1:{port}/ads",
           "query": f"postgresql://mlmon@127.0.0.1:{port}/ads?password={password}"}[form]
    engine = "sqlalchemy" if form == "sqlalchemy" else "postgres"
    warehouse = {"engine": engine, "url": url, **({"connect_timeout": 1} if engine == "postgres" else {})}
    data = {"init_config": {"state_dir": str(tmp_path / "state"), "datadog": {"transport": "jsonl",
                                                                           "jsonl_path": str(tmp_path / "m.jsonl")}},
            "instances": [{"name": "pg", "warehouse": warehouse}]}
    config_path = tmp_path / "conf.yaml"
    config_path.write_text(yaml.safe_dump(data))
    assert main(["check", "--config", str(config_path)]) == 1
    printed = "".join(capfd.readouterr())
    sink = RecordingSink()
    Agent(parse_config(data), sink).run_once()
    checks = [c for c in sink.checks if c.name == "mlmon.warehouse.can_connect"]
    assert checks and all(c.status is CheckStatus.CRITICAL for c in checks)
    texts = {"mlmon check": printed, **{f"can_connect {i}": c.message or "" for i, c in enumerate(checks)}}
    pieces = {password, *re.split(r"[@:/%#]", password)}
    for where, text in texts.items():
        assert "instance pg" in text, (where, text)
        for piece in pieces:
            assert piece not in text, (where, piece, text)
