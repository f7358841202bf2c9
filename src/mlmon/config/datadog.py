"""``init_config -> datadog``: where and how metrics are sent, with the Datadog Agent's environment precedence."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from mlmon.config.types import Duration, OptionalSecret, OptionalStr, _Frozen


def _env(*names: str) -> str | None:
    """The first of ``names`` set to a non-empty value in the environment."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value() or None


class DatadogConfig(_Frozen):
    """Where and how metrics are sent."""

    api_key: OptionalSecret = None
    app_key: OptionalSecret = None
    site: OptionalStr = None
    api_host: OptionalStr = None
    transport: Literal["api", "jsonl", "dogstatsd"] = "api"
    jsonl_path: Path = Path("metrics.jsonl")
    dogstatsd_host: OptionalStr = None
    dogstatsd_port: int | None = Field(default=None, ge=1, le=65535)
    dogstatsd_socket: OptionalStr = None
    #: Datadog Agent check only: where windows older than ``late_after`` go (the Agent stamps at flush)
    late_windows: Literal["agent", "dogstatsd", "api"] = "agent"
    late_after: Duration = Field(default=15 * 60, gt=0)
    historical_ingestion: bool = False
    ingestion_horizon: Duration = Field(default=50 * 60, gt=0)
    timeout: Duration = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_backoff: Duration = Field(default=1.0, ge=0)
    max_payload_bytes: int = Field(default=450_000, ge=10_000, le=3_000_000)
    #: the most wall time one job run spends handing windows to the sink (retries and their waits included): past
    #: it the windows not yet sent stay pending for the next run, so a slow or rate-limiting Datadog cannot hold a
    #: run, and the scheduler, for hours
    send_budget: Duration = Field(default=600.0, gt=0)

    @property
    def horizon(self) -> float | None:
        """How old a point's timestamp may be for the destination to keep it: ``ingestion_horizon`` for the API
        and DogStatsD without ``historical_ingestion``; None (any age) then, and for the JSON Lines file."""
        return None if self.transport == "jsonl" or self.historical_ingestion else self.ingestion_horizon

    # One precedence rule, the Datadog Agent's: the config file, with the Datadog environment variables
    # (``DD_*``, and the ``datadog`` package's ``DATADOG_*``) overriding it when set and not empty.

    def resolved_api_key(self) -> str | None:
        """The API key: ``DD_API_KEY`` / ``DATADOG_API_KEY`` when set, else ``api_key``."""
        return _env("DD_API_KEY", "DATADOG_API_KEY") or _secret(self.api_key)

    def resolved_app_key(self) -> str | None:
        """The application key: ``DD_APP_KEY`` / ``DATADOG_APP_KEY`` when set, else ``app_key``."""
        return _env("DD_APP_KEY", "DATADOG_APP_KEY") or _secret(self.app_key)

    def resolved_dogstatsd(self) -> tuple[str, int, str | None]:
        """DogStatsD (host, port, socket path): ``DD_AGENT_HOST``, ``DD_DOGSTATSD_PORT`` and
        ``DD_DOGSTATSD_SOCKET`` when set (as the Datadog client libraries read them), else the config's
        ``dogstatsd_*``, else localhost:8125 over UDP."""
        host = _env("DD_AGENT_HOST") or self.dogstatsd_host or "localhost"
        port_text = _env("DD_DOGSTATSD_PORT")
        port = int(port_text) if port_text and port_text.isdigit() else self.dogstatsd_port or 8125
        socket_path = _env("DD_DOGSTATSD_SOCKET") or self.dogstatsd_socket or None
        return host, port, socket_path

    def resolved_api_host(self) -> str:
        """API base URL: ``DATADOG_HOST``, then ``DD_SITE`` when set; else ``api_host``, then ``site``;
        else datadoghq.com."""
        if host := _env("DATADOG_HOST"):
            return host.rstrip("/")
        if site := _env("DD_SITE"):
            return f"https://api.{site}"
        if self.api_host:
            return self.api_host.rstrip("/")
        if self.site:
            return f"https://api.{self.site}"
        return "https://api.datadoghq.com"

    def configured_secrets(self) -> list[str]:
        """The keys written in the config, used or overridden: the log scrubber knows both."""
        return [k for k in (_secret(self.api_key), _secret(self.app_key)) if k]
