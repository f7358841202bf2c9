"""The Parquet files an engine reads for ``warehouse.parquet`` (DuckDB and Spark register them as views)."""

from __future__ import annotations

import glob
from pathlib import Path

from mlmon.warehouse.engines.base import WarehouseError


def _has_glob(location: str) -> bool:
    return any(c in location for c in "*?[")


def parquet_source(key: str, location: str) -> tuple[str, bool]:
    """What an engine reads for ``warehouse.parquet.<key>``, and whether it is a folder.

    Local paths are checked here so that a typo is an error naming the key and the path, not an
    engine's message about a view; object-store URLs (``s3://...``) are left to the engine.
    """
    where = f"warehouse -> parquet -> {key}"
    if "://" in location:
        return location, False
    if _has_glob(location):
        if not any(Path(p).is_file() for p in glob.iglob(location, recursive=True)):
            raise WarehouseError(f"{where}: {location} matches no file")
        return location, False
    path = Path(location)
    if not path.exists():
        raise WarehouseError(f"{where}: {location} does not exist")
    if path.is_dir():
        if next(path.rglob("*.parquet"), None) is None:
            raise WarehouseError(f"{where}: no *.parquet file under {location}")
        return location, True
    return location, False
