"""Sinks: where samples and service checks go. Each is a small class with one ``submit`` method."""

from mlmon.sinks.base import Sink, SinkError

__all__ = ["Sink", "SinkError"]
