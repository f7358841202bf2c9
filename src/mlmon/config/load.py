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


def expand_env(value: Any, unset: list[tuple[tuple[Any, ...], str]] | None = None,
               path: tuple[Any, ...] = ()) -> Any:
    """Expand ``${VAR}`` in every string of a loaded YAML tree (unset variables become "").

    ``unset`` collects (YAML path, variable) for each string that came out empty because its variables are
    unset or empty: :func:`parse_config` refuses those unless the key takes an empty value as "not set".
    """
    if isinstance(value, str):
        names = _ENV_RE.findall(value)
        out = _ENV_RE.sub(lambda m: os.environ.get(m.group(1), ""), value)
        if names and unset is not None and not out.strip():
            unset.append((path, names[0]))
        return out
    if isinstance(value, list):
        return [expand_env(v, unset, (*path, i)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: expand_env(v, unset, (*path, k)) for k, v in value.items()}
    return value


def _validated_value(config: Any, path: tuple[Any, ...]) -> Any:
    """The validated value at a YAML ``path`` of ``config`` (attributes, mapping keys, sequence indexes)."""
    node = config
    for part in path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, (list, tuple)) and isinstance(part, int):
            node = node[part] if 0 <= part < len(node) else None
        else:
            node = getattr(node, str(part), None)
        if node is None:
            return None
    return node


def _unset_problems(config: Config, unset: list[tuple[tuple[Any, ...], str]]) -> list[str]:
    """An unset variable is an error wherever an empty value would mean something (a URL, a path, a name)
    rather than "not set" (an optional key, a secret falling back to the environment)."""
    return [f"  {' -> '.join(map(str, path))}: ${{{name}}} is not set (the environment variable {name} is unset "
            "or empty)" for path, name in unset if _validated_value(config, path) is not None]


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
    unset: list[tuple[tuple[Any, ...], str]] = []
    try:
        config = Config.model_validate(expand_env(data, unset))
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
    if problems := _unset_problems(config, unset):
        raise ConfigError("\n".join([f"{source}: invalid configuration", *problems]))
    return config


class _UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types here
    """``yaml.safe_load``, refusing a mapping that repeats a key: PyYAML keeps the last one silently, so a
    second ``jobs:`` or ``enabled:`` would drop the first without a word."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (the first would be ignored)", key_node.start_mark)
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


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
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    return parse_config(data, str(path))
