"""Hold JSON to a ``datadog-api-client`` model, strictly, using the models' own metadata.

The client itself accepts unknown keys, unknown oneOf variants (``UnparsedObject``) and unknown enum
values, so the JSON is walked here instead. An object's keys must be ``attribute_map`` values and not
``read_only_vars``; its required properties (``__init__`` parameters without a default) must be
present; each value must fit its ``openapi_types`` entry and ``validations``. An enum
(``ModelSimple``) value must be in ``allowed_values``; a oneOf (``ModelComposed._composed_schemas``)
value must fit exactly one variant. Every message is ``<JSON path>: <problem>``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import inspect
import json
import re
import uuid
from collections.abc import Callable, Hashable
from functools import cache
from typing import Any

from datadog_api_client.model_utils import ModelComposed, ModelNormal, ModelSimple, OpenApiModel, check_validations

#: the client's own check of minItems, maximum, pattern... (untyped, hence Any)
_check_validations: Any = check_validations

_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LISTED_ENUM_VALUES = 8  # list the allowed values in a message when there are at most this many


def check_model(value: Any, model: Any, path: str = "$") -> list[str]:
    """Every way ``value`` (parsed JSON) departs from ``model``, as ``<JSON path>: <problem>`` lines."""
    return _check(value, model, path)


def child_path(path: str, key: str | int) -> str:
    """``$.a`` + ``b`` -> ``$.a.b``; ``$.a`` + ``3`` -> ``$.a[3]``; odd keys are quoted: ``$.a["x y"]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENTIFIER_RE.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def kind_of(value: Any) -> str:
    """How a JSON value reads in a message: ``a string``, ``an object``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _check(value: Any, spec: Any, path: str) -> list[str]:
    """``spec`` is an ``openapi_types`` entry: a tuple of alternatives, ``[item]``, ``{str: (...)}`` or a class."""
    if isinstance(spec, tuple):
        return _check_alternatives(value, spec, path)
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {kind_of(value)}"]
        return [p for i, item in enumerate(value) for p in _check_alternatives(item, tuple(spec), child_path(path, i))]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {kind_of(value)}"]
        (item_spec,) = spec.values()
        return [p for k, item in value.items() for p in _check_alternatives(item, item_spec, child_path(path, k))]
    if _is_model(spec, ModelComposed):
        return _check_one_of(value, spec, path)
    if _is_model(spec, ModelSimple):
        return _check_enum(value, spec, path)
    if _is_model(spec, ModelNormal):
        return _check_object(value, spec, path)
    if value is None and spec is type(None):
        return []
    if _fits_primitive(value, spec):
        return []
    return [f"{path}: expected {_describe(spec)}, got {kind_of(value)}"]


def _check_alternatives(value: Any, alternatives: tuple[Any, ...], path: str) -> list[str]:
    if value is None:
        return [] if any(_nullable(a) for a in alternatives) else [f"{path}: must not be null"]
    options = [a for a in alternatives if a is not type(None)]
    if len(options) == 1:
        return _check(value, options[0], path)
    results = [_check(value, option, path) for option in options]
    if any(not r for r in results):
        return []
    fitting = [r for option, r in zip(options, results, strict=True) if _same_kind(value, option)]
    return min(fitting, key=len) if fitting else [_wrong_shape(value, options, path)]


def _check_object(value: Any, model: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {kind_of(value)}"]
    types = _meta(model, "openapi_types")
    attribute_map = _meta(model, "attribute_map")
    validations = _meta(model, "validations")
    by_json = {json_name: name for name, json_name in attribute_map.items()}
    problems = []
    for key, item in value.items():
        where = child_path(path, key)
        if key not in by_json:
            problems.append(f"{where}: unknown key{_did_you_mean(key, by_json)}")
            continue
        name = by_json[key]
        if name in _meta(model, "read_only_vars"):
            problems.append(f"{where}: read-only key (Datadog sets it; leave it out of the payload)")
            continue
        found = _check_alternatives(item, types[name], where)
        if not found and name in validations:
            try:
                _check_validations(validations[name], key, item)
            except ValueError as exc:  # the client's ApiValueError is a ValueError
                found = [f"{where}: {exc}"]
        problems.extend(found)
    problems.extend(
        f"{path}: missing required key {attribute_map[name]!r}"
        for name in required_properties(model)
        if attribute_map[name] not in value
    )
    return problems


def _check_enum(value: Any, model: Any, path: str) -> list[str]:
    problems = _check_alternatives(value, _meta(model, "openapi_types")["value"], path)
    allowed = _meta(model, "allowed_values")
    if problems or not allowed or value in allowed:
        return problems
    return [f"{path}: {value!r} is not an allowed value{_hint(value, allowed)}"]


def _check_one_of(value: Any, model: Any, path: str) -> list[str]:
    variants = _variants(model)
    discriminator = _discriminator(model)
    if isinstance(value, dict) and discriminator is not None:
        key, by_value = discriminator
        if key not in value:
            return [f"{path}: missing required key {key!r}"]
        if not isinstance(value[key], Hashable) or value[key] not in by_value:
            label = _words(model.__name__).removesuffix(" definition")
            return [f"{child_path(path, key)}: unknown {label} {key.replace('_', ' ')} {value[key]!r}"
                    f"{_hint(value[key], by_value)}"]
        variants = by_value[value[key]]
    results = [(variant, _check(value, variant, path)) for variant in variants]
    matches = [variant for variant, problems in results if not problems]
    if len(matches) == 1:
        return []
    if matches:
        names = ", ".join(_describe(m) for m in matches)
        return [f"{path}: ambiguous: fits {names} (the API needs exactly one)"]
    if value is None:
        return [f"{path}: must not be null"]
    fitting = [problems for variant, problems in results if _same_kind(value, variant)]
    return min(fitting, key=len) if fitting else [_wrong_shape(value, variants, path)]


# --- metadata ----------------------------------------------------------------------------------


def _meta(model: Any, name: str) -> Any:
    """A class attribute of a generated model (``openapi_types`` is a class-level cached property)."""
    return getattr(model, name)


def _is_model(spec: Any, base: type[OpenApiModel]) -> bool:
    return inspect.isclass(spec) and issubclass(spec, base)


@cache
def required_properties(model: Any) -> tuple[str, ...]:
    """Python names of a model's required properties: its ``__init__`` parameters without a default."""
    parameters = list(inspect.signature(model.__init__).parameters.values())[1:]  # drop self_
    return tuple(
        p.name for p in parameters
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    )


def _variants(model: Any) -> list[Any]:
    variants: list[Any] = []
    for variant in _meta(model, "_composed_schemas").get("oneOf", ()):
        if variant not in variants:  # some schemas list a type twice (EventsAggregation: str, str)
            variants.append(variant)
    return variants


def _enum_values(variant: Any, key: str) -> set[Any] | None:
    """The values of ``variant``'s required enum property ``key`` (all of a nested oneOf's), or None."""
    if _is_model(variant, ModelComposed):
        values: set[Any] = set()
        for inner in _variants(variant):
            inner_values = _enum_values(inner, key)
            if inner_values is None:
                return None
            values |= inner_values
        return values
    if not _is_model(variant, ModelNormal):
        return None
    by_json = {json_name: name for name, json_name in _meta(variant, "attribute_map").items()}
    name = by_json.get(key)
    if name is None or name not in required_properties(variant):
        return None
    types = _meta(variant, "openapi_types")[name]
    if len(types) != 1 or not _is_model(types[0], ModelSimple):
        return None
    return set(_meta(types[0], "allowed_values")) or None


@cache
def _discriminator(model: Any) -> tuple[str, dict[Any, list[Any]]] | None:
    """A required enum property every variant has (``type`` for widgets), with value -> variants."""
    variants = _variants(model)
    first = next((v for v in variants if _is_model(v, ModelNormal)), None)
    if first is None or not all(_is_model(v, OpenApiModel) for v in variants):
        return None
    for key in _meta(first, "attribute_map").values():
        per_variant = [(v, _enum_values(v, key)) for v in variants]
        if all(values for _, values in per_variant):
            by_value: dict[Any, list[Any]] = {}
            for variant, values in per_variant:
                for v in values or ():
                    by_value.setdefault(v, []).append(variant)
            return key, by_value
    return None


def _nullable(spec: Any) -> bool:
    if spec is type(None):
        return True
    if _is_model(spec, OpenApiModel) and _meta(spec, "_nullable"):
        return True
    return _is_model(spec, ModelComposed) and any(_nullable(v) for v in _variants(spec))


# --- primitives and wording --------------------------------------------------------------------


def _fits_primitive(value: Any, spec: Any) -> bool:
    if spec is bool:
        return isinstance(value, bool)
    if spec is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if spec is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if spec in (str, dict, list):
        return isinstance(value, spec)
    if spec in (dt.datetime, dt.date):
        return isinstance(value, str) and _parses(lambda: dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    if spec is uuid.UUID:
        return isinstance(value, str) and _parses(lambda: uuid.UUID(value))
    return True  # a type JSON cannot carry (files): nothing to hold it to


def _parses(parse: Callable[[], object]) -> bool:
    try:
        parse()
    except ValueError:
        return False
    return True


def _same_kind(value: Any, spec: Any) -> bool:
    """Whether ``spec`` is the right shape for ``value`` (object for a dict, list for a list...)."""
    if isinstance(spec, list):
        return isinstance(value, list)
    if _is_model(spec, ModelNormal) or isinstance(spec, dict):
        return isinstance(value, dict)
    if _is_model(spec, ModelComposed):
        return any(_same_kind(value, v) for v in _variants(spec))
    if _is_model(spec, ModelSimple):
        return any(_fits_primitive(value, t) for t in _meta(spec, "openapi_types")["value"])
    return _fits_primitive(value, spec)


def _wrong_shape(value: Any, specs: list[Any], path: str) -> str:
    shapes = dict.fromkeys(_shape(spec) for spec in specs)
    return f"{path}: expected {' or '.join(shapes)}, got {kind_of(value)}"


def _shape(spec: Any) -> str:
    """The JSON shape a spec takes: ``an object`` for any object model, else as :func:`_describe`."""
    if _is_model(spec, ModelNormal) or _is_model(spec, ModelComposed):
        return "an object"
    if _is_model(spec, ModelSimple):
        return " or ".join(_describe(t) for t in _meta(spec, "openapi_types")["value"])
    return _describe(spec)


def _describe(spec: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", dict: "an object",
             list: "a list", dt.datetime: "a date-time string", dt.date: "a date string", uuid.UUID: "a UUID string",
             type(None): "null"}
    if isinstance(spec, list):
        return "a list"
    if isinstance(spec, dict):
        return "an object"
    if _is_model(spec, ModelSimple):
        return f"a {spec.__name__} value"
    if _is_model(spec, OpenApiModel):
        return str(spec.__name__)
    return names.get(spec) or str(getattr(spec, "__name__", spec))


def _words(name: str) -> str:
    """``WidgetDefinition`` -> ``widget definition``."""
    return " ".join(w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*|[a-z0-9]+", name))


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _hint(value: Any, allowed: Any) -> str:
    if isinstance(value, str) and (close := _did_you_mean(value, allowed)):
        return close
    if len(allowed) <= _LISTED_ENUM_VALUES:
        return "; expected one of " + ", ".join(repr(a) for a in sorted(allowed, key=str))
    return ""
