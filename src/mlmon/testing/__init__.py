"""Test doubles shipped with mlmon: a recording sink and a loopback Datadog HTTP intake."""

from mlmon.testing.intake import IntakeServer, Reply
from mlmon.testing.recording import RecordingSink

__all__ = ["IntakeServer", "RecordingSink", "Reply"]
