"""The command line as text: help a person can read, and output piped into a reader that stops early."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import pytest
import yaml

from mlmon.cli import build_parser
from mlmon.scenarios import build_frames, write_duckdb


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("mlmon",)):
    """Every (command path, parser) of the CLI, the top level included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


COMMANDS = dict(commands(build_parser()))
MARKUP = ("``", "`", ":func:", ":class:", ":meth:", ".. ", "**")


@pytest.mark.parametrize("path", [pytest.param(p, id=" ".join(p)) for p in COMMANDS])
def test_help_is_plain_text_and_every_option_has_a_line(path, capsys) -> None:
    """``--help`` of each command: a description, a help line for every option and argument, no reST or Markdown."""
    parser = COMMANDS[path]
    assert parser.description, f"{' '.join(path)} --help has no description"
    for action in parser._actions:
        if action.dest != "help":
            assert action.help and action.help != argparse.SUPPRESS, f"{' '.join(path)} {action.option_strings}"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert not [m for m in MARKUP if m in text], text


def test_closed_pipe_ends_quietly(tmp_path) -> None:
    """``mlmon plan --format json | head -c 0``: the reader is gone before mlmon writes; no traceback, exit 141."""
    write_duckdb(tmp_path / "warehouse.duckdb", build_frames(time.time(), hours=2))
    config = tmp_path / "conf.yaml"
    config.write_text(yaml.safe_dump({"init_config": {"state_dir": str(tmp_path / "state")}, "instances": [
        {"name": "ads", "warehouse": {"engine": "duckdb", "path": str(tmp_path / "warehouse.duckdb")}}]}))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from mlmon.cli import main; sys.exit(main(sys.argv[1:]))",
         "plan", "--format", "json", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.close()  # as head does once it has what it wants
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141
