"""A loopback Datadog HTTP intake: a real HTTP server on 127.0.0.1 that records what clients send.

It answers ``/api/v1/series``, ``/api/v1/check_run`` and ``/api/v1/validate`` like Datadog, and can
be told to answer the next requests with failures (status, ``Retry-After``, a delay past the client's
timeout) or to be down until told to recover, to test retries and pending windows. ``port`` binds a
fixed port, so that a test can start the intake where a client first found nothing listening.

It also keeps a small account: ``/api/v1/monitor`` (list with the ``monitor_tags`` and ``name``
filters, create, get, update) and ``/api/v1/dashboard`` (list of summaries, create, get, replace),
held in :attr:`IntakeServer.monitors` and :attr:`IntakeServer.dashboards` for assertions. Like
Datadog, these need an application key (``DD-APPLICATION-KEY``) when ``valid_keys`` is set, add ids and
defaults to what they store, and refuse a metric monitor whose query threshold is not its critical
threshold.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_RESOURCE_RE = re.compile(r"/api/v1/(monitor|dashboard)(?:/([^/]+))?")
_QUERY_THRESHOLD_RE = re.compile(r"(?:>=|<=|>|<)\s*(-?\s*[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")
_METRIC_MONITOR_TYPES = ("query alert", "metric alert")


@dataclass(frozen=True)
class Reply:
    """A scripted answer for one request."""

    status: int = 202
    body: Any = field(default_factory=lambda: {"status": "ok"})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    """One request the intake received (decoded JSON body, header names lower-cased, query parameters)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    query: dict[str, str] = field(default_factory=dict)


class IntakeServer:
    """Start with ``with IntakeServer() as intake:``; point the client at ``intake.url``."""

    def __init__(
        self, valid_keys: tuple[str, ...] | None = None, valid_app_keys: tuple[str, ...] | None = None,
        port: int = 0, max_series_bytes: int | None = None,
    ) -> None:
        self.requests: list[Request] = []
        #: like Datadog's payload limit: a ``/api/v1/series`` body (decompressed) longer than this is answered
        #: 413 Payload Too Large, and nothing of it is kept
        self.max_series_bytes = max_series_bytes
        self.replies: deque[tuple[Reply, str | None, str | None]] = deque()
        #: while set, every request gets this answer (an outage); see :meth:`go_down`
        self.outage: Reply | None = None
        self.valid_keys = valid_keys
        #: with valid_keys set, monitor and dashboard calls need one of these (any, when None)
        self.valid_app_keys = valid_app_keys
        #: the account: monitor id -> monitor, dashboard id -> dashboard, as a GET would return them
        self.monitors: dict[int, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1001)
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
                url = urlsplit(self.path)
                path, query = url.path, dict(parse_qsl(url.query))
                reply = intake._scripted(self.command, path)
                if reply is None:
                    key = self.headers.get("DD-API-KEY")
                    resource = _RESOURCE_RE.fullmatch(path)
                    if intake.valid_keys is not None and key not in intake.valid_keys:
                        reply = Reply(403, {"errors": ["Forbidden"]})
                    elif resource and not intake._app_key_ok(self.headers.get("DD-APPLICATION-KEY")):
                        reply = Reply(403, {"errors": ["Forbidden: an application key is required"]})
                    elif resource:
                        reply = intake._account(self.command, resource.group(1), resource.group(2), query, body)
                    elif path.endswith("/validate"):
                        reply = Reply(200, {"valid": True})
                    elif (path.endswith("/series") and intake.max_series_bytes is not None
                          and len(raw) > intake.max_series_bytes):
                        reply = Reply(413, {"errors": ["Payload too large"]})
                    else:
                        reply = Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                with intake._lock:
                    intake.requests.append(
                        Request(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body,
                                reply.status, query)
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
            do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
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

    def fail_next(self, *replies: Reply, method: str | None = None, path: str | None = None) -> None:
        """Answer the next requests with ``replies``, in order; only requests with this ``method`` and a
        path ending in ``path``, when given (others are answered as usual)."""
        with self._lock:
            self.replies.extend((reply, method, path) for reply in replies)

    def go_down(self, reply: Reply) -> None:
        """Answer every request with ``reply`` until :meth:`recover`."""
        with self._lock:
            self.outage = reply

    def recover(self) -> None:
        """End an outage and forget any scripted replies not used yet."""
        with self._lock:
            self.outage = None
            self.replies.clear()

    def _scripted(self, method: str, path: str) -> Reply | None:
        with self._lock:
            if self.outage is not None:
                return self.outage
            for entry in self.replies:
                reply, want_method, want_path = entry
                if (want_method in (None, method)) and (want_path is None or path.endswith(want_path)):
                    self.replies.remove(entry)
                    return reply
        return None

    def _app_key_ok(self, app_key: str | None) -> bool:
        if self.valid_keys is None:
            return True
        return bool(app_key) and (self.valid_app_keys is None or app_key in self.valid_app_keys)

    def _account(self, method: str, kind: str, ident: str | None, query: dict[str, str], body: Any) -> Reply:
        """Answer a monitor or dashboard call from (and into) the stored account."""
        with self._lock:
            store: dict[Any, dict[str, Any]] = self.monitors if kind == "monitor" else self.dashboards
            if ident is None and method == "GET":
                return Reply(200, self._list(kind, query))
            if ident is None and method == "POST":
                return self._store(kind, None, body)
            key: Any = int(ident) if kind == "monitor" and ident and ident.isdigit() else ident
            if ident is None or key not in store:
                return Reply(404 if ident else 405, {"errors": [f"{kind.capitalize()} not found"]})
            if method == "GET":
                return Reply(200, copy.deepcopy(store[key]))
            if method == "PUT":
                return self._store(kind, key, body)
            return Reply(405, {"errors": [f"{method} not allowed"]})

    def _list(self, kind: str, query: dict[str, str]) -> Any:
        if kind == "dashboard":
            summary = ("id", "title", "description", "layout_type", "url", "author_handle", "created_at",
                       "modified_at", "is_read_only")
            return {"dashboards": [{k: d.get(k) for k in summary} for d in self.dashboards.values()]}
        wanted = [t for t in query.get("monitor_tags", "").split(",") if t]  # every listed tag must be present
        name = query.get("name", "").lower()
        return [copy.deepcopy(m) for _, m in sorted(self.monitors.items())
                if all(t in m.get("tags", ()) for t in wanted) and name in m.get("name", "").lower()]

    def _store(self, kind: str, key: Any, body: Any) -> Reply:
        if not isinstance(body, dict):
            return Reply(400, {"errors": ["Invalid JSON body"]})
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        if kind == "monitor":
            # an update changes the keys it sends and keeps the others
            stored = copy.deepcopy({**self.monitors.get(key, {}), **body})
            problem = _monitor_problem(stored)
            if problem:
                return Reply(400, {"errors": [problem]})
            key = key if key is not None else next(self._ids)
            stored.update(id=key, modified=now, overall_state=stored.get("overall_state", "No Data"))
            stored.setdefault("created", now)
            stored.setdefault("options", {}).setdefault("silenced", {})  # Datadog fills option defaults
            self.monitors[key] = stored
        else:
            missing = [k for k in ("title", "layout_type", "widgets") if k not in body]
            if missing:
                return Reply(400, {"errors": [f"missing required key(s): {', '.join(missing)}"]})
            old = self.dashboards.get(key, {})
            key = key if key is not None else f"abc-def-{next(self._ids)}"
            stored = copy.deepcopy(body)  # a dashboard update replaces the whole dashboard
            for widget in stored["widgets"]:
                if isinstance(widget, dict):
                    widget.setdefault("id", next(self._ids))
            stored.update(id=key, url=f"/dashboard/{key}", author_handle="intake@example.com",
                          created_at=old.get("created_at", now), modified_at=now, is_read_only=False)
            self.dashboards[key] = stored
        return Reply(200, copy.deepcopy(stored))

    def writes(self) -> list[Request]:
        """Requests that could change the account: POST and PUT to the monitor and dashboard endpoints."""
        return [r for r in self.requests if r.method in ("POST", "PUT") and _RESOURCE_RE.fullmatch(r.path)]

    def accepted(self, path_suffix: str) -> list[Request]:
        """Requests to a path ending in ``path_suffix`` that were answered 2xx."""
        return [r for r in self.requests if r.path.endswith(path_suffix) and 200 <= r.status < 300]

    def series(self) -> list[dict[str, Any]]:
        """Every series object of every accepted ``/api/v1/series`` request."""
        return [s for r in self.accepted("/series") for s in r.body["series"]]

    def service_checks(self) -> list[dict[str, Any]]:
        """Every accepted service check."""
        return [r.body for r in self.accepted("/check_run")]


def _monitor_problem(monitor: dict[str, Any]) -> str | None:
    """What Datadog would refuse in a monitor: missing type or query, a query threshold not critical."""
    if not monitor.get("type") or not monitor.get("query"):
        return "a monitor needs a type and a query"
    found = _QUERY_THRESHOLD_RE.search(monitor["query"])
    critical = (monitor.get("options") or {}).get("thresholds", {}).get("critical")
    if monitor["type"] in _METRIC_MONITOR_TYPES and found and critical is not None:
        in_query = float(found.group(1).replace(" ", ""))
        if in_query != float(critical):
            return (f"The value provided for parameter 'query' is invalid: alert threshold ({critical}) does not "
                    f"match that used in the query ({in_query}).")
    return None
