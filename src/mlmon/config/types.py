"""The value types the config models share: durations, identifiers, optional strings and secrets, and
the frozen base model that reads a YAML-null section as its defaults."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, model_validator

#: a name from config put into SQL as a quoted identifier: ``[A-Za-z_][A-Za-z0-9_.]*`` (the data contract's
#: rule) whose dot-separated parts are names too (``schema.table``; ``a..b`` and ``a.`` once failed only at run time)
IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
#: the longest duration any setting takes: a year and a day (an initial_lookback of 10^15 s once listed
#: windows until the machine ran out of memory)
MAX_DURATION = 366 * 86400.0


def parse_duration(value: object) -> float:
    """Parse ``30s``, ``10m``, ``1h``, ``1d``, ``1w`` or a number of seconds into seconds (at most
    :data:`MAX_DURATION`)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m, 1h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration such as 30s, 10m, 1h or 1d, got {value!r}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if not seconds <= MAX_DURATION:  # NaN and inf too
        raise ValueError(f"expected a duration of at most 366d (a year), got {value!r}")
    return seconds


def _identifier(value: object) -> str:
    if not isinstance(value, str) or not IDENTIFIER_RE.fullmatch(value):
        raise ValueError(f"expected an identifier matching [A-Za-z_][A-Za-z0-9_.]* with a name between dots "
                         f"(schema.table), got {value!r}")
    return value


def _empty_to_none(value: object) -> object:
    return None if value == "" else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Identifier = Annotated[str, BeforeValidator(_identifier)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_empty_to_none)]
OptionalStr = Annotated[str | None, BeforeValidator(_empty_to_none)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_section(cls, data: Any) -> Any:
        # a section whose every setting is commented out (`datadog:`, `jobs:` in conf.yaml.example, as in
        # the Datadog Agent's files) is YAML null: it means the defaults, as an empty mapping does
        return {} if data is None else data
