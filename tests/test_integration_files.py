"""The files of a Datadog integration, held to the repository: manifest.json (the asset index) against the files it
lists, metadata.csv's units against the units Datadog accepts, LICENSE and CHANGELOG.md against pyproject.toml."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from mlmon import __version__

ROOT = Path(__file__).resolve().parents[1]
UNITS_FILE = Path(__file__).resolve().parent / "data" / "datadog_unit_names.txt"


def manifest() -> dict:
    return json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))


def metadata_rows() -> list[dict[str, str]]:
    with (ROOT / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --- manifest.json -----------------------------------------------------------------------------


def test_manifest_lists_every_dashboard_and_monitor_and_nothing_else() -> None:
    """assets.dashboards and assets.monitors name each dashboards/*.json and monitors/*.json once, keyed by
    the file's stem (the name `init_config.assets.monitors` and the mlmon_asset tag use), and every path
    listed exists."""
    assets = manifest()["assets"]
    for folder in ("dashboards", "monitors"):
        on_disk = {p.stem: p.relative_to(ROOT).as_posix() for p in sorted((ROOT / folder).glob("*.json"))}
        assert on_disk, folder
        assert assets[folder] == on_disk, (folder, sorted(set(assets[folder].items()) ^ set(on_disk.items())))


def test_manifest_paths_exist() -> None:
    """The metadata, service checks and changelog paths, and the README anchors of the tile, are there."""
    m = manifest()
    integration = m["assets"]["integration"]
    for relative in (integration["metrics"]["metadata_path"], integration["service_checks"]["metadata_path"],
                     m["tile"]["changelog"]):
        assert (ROOT / relative).is_file(), relative
    for key in ("overview", "configuration"):
        path, anchor = m["tile"][key].split("#")
        headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(encoding="utf-8"), re.MULTILINE)
        assert anchor in {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}, key


def test_manifest_metrics_match_the_catalogue() -> None:
    """metric_to_check is a catalogued metric, every catalogued metric has the metric prefix, and the
    integration name of metadata.csv is the manifest's."""
    integration = manifest()["assets"]["integration"]
    metrics = integration["metrics"]
    rows = metadata_rows()
    names = {row["metric_name"] for row in rows}
    checks = metrics["check"] if isinstance(metrics["check"], list) else [metrics["check"]]
    assert checks and set(checks) <= names, sorted(set(checks) - names)
    assert metrics["prefix"] == "mlmon."
    assert not [n for n in names if not n.startswith(metrics["prefix"])]
    assert {row["integration"] for row in rows} == {integration["source_type_name"]}


def test_manifest_has_only_the_fields_mlmon_fills() -> None:
    """Manifest version 2.0.0 with the fields that hold for an integration that is neither published by
    Datadog nor sold on the Marketplace (README: *Integration files*); the tile description fits the
    validator's 80 characters."""
    m = manifest()
    assert m["manifest_version"] == "2.0.0"
    assert set(m) == {"manifest_version", "app_id", "display_on_public_website", "tile", "assets"}
    assert set(m["assets"]) == {"integration", "dashboards", "monitors"}
    assert set(m["assets"]["integration"]) == {"source_type_name", "events", "metrics", "service_checks"}
    assert m["display_on_public_website"] is False
    assert len(m["tile"]["description"]) <= 80


# --- metadata.csv units ------------------------------------------------------------------------


def accepted_units() -> frozenset[str]:
    """Datadog's accepted unit names, vendored in tests/data/datadog_unit_names.txt (its header names the
    source): datadog-checks-dev no longer ships the metadata validator that holds them."""
    lines = UNITS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def test_every_unit_is_one_datadog_accepts() -> None:
    """Every unit_name and per_unit_name of metadata.csv is in Datadog's list (empty: no unit).

    Replacements made for units Datadog does not have, keeping the meaning:

    * ``point`` (points_sent, points_skipped, series_capped) -> ``sample``: a metric point is one timestamped
      value of one series, which is what Datadog's ``sample`` unit counts and what mlmon's code calls a
      ``Sample`` (mlmon.samples.Sample, "one metric point");
    * ``window`` (windows_processed) -> ``item``: Datadog has no unit for a span of time counted as a thing
      (``event`` is something that happened, ``second``/``hour`` would read as a duration); ``item`` is its
      unit for a discrete thing processed, and the metric's name says which.
    """
    units = accepted_units()
    assert {"second", "sample", "item", "prediction", "row"} <= units and "point" not in units
    bad = [(row["metric_name"], column, row[column]) for row in metadata_rows()
           for column in ("unit_name", "per_unit_name") if row[column] and row[column] not in units]
    assert not bad, bad


# --- LICENSE and CHANGELOG.md ------------------------------------------------------------------


def test_license_is_the_apache_license_pyproject_names() -> None:
    """pyproject.toml says Apache-2.0; LICENSE is that licence's full text."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    assert len(text.splitlines()) == 202


def test_changelog_starts_with_the_packages_version() -> None:
    """CHANGELOG.md's latest entry is the version pyproject.toml (and mlmon.__version__) carries, dated."""
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    entries = re.findall(r"^## (\d+\.\d+\.\d+) / (\d{4}-\d{2}-\d{2})$", changelog, re.MULTILINE)
    assert entries, "no '## <version> / <date>' entry"
    assert entries[0][0] == __version__
