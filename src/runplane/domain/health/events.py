"""Health events: what drivers and probes observe about a runtime (DESIGN §4)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

MAX_OCCURRED_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: a later `occurred_at_ms` is not a time a datetime holds."""


class HealthEventType(StrEnum):
    CONTAINER_STARTED = "container_started"
    PROBE_RECOVERED = "probe_recovered"
    PROBE_FAILED = "probe_failed"
    INSPECT_UNHEALTHY = "inspect_unhealthy"
    CONTAINER_EXITED = "container_exited"
    CONTAINER_OOM = "container_oom"
    CONTAINER_DISAPPEARED = "container_disappeared"
    HOST_DOWN = "host_down"
    """The runtime's host missed its heartbeats (services/hosts/loss.py);
    `details.host_id` names it."""


@dataclass(frozen=True, slots=True)
class HealthEvent:
    runtime_id: str
    container_id: str
    event_type: HealthEventType
    occurred_at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    def is_about(self, container_id: str | None) -> bool:
        """Whether the event is about `container_id` (an event naming none is
        about whatever the runtime runs): else it is a late report about a
        container a restart replaced."""
        return not self.container_id or self.container_id == container_id

    def as_fields(self) -> dict[str, str]:
        """Flat string fields, as `runtime:health_events` carries them."""
        return {
            "runtime_id": self.runtime_id,
            "container_id": self.container_id,
            "event_type": str(self.event_type),
            "occurred_at_ms": str(int(self.occurred_at.timestamp() * 1000)),
            "details": json.dumps(self.details, sort_keys=True),
        }
