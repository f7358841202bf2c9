"""``mlmon init``: a starter config, the shipped ``conf.yaml.example`` with its required values filled in.

The example sets only what a config needs (the instance's ``name`` and ``warehouse``, as placeholders)
and shows every optional setting commented out at its default, as the Datadog Agent's own
``conf.yaml.example`` files do. :func:`starter_config` replaces the placeholder lines and uncomments
the few optional lines asked for; every other line, comments included, stays as shipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

#: ``postgresql://`` URLs are for engine postgres (libpq); any other ``scheme://`` goes through SQLAlchemy
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def warehouse_settings(warehouse: str) -> dict[str, str]:
    """The ``warehouse:`` mapping for ``--warehouse``: a libpq URL (engine postgres), another URL
    (engine sqlalchemy, the dialect from its scheme) or a DuckDB file, made absolute so that the
    config works from any working directory."""
    if warehouse.startswith(_POSTGRES_SCHEMES):
        return {"engine": "postgres", "url": warehouse}
    if _URL_RE.match(warehouse):
        return {"engine": "sqlalchemy", "url": warehouse}
    return {"engine": "duckdb", "path": str(Path(warehouse).expanduser().absolute())}


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when it reads back the same, else a JSON string (valid YAML)."""
    try:
        if yaml.safe_load(f"k: {value}") == {"k": value}:
            return value
    except yaml.YAMLError:
        pass
    return json.dumps(value, ensure_ascii=False)


def _replace(text: str, pattern: str, line: str) -> str:
    """``text`` with the one line matching ``pattern`` replaced by its indentation (group 1) and ``line``."""
    new, count = re.subn(pattern, lambda m: m.group(1) + line, text, flags=re.MULTILINE)
    if count != 1:  # the example was reshaped: tests/test_init.py runs this over the shipped file
        raise ValueError(f"conf.yaml.example: expected one line matching {pattern!r}, found {count}")
    return new


def _comment_out(text: str, pattern: str) -> str:
    """``text`` with the one line matching ``pattern`` (indentation, then the setting) commented out."""
    match = re.search(pattern, text, flags=re.MULTILINE)
    return _replace(text, pattern, "# " + (match.group(2) if match else ""))  # no match: _replace says so


def starter_config(example: str, *, name: str | None = None, warehouse: str | None = None,
                   env: str | None = None, agent: bool = False) -> str:
    """The example's text with the instance ``name``, the ``warehouse`` (see :func:`warehouse_settings`) and
    ``env`` filled in; ``agent`` sets the Datadog Agent check's ``min_collection_interval: 600`` and
    ``empty_default_hostname: true``. What is not given keeps the example's placeholder or default."""
    text = example
    if name is not None:
        text = _replace(text, r"^(  - )name: .*$", f"name: {_scalar(name)}")
    if warehouse is not None:
        settings = warehouse_settings(warehouse)
        text = _replace(text, r"^(      )engine: .*$", f"engine: {settings['engine']}")
        if "path" in settings:
            text = _replace(text, r"^(      )path: .*$", f"path: {_scalar(settings['path'])}")
        else:
            text = _comment_out(text, r"^(      )(path: .*)$")
            text = _replace(text, r"^(      )# url: .*$", f"url: {_scalar(settings['url'])}")
    if env is not None:
        text = _replace(text, r"^(  )# env: .*$", f"env: {_scalar(env)}")
    if agent:
        text = _replace(text, r"^(    )# min_collection_interval: .*$", "min_collection_interval: 600")
        text = _replace(text, r"^(    )# empty_default_hostname: .*$", "empty_default_hostname: true")
    return text
