"""Loading: read the YAML file safely, expand ``${VAR}``, validate, and report errors by file and YAML path."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlmon.config.instance import Config

DEFAULT_CONFIG_PATH = Path("conf.d/mlmon.d/conf.yaml")

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid. The message names file and path."""


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
