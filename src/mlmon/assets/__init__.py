"""Datadog assets shipped with mlmon (``dashboards/``, ``monitors/``): validation and query parsing."""

from mlmon.assets.queries import metric_names, parse_monitor_query
from mlmon.assets.syntax import ParsedQuery, QueryError
from mlmon.assets.validate import SERVICE_CHECKS, asset_files, validate_assets

__all__ = [
    "SERVICE_CHECKS",
    "ParsedQuery",
    "QueryError",
    "asset_files",
    "metric_names",
    "parse_monitor_query",
    "validate_assets",
]
