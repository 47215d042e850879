"""Lifecycle events: the CloudEvents 1.0 envelope (structured JSON) of DESIGN §5.

Durable events go to the stream `runplane:events` (field `event`) and its live
mirror channel; transient ones (`runtime.state.changed`) to the channel only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EVENT_FIELD = "event"

DURABLE_TYPES: frozenset[str] = frozenset(
    {
        "runtime.create",
        "runtime.start",
        "runtime.stop",
        "runtime.restart",
        "runtime.patch",
        "runtime.pause",
        "runtime.resume",
        "runtime.remove",
        "runtime.unreachable",
        "runtime.recovered",
        "runtime.snapshot.create",
        "runtime.snapshot.delete",
        "webhook.disabled",
        "host.up",
        "host.down",
    }
)
"""The types a webhook or an SSE filter can subscribe to."""
STATE_CHANGED = "runtime.state.changed"
TRANSIENT_TYPES: frozenset[str] = frozenset({STATE_CHANGED})


@dataclass(frozen=True, slots=True)
class Actor:
    type: str  # user | api_key | system
    id: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One event. `id` is unique and stays the same on every retry of it;
    `sequence` is the record version the event describes. `runtime_id` is the
    subject: a runtime's id, or a host's for a host event (`resource_type`
    "host"). A host event has no `team_id` (hosts belong to no team), so a team
    key's reads and webhooks never see it; admin keys see every event."""

    id: str
    type: str
    runtime_id: str
    time: datetime
    sequence: int
    outcome: str
    team_id: str | None
    actor: Actor
    source: str = "/runplane"
    status_from: str | None = None
    status_to: str | None = None
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    error: dict[str, str] | None = None
    host_id: str | None = None
    """The host the runtime lives on (None: not placed); the host of a host event."""
    resource_type: str = "runtime"
    labels: dict[str, str] = field(default_factory=dict)
    """The runtime's labels when the event was made (issue 16)."""

    @property
    def durable(self) -> bool:
        return self.type not in TRANSIENT_TYPES

    def envelope(self) -> dict[str, Any]:
        """The CloudEvents 1.0 structured-mode JSON object."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.runtime_id,
            "time": _rfc3339_ms(self.time),
            "datacontenttype": "application/json",
            "sequence": str(self.sequence),
            "data": {
                "outcome": self.outcome,
                "team_id": self.team_id,
                "actor": {"type": self.actor.type, "id": self.actor.id, "name": self.actor.name},
                "resource": {"id": self.runtime_id, "type": self.resource_type},
                "host_id": self.host_id,
                "status_from": self.status_from,
                "status_to": self.status_to,
                "reason": self.reason,
                "metadata": dict(self.metadata),
                "error": self.error,
                "labels": dict(self.labels),
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.envelope(), separators=(",", ":"), sort_keys=True)


def _rfc3339_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event as the outbox holds it until the relay has published it."""

    seq: int
    event_id: str
    runtime_id: str
    team_id: str | None
    type: str
    durable: bool
    payload: str
    created_at: datetime
