"""``init_config -> assets``: how ``mlmon assets sync`` adapts the shipped dashboards and monitors."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from mlmon.config.types import _Frozen

_HANDLE_RE = re.compile(r"@[^\s@][^\s]*")
_TAG_RE = re.compile(r"[^\s,]+")
#: the tag (monitors) and description marker (dashboards) by which `mlmon assets sync` finds its assets
ASSET_IDENTITY_TAG = "mlmon_asset"


def _notify_handle(value: object) -> str:
    if not isinstance(value, str) or not _HANDLE_RE.fullmatch(value):
        raise ValueError(f"expected a notification handle such as @slack-ml-alerts, got {value!r}")
    return value


def _asset_tag(value: object) -> str:
    if not isinstance(value, str) or not _TAG_RE.fullmatch(value) or value.startswith(ASSET_IDENTITY_TAG + ":"):
        raise ValueError(f"expected a tag such as team:ads (no commas or spaces; {ASSET_IDENTITY_TAG}: is "
                         f"set by mlmon), got {value!r}")
    return value


NotifyHandle = Annotated[str, BeforeValidator(_notify_handle)]
AssetTag = Annotated[str, BeforeValidator(_asset_tag)]


class MonitorThresholds(_Frozen):
    """Threshold overrides: each key given replaces the file's value; ``null`` removes it (not critical)."""

    critical: float | None = None
    warning: float | None = None
    ok: float | None = None
    critical_recovery: float | None = None
    warning_recovery: float | None = None

    @model_validator(mode="after")
    def _critical_stays(self) -> MonitorThresholds:
        if "critical" in self.model_fields_set and self.critical is None:
            raise ValueError("critical cannot be removed, only changed")
        return self

    def overrides(self) -> dict[str, float | None]:
        """The thresholds the config sets (``None``: remove that threshold)."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class MonitorOverride(_Frozen):
    """Changes to one shipped monitor, keyed by its file name under ``monitors/`` without ``.json``."""

    enabled: bool = True
    thresholds: MonitorThresholds = MonitorThresholds()
    #: handles for this monitor instead of ``assets.notify`` (``[]``: none)
    notify: tuple[NotifyHandle, ...] | None = None
    tags: tuple[AssetTag, ...] = ()


class AssetsConfig(_Frozen):
    """How ``mlmon assets sync`` adapts the shipped dashboards and monitors to an account."""

    notify: tuple[NotifyHandle, ...] = ()
    tags: tuple[AssetTag, ...] = ()
    monitors: dict[str, MonitorOverride] = Field(default_factory=dict)
