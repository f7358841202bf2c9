"""``mlmon assets export --format terraform``: the dashboards and monitors as Terraform JSON files.

For teams that manage Datadog with Terraform instead of ``mlmon assets sync``. ``--out DIR`` gets two
files, in Terraform's JSON syntax (``.tf.json``), both rewritten by every export:

* :data:`VERSIONS_FILE`: ``terraform { required_providers { datadog = { source = "DataDog/datadog" } } }``;
* :data:`ASSETS_FILE`: one ``datadog_monitor_json`` resource per monitor (those with ``enabled: false`` in
  config are left out) and one ``datadog_dashboard_json`` resource per dashboard, each named
  ``mlmon_<file name>`` (see :func:`resource_name`), sorted by name.

Each resource's ``monitor`` / ``dashboard`` string is the payload sync sends for the same config
(:func:`mlmon.assets.sync.desired_assets`: thresholds, notify handles, tags, the identity tag and
description marker), as JSON with sorted keys. Terraform reads a JSON string as a template, so ``${``
and ``%{`` in it are doubled (``$${``, ``%%{``) to stay literal; the string evaluates to that JSON.

The provider (terraform-provider-datadog, ``resource_datadog_monitor_json.go`` and
``resource_datadog_dashboard_json.go``) sends the string as the API body and leaves the fields Datadog
sets out of its diff (monitor: ``id``, ``created``, ``creator``, ``modified``, ``multi``,
``overall_state``, ``org_id``...; dashboard: ``id``, ``author_handle``, ``created_at``, ``url``,
widget ids...); it drops a dashboard's ``is_read_only`` before sending. None of them is in a payload:
the files pass ``mlmon assets validate`` first (read-only and unknown keys are errors there), and sync
adds only tags, message handles, thresholds and the description marker.

Any other file in ``DIR`` is left as it is; a file with one of the two names that mlmon did not write
(no :data:`MARKER` comment) is not overwritten.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlmon.assets.sync import Asset

VERSIONS_FILE = "mlmon_versions.tf.json"
ASSETS_FILE = "mlmon_assets.tf.json"
FILES = (VERSIONS_FILE, ASSETS_FILE)
#: the ``"//"`` comment (Terraform ignores the key) that marks a file as written by the export
MARKER = "Written by mlmon assets export --format terraform; the next export overwrites this file."
PROVIDER = {"datadog": {"source": "DataDog/datadog"}}
RESOURCE_TYPES = {"monitor": "datadog_monitor_json", "dashboard": "datadog_dashboard_json"}
_NOT_IN_IDENTIFIER = re.compile(r"[^a-z0-9_-]")


class ExportError(Exception):
    """The export cannot be written as asked; the message names the file."""


def resource_name(stem: str) -> str:
    """``mlmon_<file stem>``, lower case, other characters than letters, digits, ``_`` and ``-`` as ``_``.

    A valid Terraform identifier (it starts with a letter), stable across exports of the same file.
    """
    return "mlmon_" + _NOT_IN_IDENTIFIER.sub("_", stem.lower())


def template_literal(text: str) -> str:
    """``text`` as a Terraform string template that evaluates to ``text`` (``${`` and ``%{`` doubled)."""
    return text.replace("${", "$${").replace("%{", "%%{")


def payload_json(payload: dict[str, Any]) -> str:
    """The payload as the deterministic JSON text the export writes (sorted keys, no spaces)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def terraform_documents(assets: Iterable[Asset]) -> dict[str, dict[str, Any]]:
    """File name -> the JSON document to write there. Assets without a payload (disabled) are left out.

    Raises :class:`ExportError` when two files of one kind would give one resource name.
    """
    resources: dict[str, dict[str, Any]] = {}
    sources: dict[tuple[str, str], str] = {}
    for asset in assets:
        if asset.payload is None:
            continue
        kind, name = RESOURCE_TYPES[asset.kind], resource_name(asset.name)
        if (kind, name) in sources:
            raise ExportError(f"{asset.file}: its resource name {kind}.{name} is already that of "
                              f"{sources[kind, name]}; rename one of the files")
        sources[kind, name] = asset.file
        resources.setdefault(kind, {})[name] = {"//": asset.file,
                                                asset.kind: template_literal(payload_json(asset.payload))}
    assets_document: dict[str, Any] = {"//": MARKER}
    if resources:
        assets_document["resource"] = resources
    return {VERSIONS_FILE: {"//": MARKER, "terraform": {"required_providers": PROVIDER}},
            ASSETS_FILE: assets_document}


def render(document: dict[str, Any]) -> str:
    """A document as file text: indented, keys sorted, one trailing newline (the same bytes every time)."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_terraform(out: Path, assets: Iterable[Asset]) -> list[Path]:
    """Write :data:`FILES` into ``out`` (created if missing); returns their paths.

    Raises :class:`ExportError` when a file of those names exists that the export did not write, and
    :class:`OSError` when ``out`` cannot be created or written.
    """
    documents = terraform_documents(assets)
    out = Path(out)
    for name in documents:
        _check_ours(out / name)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in documents.items():
        (out / name).write_text(render(document), encoding="utf-8")
        written.append(out / name)
    return written


def _check_ours(path: Path) -> None:
    if not path.exists() and not path.is_symlink():
        return
    try:
        ours = json.loads(path.read_text(encoding="utf-8")).get("//") == MARKER
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise ExportError(f"{path} exists and was not written by mlmon assets export; not overwriting it "
                          "(move it away, or give another --out)")
