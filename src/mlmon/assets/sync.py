"""``mlmon assets sync``: create or update the shipped dashboards and monitors in a Datadog account.

Identity, so that a second sync changes nothing and creates no duplicates:

* a monitor carries the tag ``mlmon_asset:<file stem>`` and is looked up by it
  (``GET /api/v1/monitor?monitor_tags=...``), so a monitor renamed in the account is still found;
* a dashboard carries the marker ``mlmon_asset:<file stem>`` in its description (dashboard tags take
  ``team:`` names only) and is looked up in ``GET /api/v1/dashboard``.

The desired payload is the file with the config's ``assets`` overrides applied. It is compared with
the account's copy on the keys the payload sets only (ids and defaults Datadog adds are ignored; tags
are compared as sets and monitor thresholds as a whole), and each asset is created, updated (the
differing keys are listed) or left unchanged. When two copies carry one identity (a monitor cloned in
the UI keeps its tags) the lowest id is synced and the others are reported, never deleted.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

from mlmon.assets.queries import METRIC_MONITOR_TYPES, parse_monitor_query
from mlmon.assets.validate import asset_files
from mlmon.config import ASSET_IDENTITY_TAG, AssetsConfig, ConfigError, MonitorOverride

Kind = Literal["dashboard", "monitor"]
Action = Literal["create", "update", "unchanged", "skip"]

#: statuses the datadog client would raise on; we want the answer and its status instead
_ANSWER_CODES = [200, 201, 202, 204, 400, 401, 403, 404, 405, 408, 409, 413, 422, 429]
_STATUS_RE = re.compile(r"response code: (\d{3})")
_QUERY_THRESHOLD_RE = re.compile(r"(>=|<=|>|<)\s*-?\s*[0-9.]+(?:[eE][-+]?[0-9]+)?\s*$")
#: compared as sets (Datadog does not keep tag order) / as a whole (a removed threshold is a change)
_UNORDERED_KEYS = frozenset({"tags"})
_WHOLE_KEYS = frozenset({"options.thresholds"})
_MAX_DASHBOARD_TAGS = 5


class SyncError(Exception):
    """A Datadog call failed; the message names the asset file and the HTTP status."""


@dataclass(frozen=True)
class Asset:
    """One shipped file and the payload the account should hold (``None``: left out by config)."""

    kind: Kind
    name: str
    file: str
    payload: dict[str, Any] | None

    @property
    def identity(self) -> str:
        """``mlmon_asset:<file stem>``: the monitor tag or dashboard description marker."""
        return f"{ASSET_IDENTITY_TAG}:{self.name.lower()}"


@dataclass(frozen=True)
class Change:
    """What sync does to one asset: ``remote_id`` is the account's copy, ``differences`` the keys that differ."""

    asset: Asset
    action: Action
    remote_id: int | str | None = None
    differences: tuple[str, ...] = ()
    duplicates: tuple[int | str, ...] = ()

    def describe(self) -> str:
        """One line of the changes :func:`compute_changes` lists."""
        where = f" {self.remote_id}" if self.remote_id is not None else ""
        line = f"{self.action:<9} {self.asset.kind} {self.asset.file}{where}"
        if self.differences:
            line += f" (differs: {', '.join(self.differences)})"
        if self.action == "skip":
            line += " (enabled: false in config)"
        if self.duplicates:
            line += f"; also carrying {self.asset.identity}, left as they are: {', '.join(map(str, self.duplicates))}"
        return line


# --- desired payloads --------------------------------------------------------------------------


def desired_assets(root: Path, settings: AssetsConfig, source: str = "<config>") -> list[Asset]:
    """The dashboards and monitors under ``root`` with the ``assets`` overrides applied.

    Raises :class:`ConfigError` (naming ``source`` and the key) when an override names no shipped
    monitor or cannot apply to its monitor.
    """
    files = asset_files(Path(root))
    monitor_names = {path.stem for path in files if path.parent.name == "monitors"}
    for name in settings.monitors:
        if name not in monitor_names:
            _config_error(source, ("monitors", name),
                          f"no such monitor; expected one of {', '.join(sorted(monitor_names))}")
    assets = []
    for path in files:
        document = json.loads(path.read_text(encoding="utf-8"))
        relative = path.relative_to(root).as_posix()
        if path.parent.name == "monitors":
            override = settings.monitors.get(path.stem, MonitorOverride())
            payload = monitor_payload(path.stem, document["definition"], settings, override, source)
            assets.append(Asset("monitor", path.stem, relative, payload))
        else:
            assets.append(Asset("dashboard", path.stem, relative, dashboard_payload(path.stem, document, settings,
                                                                                    source)))
    return assets


def monitor_payload(
    name: str, definition: dict[str, Any], settings: AssetsConfig, override: MonitorOverride, source: str
) -> dict[str, Any] | None:
    """The ``/api/v1/monitor`` payload for one shipped monitor, or ``None`` when disabled in config."""
    if not override.enabled:
        return None
    payload = copy.deepcopy(definition)
    overrides = override.thresholds.overrides()
    if overrides:
        _override_thresholds(name, payload, overrides, source)
    handles = settings.notify if override.notify is None else override.notify
    if handles:
        payload["message"] = f"{payload.get('message', '').rstrip()}\n\n{' '.join(handles)}"
    identity = f"{ASSET_IDENTITY_TAG}:{name.lower()}"
    payload["tags"] = _unique([*payload.get("tags", ()), *settings.tags, *override.tags, identity])
    return payload


def _override_thresholds(name: str, payload: dict[str, Any], overrides: dict[str, float | None], source: str) -> None:
    thresholds = payload.setdefault("options", {}).setdefault("thresholds", {})
    for key, value in overrides.items():
        if value is None:
            thresholds.pop(key, None)
        else:
            thresholds[key] = _number(value)
    critical, warning = thresholds.get("critical"), thresholds.get("warning")
    if payload.get("type") not in METRIC_MONITOR_TYPES or critical is None:
        return  # a service check's thresholds are counts of statuses, not in its query
    comparator = parse_monitor_query(payload["query"], payload["type"]).comparator or ">"
    if "critical" in overrides:
        # the query ends with "<comparator> <critical>"; Datadog rejects a monitor where they differ
        payload["query"] = _QUERY_THRESHOLD_RE.sub(f"{comparator} {_format(critical)}", payload["query"])
    above = comparator.startswith(">")
    if warning is not None and (warning >= critical if above else warning <= critical):
        _config_error(source, ("monitors", name, "thresholds"),
                      f"warning {_format(warning)} must be {'below' if above else 'above'} critical "
                      f"{_format(critical)} for a '{comparator}' monitor")


def dashboard_payload(name: str, document: dict[str, Any], settings: AssetsConfig, source: str) -> dict[str, Any]:
    """The ``/api/v1/dashboard`` payload: the identity marker in the description, ``team:`` tags added."""
    payload = copy.deepcopy(document)
    marker = f"Managed by mlmon assets sync ({ASSET_IDENTITY_TAG}:{name.lower()})."
    description = (payload.get("description") or "").rstrip()
    payload["description"] = f"{description}\n\n{marker}" if description else marker
    teams = [tag for tag in settings.tags if tag.startswith("team:")]
    if teams:
        tags = _unique([*(payload.get("tags") or ()), *teams])
        if len(tags) > _MAX_DASHBOARD_TAGS:
            _config_error(source, ("tags",), f"a dashboard takes at most {_MAX_DASHBOARD_TAGS} team: tags; "
                                             f"{name} would get {len(tags)}")
        payload["tags"] = tags
    return payload


def _config_error(source: str, path: tuple[str, ...], message: str) -> NoReturn:
    location = " -> ".join(("init_config", "assets", *path))
    raise ConfigError(f"{source}: invalid configuration\n  {location}: {message}")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _format(value: float) -> str:
    return str(_number(value))


# --- comparison --------------------------------------------------------------------------------


def differences(desired: Any, existing: Any, path: str = "") -> list[str]:
    """The paths where ``existing`` departs from ``desired``, looking only at keys ``desired`` sets."""
    if path in _UNORDERED_KEYS:
        same = isinstance(existing, list) and sorted(map(str, desired)) == sorted(map(str, existing))
        return [] if same else [path]
    if isinstance(desired, dict) and isinstance(existing, dict) and path not in _WHOLE_KEYS:
        return [found for key, value in desired.items()
                for found in differences(value, existing.get(key), f"{path}.{key}" if path else key)]
    if isinstance(desired, list) and isinstance(existing, list) and len(desired) == len(existing):
        return [found for i, (want, have) in enumerate(zip(desired, existing, strict=True))
                for found in differences(want, have, f"{path}[{i}]")]
    return [] if desired == existing else [path or "$"]


# --- the account -------------------------------------------------------------------------------


class DatadogAssetsApi:
    """Monitors and dashboards through the ``datadog`` package; its settings are process-global."""

    def __init__(self, api_key: str, app_key: str, api_host: str, timeout: float = 10.0) -> None:
        self._api_key = api_key
        self._app_key = app_key
        self._api_host = api_host
        self._timeout = timeout

    def __repr__(self) -> str:  # never show the keys
        return f"DatadogAssetsApi(api_host={self._api_host!r})"

    def _configure(self) -> None:
        from mlmon.sinks.datadog_api import configure_client

        configure_client(self._api_key, self._app_key, self._api_host, self._timeout)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        """One request; raises :class:`SyncError` with the status unless Datadog answered 2xx without errors."""
        from datadog.api.api_client import APIClient
        from datadog.api.exceptions import ApiError, DatadogException

        self._configure()
        # the client's circuit breaker would refuse calls for minutes after 3 timeouts
        APIClient._backoff_timestamp = None
        APIClient._timeout_counter = 0
        try:
            obj, response = APIClient.submit(method, path, body=body, suppress_response_errors_on_codes=_ANSWER_CODES,
                                             **params)
        except ApiError as exc:
            raise SyncError(f"{method} /api/v1/{path} failed: {exc.args[0]}") from None
        except DatadogException as exc:
            found = _STATUS_RE.search(str(exc))
            status = f"HTTP {found.group(1)}" if found else type(exc).__name__
            raise SyncError(f"{method} /api/v1/{path} failed ({status}): {exc}") from None
        except ValueError as exc:  # a body that is not JSON
            raise SyncError(f"{method} /api/v1/{path} failed: unreadable answer: {exc}") from None
        errors = obj.get("errors") if isinstance(obj, dict) else None
        if not 200 <= response.status_code < 300 or errors:
            raise SyncError(f"{method} /api/v1/{path} failed (HTTP {response.status_code}): {errors or obj}")
        return obj


def _find(asset: Asset, api: DatadogAssetsApi, dashboards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The account's copies of ``asset``, lowest id first."""
    if asset.kind == "monitor":
        found = api.call("GET", "monitor", monitor_tags=asset.identity)
        # the filter is the server's; check the tag ourselves so that only this identity matches
        matches = [m for m in (found if isinstance(found, list) else []) if asset.identity in (m.get("tags") or ())]
        return sorted(matches, key=lambda m: int(m["id"]))
    marker = re.compile(rf"(?<![\w:.-]){re.escape(asset.identity)}(?![\w.-])")
    matches = [d for d in dashboards if marker.search(d.get("description") or "")]
    return sorted(matches, key=lambda d: str(d["id"]))


def compute_changes(assets: list[Asset], api: DatadogAssetsApi) -> list[Change]:
    """Read the account and decide, per asset, create / update / unchanged / skip. Writes nothing."""
    dashboards: list[dict[str, Any]] = []
    if any(a.kind == "dashboard" for a in assets):
        names = ", ".join(a.file for a in assets if a.kind == "dashboard")
        try:
            dashboards = (api.call("GET", "dashboard") or {}).get("dashboards") or []
        except SyncError as exc:
            raise SyncError(f"{names}: {exc}") from None
    changes = []
    for asset in assets:
        try:
            changes.append(_change(asset, api, dashboards))
        except SyncError as exc:
            raise SyncError(f"{asset.file}: {exc}") from None
    return changes


def _change(asset: Asset, api: DatadogAssetsApi, dashboards: list[dict[str, Any]]) -> Change:
    copies = _find(asset, api, dashboards)
    first, others = (copies[0], tuple(c["id"] for c in copies[1:])) if copies else (None, ())
    if asset.payload is None:
        return Change(asset, "skip", first["id"] if first else None, duplicates=others)
    if first is None:
        return Change(asset, "create")
    existing = first if asset.kind == "monitor" else api.call("GET", f"dashboard/{first['id']}")
    diff = tuple(differences(asset.payload, existing))
    return Change(asset, "update" if diff else "unchanged", first["id"], diff, others)


def apply(changes: list[Change], api: DatadogAssetsApi, echo: Callable[[str], None]) -> list[Change]:
    """Create and update what ``changes`` says; returns them with the ids of created assets."""
    done = []
    for change in changes:
        asset = change.asset
        if change.action == "create":
            try:
                answer = api.call("POST", asset.kind, body=asset.payload)
            except SyncError as exc:
                raise SyncError(f"{asset.file}: {exc}") from None
            change = Change(asset, "create", answer.get("id"))
            echo(f"created   {asset.kind} {asset.file} {change.remote_id}")
        elif change.action == "update":
            try:
                api.call("PUT", f"{asset.kind}/{change.remote_id}", body=asset.payload)
            except SyncError as exc:
                raise SyncError(f"{asset.file}: {exc}") from None
            echo(f"updated   {asset.kind} {asset.file} {change.remote_id}")
        done.append(change)
    return done


def summary(changes: list[Change], dry_run: bool) -> str:
    """``11 monitor(s), 1 dashboard(s): 2 to create, ...`` (``created``... after a real sync)."""
    counts = {action: sum(c.action == action for c in changes) for action in ("create", "update", "unchanged", "skip")}
    kinds = {kind: sum(c.asset.kind == kind for c in changes) for kind in ("monitor", "dashboard")}
    verbs = ("to create", "to update") if dry_run else ("created", "updated")
    text = (f"{kinds['monitor']} monitor(s), {kinds['dashboard']} dashboard(s): {counts['create']} {verbs[0]}, "
            f"{counts['update']} {verbs[1]}, {counts['unchanged']} unchanged, {counts['skip']} skipped")
    return f"{text} (dry run: nothing written)" if dry_run else text
