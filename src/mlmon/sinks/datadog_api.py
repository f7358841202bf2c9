"""Datadog HTTP API sink, through the ``datadog`` package's API client.

Series go to ``/api/v1/series`` in chunks under ``max_payload_bytes`` with explicit timestamps and no
host; service checks go to ``/api/v1/check_run`` one by one, the latest status of each series only, when the job's
run ends (:meth:`DatadogApiSink.flush`).
The ``datadog`` client returns many failures as a dict instead of raising, and lets 4xx bodies
through: every answer is inspected, and an ``errors`` key, a ``DatadogException`` (connection
refused, timeout, 5xx), a 429 or any non-2xx status is a failure. 429, 5xx, timeouts and connection
errors are retried with exponential backoff and jitter (429 honours ``Retry-After``); then
:class:`SinkError` leaves the window pending.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from mlmon.samples import Point, Sample, ServiceCheck, latest_checks
from mlmon.sinks.base import SinkError
from mlmon.sinks.jsonl import to_series

log = logging.getLogger("mlmon.sinks.datadog_api")

# statuses the datadog client would turn into ApiError; we want the response object instead
_CLIENT_ERROR_CODES = [400, 401, 403, 404, 405, 408, 409, 413, 422, 429]
_RETRYABLE_CODES = {408, 429}
_MAX_RETRY_AFTER = 60.0


def retry_after_seconds(value: object) -> float | None:
    """A ``Retry-After`` header's delay in seconds, at most :data:`_MAX_RETRY_AFTER`; None (no hint: the
    backoff's own delay) for anything unusable: missing, negative, NaN, infinite, an HTTP date, text."""
    try:
        seconds = float(str(value))
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, _MAX_RETRY_AFTER)


_HTTP_STATUS_RE = re.compile(r"bad HTTP response code: (\d{3})")


def _http_status(exc: Exception) -> int | None:
    """The status of the datadog client's ``HTTPError`` (only in its message), None if it names none."""
    found = _HTTP_STATUS_RE.search(str(exc))
    return int(found.group(1)) if found else None


class _TooLarge(Exception):
    """HTTP 413: the body is over Datadog's payload limit; sending it again would be refused again."""


class _Retryable(Exception):
    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


def chunk_series(series: list[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
    """Split series objects into lists whose JSON payload stays under ``max_bytes``."""
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = len('{"series": []}')
    for obj in series:
        n = len(json.dumps(obj)) + 2
        if current and size + n > max_bytes:
            chunks.append(current)
            current, size = [], len('{"series": []}')
        current.append(obj)
        size += n
    if current:
        chunks.append(current)
    return chunks


def configure_client(api_key: str, app_key: str | None, api_host: str, timeout: float) -> None:
    """Point the ``datadog`` package's process-global API client at ``api_host``: no host name, no
    retries of its own (callers retry, bounded and logged), raw responses so statuses can be read."""
    from datadog import api

    api._api_key = api_key
    api._application_key = app_key
    api._api_host = api_host
    api._host_name = ""
    api._timeout = timeout  # type: ignore[assignment]
    api._max_retries = 0
    api._mute = False
    api._return_raw_response = True


class DatadogApiSink:
    """Submits through ``datadog.api``; configure one per process (the client's settings are global)."""

    def __init__(
        self,
        api_key: str,
        api_host: str,
        app_key: str | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        retry_backoff: float = 1.0,
        max_payload_bytes: int = 450_000,
        horizon: float | None = 50 * 60,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise SinkError("no Datadog API key: set init_config.datadog.api_key or DD_API_KEY")
        self._api_key = api_key
        self._app_key = app_key
        self._api_host = api_host
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = retry_backoff
        self._max_bytes = max_payload_bytes
        #: service checks submitted and not sent yet, by (name, tags): see :meth:`flush`
        self._held: dict[tuple[str, tuple[str, ...]], ServiceCheck] = {}
        self._sleep = sleep
        self.horizon = horizon

    def __repr__(self) -> str:  # never show the key
        return f"DatadogApiSink(api_host={self._api_host!r})"

    def _configure(self) -> None:
        configure_client(self._api_key, self._app_key, self._api_host, self._timeout)

    def _post_once(self, path: str, body: dict[str, Any]) -> None:
        from datadog.api.api_client import APIClient
        from datadog.api.exceptions import DatadogException, HttpBackoff, HTTPError

        self._configure()
        # the client's own circuit breaker would refuse calls for minutes after 3 timeouts
        APIClient._backoff_timestamp = None
        APIClient._timeout_counter = 0
        try:
            answer = APIClient.submit(
                "POST", path, body=body, attach_host_name=False,
                suppress_response_errors_on_codes=_CLIENT_ERROR_CODES,
            )
        except HttpBackoff as exc:
            raise _Retryable(f"client backing off: {exc}") from None
        except HTTPError as exc:  # the client raises these for statuses it does not hand back (413, 422, 5xx)
            code = _http_status(exc)
            if code == 413:
                raise _TooLarge(f"HTTP 413 from {path}: payload too large") from None
            if code is not None and 400 <= code < 500 and code not in _RETRYABLE_CODES:
                raise SinkError(f"Datadog rejected {path} (HTTP {code}): {exc}") from None
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        except DatadogException as exc:  # connection refused, timeout, ...
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # a non-JSON body
            raise _Retryable(f"unreadable answer: {exc}") from None
        obj, response = answer if isinstance(answer, tuple) else (answer, None)
        status = getattr(response, "status_code", 200)
        errors = obj.get("errors") if isinstance(obj, dict) else None
        if status in _RETRYABLE_CODES:
            delay = retry_after_seconds(getattr(response, "headers", {}).get("Retry-After"))
            raise _Retryable(f"HTTP {status} from {path}: {errors or 'rate limited'}", delay)
        if status == 413:
            raise _TooLarge(f"HTTP 413 from {path}: {errors or 'payload too large'}")
        if not 200 <= status < 300 or errors:
            raise SinkError(f"Datadog rejected {path} (HTTP {status}): {errors or obj}")

    def _post(self, path: str, body: dict[str, Any]) -> None:
        attempt = 0
        while True:
            try:
                self._post_once(path, body)
                return
            except _Retryable as exc:
                if attempt >= self._max_retries:
                    raise SinkError(f"Datadog {path} failed after {attempt + 1} attempts: {exc}") from None
                delay = exc.delay if exc.delay is not None else self._backoff * (2**attempt)
                delay *= 1 + random.random() * 0.25  # jitter so that agents do not retry in step
                log.warning("Datadog %s failed (%s); retry %d in %.1fs", path, exc, attempt + 1, delay)
                self._sleep(delay)
                attempt += 1

    def _post_series(self, chunk: list[dict[str, Any]]) -> None:
        """Post ``chunk``; refused as too large (413), post each half instead (never the same body again), down to
        one series, which is then an error naming it. Later chunks are cut to the size that went through."""
        try:
            self._post("series", {"series": chunk})
        except _TooLarge as exc:
            if len(chunk) == 1:
                raise SinkError(f"Datadog refused one series of {len(json.dumps(chunk[0]))} bytes as too large "
                                f"({exc}): {chunk[0].get('metric')}") from None
            half = len(chunk) // 2
            size = len(json.dumps({"series": chunk[:half]}))
            if size < self._max_bytes:
                log.warning("Datadog answered 413 to %d bytes of series: sending at most %d bytes a request from "
                            "now on", len(json.dumps({"series": chunk})), size)
                self._max_bytes = size
            self._post_series(chunk[:half])
            self._post_series(chunk[half:])

    def submit(self, points: Sequence[Point]) -> None:
        series = [to_series(p) for p in points if isinstance(p, Sample)]
        limit = self._max_bytes
        pending = collections.deque(chunk_series(series, limit))
        while pending:
            self._post_series(pending.popleft())
            if self._max_bytes < limit:  # a 413 taught a smaller limit: cut the rest again
                limit = self._max_bytes
                pending = collections.deque(chunk_series([s for chunk in pending for s in chunk], limit))
        # checks are held and sent by flush() at the end of the job's run: one request per check series, its
        # latest status, however many windows or submissions the run had (a one-day catch-up of 200 models once
        # made 28 600 requests)
        for check in (p for p in points if isinstance(p, ServiceCheck)):
            key = (check.name, tuple(sorted(check.tags)))
            held = self._held.get(key)
            if held is None or check.timestamp >= held.timestamp:
                self._held[key] = check

    def flush(self) -> None:
        """Send the held service checks, the latest status of each series; raise :class:`SinkError` when one is
        refused (the ones not sent are dropped: statuses, the next run sends current ones)."""
        held, self._held = list(self._held.values()), {}
        for check in latest_checks(held):
            body: dict[str, Any] = {
                "check": check.name,
                "host_name": "",
                "status": int(check.status),
                "timestamp": int(check.timestamp),
                "tags": list(check.tags),
            }
            if check.message:
                body["message"] = check.message[:500]
            self._post("check_run", body)

    def validate(self) -> str | None:
        """Ask ``/api/v1/validate`` whether the API key is valid; ``None`` if it is, else the reason."""
        from datadog.api.api_client import APIClient
        from datadog.api.exceptions import DatadogException

        self._configure()
        try:
            answer = APIClient.submit("GET", "validate", suppress_response_errors_on_codes=_CLIENT_ERROR_CODES)
        except DatadogException as exc:
            return f"cannot reach {self._api_host}: {type(exc).__name__}"
        obj, response = answer if isinstance(answer, tuple) else (answer, None)
        status = getattr(response, "status_code", 200)
        if status == 200 and isinstance(obj, dict) and obj.get("valid"):
            return None
        return f"API key rejected by {self._api_host} (HTTP {status})"
