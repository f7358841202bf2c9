"""A loopback Datadog HTTP intake: a real HTTP server on 127.0.0.1 that records what clients send.

It answers ``/api/v1/series``, ``/api/v1/check_run`` and ``/api/v1/validate`` like Datadog, and can
be told to answer the next requests with failures (status, ``Retry-After``, a delay past the client's
timeout, or a dropped connection) to test retries and pending windows.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """A scripted answer for one request."""

    status: int = 202
    body: dict[str, Any] = field(default_factory=lambda: {"status": "ok"})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    """One request the intake received (decoded JSON body, header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int


class IntakeServer:
    """Start with ``with IntakeServer() as intake:``; point the client at ``intake.url``."""

    def __init__(self, valid_keys: tuple[str, ...] | None = None) -> None:
        self.requests: list[Request] = []
        self.replies: deque[Reply] = deque()
        self.valid_keys = valid_keys
        self._lock = threading.Lock()
        intake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.headers.get("Content-Encoding") == "deflate":
                    raw = zlib.decompress(raw)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                path = self.path.split("?", 1)[0]
                with intake._lock:
                    reply = intake.replies.popleft() if intake.replies else None
                if reply is None:
                    key = self.headers.get("DD-API-KEY")
                    if intake.valid_keys is not None and key not in intake.valid_keys:
                        reply = Reply(403, {"errors": ["Forbidden"]})
                    elif path.endswith("/validate"):
                        reply = Reply(200, {"valid": True})
                    else:
                        reply = Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                with intake._lock:
                    intake.requests.append(
                        Request(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body, reply.status)
                    )
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = _handle
            do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL to use as ``api_host``."""
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> IntakeServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> IntakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self.replies.extend(replies)

    def accepted(self, path_suffix: str) -> list[Request]:
        """Requests to a path ending in ``path_suffix`` that were answered 2xx."""
        return [r for r in self.requests if r.path.endswith(path_suffix) and 200 <= r.status < 300]

    def series(self) -> list[dict[str, Any]]:
        """Every series object of every accepted ``/api/v1/series`` request."""
        return [s for r in self.accepted("/series") for s in r.body["series"]]

    def service_checks(self) -> list[dict[str, Any]]:
        """Every accepted service check."""
        return [r.body for r in self.accepted("/check_run")]
