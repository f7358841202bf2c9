"""Build the configured sink."""

from __future__ import annotations

from mlmon.config import DatadogConfig
from mlmon.scrub import url_password_forms
from mlmon.sinks.base import Sink


def make_sink(cfg: DatadogConfig) -> Sink:
    """The sink for ``transport``; raises :class:`~mlmon.sinks.base.SinkError` if it cannot be built."""
    if cfg.transport == "jsonl":
        from mlmon.sinks.jsonl import JsonlSink

        return JsonlSink(cfg.jsonl_path)
    horizon = cfg.horizon
    if cfg.transport == "dogstatsd":
        from mlmon.sinks.dogstatsd import DogStatsdSink

        host, port, socket_path = cfg.resolved_dogstatsd()
        return DogStatsdSink(host, port, socket_path, horizon=horizon)
    from mlmon.sinks.datadog_api import DatadogApiSink

    # series, check_run and validate take the API key alone: the application key (for `assets sync`) is
    # not sent with them
    return DatadogApiSink(
        api_key=cfg.resolved_api_key() or "",
        api_host=cfg.resolved_api_host(),
        timeout=cfg.timeout,
        max_retries=cfg.max_retries,
        retry_backoff=cfg.retry_backoff,
        max_payload_bytes=cfg.max_payload_bytes,
        horizon=horizon,
    )


def secrets_of(cfg_datadog: DatadogConfig, urls: list[str]) -> list[str | None]:
    """Every secret the agent holds, for the log scrubber (each password as written and percent-decoded)."""
    passwords = [p for u in urls for p in url_password_forms(u)]
    return [cfg_datadog.resolved_api_key(), cfg_datadog.resolved_app_key(), *cfg_datadog.configured_secrets(),
            *urls, *passwords]
