"""DogStatsD sink: timestamped points to a local Datadog Agent over UDP or a Unix socket.

Gauges go out with ``gauge_with_timestamp`` and counts with ``count_with_timestamp`` (the ``|T``
field, which the Agent forwards with the point's own timestamp: Agent 7.40 or later; an older Agent
drops the field and stamps at its flush). Service checks carry their timestamp (``d:``). Every
datagram has the tag ``host:`` with an empty value, which makes the Agent send the point without a
host: mlmon's metrics describe models, not the machine the agent runs on.

DogStatsD acknowledges nothing. The sink counts what the client could not write to the socket (a
Unix socket with no Agent behind it, a full buffer, a UDP port refused by the kernel) and raises
:class:`SinkError` for a submission with any such datagram, which keeps its windows pending; a
datagram written to UDP but lost on the way is not seen. Use a Unix socket (``socket_path``) where
the Agent offers one: a missing Agent is then an error, not silence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mlmon.samples import MetricType, Point, Sample, ServiceCheck
from mlmon.sinks.base import SinkError

log = logging.getLogger("mlmon.sinks.dogstatsd")

#: the tag that makes the Agent drop its own hostname from a point
NO_HOST_TAG = "host:"


class DogStatsdSink:
    """Submits through the ``datadog`` package's :class:`~datadog.dogstatsd.base.DogStatsd` client."""

    def __init__(
        self, host: str = "localhost", port: int = 8125, socket_path: str | None = None,
        horizon: float | None = 50 * 60,
    ) -> None:
        from datadog.dogstatsd.base import DogStatsd

        self.horizon = horizon
        self._target = socket_path or f"{host}:{port}"
        # unbuffered and synchronous, so that a failed write is seen by the submission that made it;
        # telemetry counters on (they count drops) but never flushed as metrics of their own
        self._client = DogStatsd(
            host=host, port=port, socket_path=socket_path, disable_buffering=True, disable_aggregation=True,
            disable_background_sender=True, disable_telemetry=False, telemetry_min_flush_interval=10**9,
            origin_detection_enabled=False,
        )

    def __repr__(self) -> str:
        return f"DogStatsdSink({self._target!r})"

    def _dropped(self) -> int:
        return int(self._client.packets_dropped_writer)

    def submit(self, points: Sequence[Point]) -> None:
        before = self._dropped()
        for p in points:
            tags = [*p.tags, NO_HOST_TAG]
            if isinstance(p, Sample):
                send = (self._client.count_with_timestamp if p.type is MetricType.COUNT
                        else self._client.gauge_with_timestamp)
                send(p.name, p.value, int(p.timestamp), tags=tags)
            elif isinstance(p, ServiceCheck):
                # the message is the datagram's last field; a "|" in it would cut it short
                message = p.message.replace("|", "/")[:500] or None
                self._client.service_check(p.name, int(p.status), tags=tags, timestamp=int(p.timestamp),
                                           hostname="", message=message)
        dropped = self._dropped() - before
        if dropped:
            raise SinkError(f"DogStatsD at {self._target}: {dropped} of {len(points)} datagram(s) could not be "
                            "written (is the Datadog Agent running with DogStatsD enabled?)")

    def close(self) -> None:
        """Close the socket."""
        self._client.close_socket()
