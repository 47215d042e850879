"""What a health event means for a runtime: its engine-health summary, the status
change it asks for, the per-runtime health snapshot row and the
`runtime:snapshots` entry. Pure data and rules; no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from runplane.domain.documents import InvalidDocument, check_text, loads
from runplane.domain.health.events import MAX_OCCURRED_MS, HealthEvent, HealthEventType
from runplane.domain.records import is_valid_runtime_id
from runplane.domain.seed_layout import ConflictingIds, entry_runtime_id
from runplane.domain.statuses import Status


class HealthSummary(StrEnum):
    """The short string kept in a record's `engine_health`."""

    HEALTHY = "healthy"
    PROBE_FAILED = "probe_failed"
    INSPECT_UNHEALTHY = "inspect_unhealthy"
    EXITED = "exited"
    OOM = "oom"
    DISAPPEARED = "disappeared"
    HOST_DOWN = "host_down"


@dataclass(frozen=True, slots=True)
class HealthReaction:
    """What one event type does: set `summary`, and move `from_status -> to_status`
    when the record is in `from_status` (otherwise only the summary changes)."""

    summary: HealthSummary
    from_status: Status | None = None
    to_status: Status | None = None
    lifecycle_event: str = ""
    """The durable lifecycle event type written with the status change."""


_E = HealthEventType

REACTIONS: Mapping[HealthEventType, HealthReaction] = {
    _E.CONTAINER_STARTED: HealthReaction(HealthSummary.HEALTHY),
    _E.PROBE_RECOVERED: HealthReaction(
        HealthSummary.HEALTHY, Status.ENGINE_UNREACHABLE, Status.RUNNING, "runtime.recovered"
    ),
    _E.PROBE_FAILED: HealthReaction(HealthSummary.PROBE_FAILED),
    _E.INSPECT_UNHEALTHY: HealthReaction(HealthSummary.INSPECT_UNHEALTHY),
    _E.CONTAINER_EXITED: HealthReaction(
        HealthSummary.EXITED, Status.RUNNING, Status.ENGINE_UNREACHABLE, "runtime.unreachable"
    ),
    _E.CONTAINER_OOM: HealthReaction(
        HealthSummary.OOM, Status.RUNNING, Status.ENGINE_UNREACHABLE, "runtime.unreachable"
    ),
    _E.CONTAINER_DISAPPEARED: HealthReaction(
        HealthSummary.DISAPPEARED, Status.RUNNING, Status.ENGINE_UNREACHABLE, "runtime.unreachable"
    ),
    # A paused runtime keeps its status (the table has no paused -> engine_unreachable)
    # and only takes the summary: it runs nothing that could be moved.
    _E.HOST_DOWN: HealthReaction(
        HealthSummary.HOST_DOWN, Status.RUNNING, Status.ENGINE_UNREACHABLE, "runtime.unreachable"
    ),
}
"""Declared as data, like the transition table: every pair here is in TRANSITIONS."""

TERMINAL_EVENTS: frozenset[HealthEventType] = frozenset(
    {_E.CONTAINER_EXITED, _E.CONTAINER_OOM, _E.CONTAINER_DISAPPEARED}
)
"""The events that say a runtime's process or container is no longer running."""


def summary_of(event_type: HealthEventType) -> HealthSummary:
    return REACTIONS[event_type].summary


def is_failure(event: HealthEvent) -> bool:
    """Whether a terminal event is a failure (restart policy `on-failure`): an OOM
    kill, a disappearance, a non-zero exit code, a death by signal, or the loss
    of the runtime's host. (`host_down` is not in TERMINAL_EVENTS: the container
    may well run on, and the monitor must still report its real end later.)"""
    if event.event_type is _E.HOST_DOWN:
        return True
    if event.event_type is not _E.CONTAINER_EXITED:
        return event.event_type in TERMINAL_EVENTS
    return bool(event.details.get("signal")) or event.details.get("exit_code") not in (0, None)


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """The health_snapshots row of one runtime: the latest event the monitor
    reported, its summary and details, and when it was observed."""

    runtime_id: str
    container_id: str
    event_type: HealthEventType
    summary: HealthSummary
    observed_at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, event: HealthEvent) -> HealthSnapshot:
        return cls(
            runtime_id=event.runtime_id,
            container_id=event.container_id,
            event_type=event.event_type,
            summary=summary_of(event.event_type),
            observed_at=event.occurred_at,
            details=dict(event.details),
        )


@dataclass(frozen=True, slots=True)
class RuntimeSnapshot:
    """One `runtime:snapshots` entry: a runtime's status and health summary."""

    runtime_id: str
    status: str
    engine_health: str
    occurred_at: datetime

    def as_fields(self) -> dict[str, str]:
        return {
            "runtime_id": self.runtime_id,
            "status": self.status,
            "engine_health": self.engine_health,
            "occurred_at_ms": str(int(self.occurred_at.timestamp() * 1000)),
        }


class MalformedHealthEvent(ValueError):
    """A `runtime:health_events` entry that cannot be read; the message says why."""


class UnknownHealthEventType(MalformedHealthEvent):
    """An entry whose `event_type` this version does not know (a newer producer)."""


def decode_health_event(fields: Mapping[str, str]) -> HealthEvent:
    """A HealthEvent from a stream entry's flat fields; MalformedHealthEvent (or
    its UnknownHealthEventType) when the entry cannot be used; never another error."""
    for name, value in fields.items():
        try:
            check_text("a field", name + value)
        except InvalidDocument as exc:
            raise MalformedHealthEvent(str(exc)) from None
    try:
        runtime_id, _ = entry_runtime_id(fields)  # the seeds' `game_id` is accepted too
    except ConflictingIds as exc:
        raise MalformedHealthEvent(str(exc)) from None
    if not is_valid_runtime_id(runtime_id):
        raise MalformedHealthEvent("runtime_id (or game_id) is missing or not a runtime id")
    raw_type = fields.get("event_type", "")
    try:
        event_type = HealthEventType(raw_type)
    except ValueError:
        raise UnknownHealthEventType(f"unknown event_type {raw_type[:64]!r}") from None
    try:
        occurred_ms = int(fields.get("occurred_at_ms", ""))
    except ValueError:
        raise MalformedHealthEvent("occurred_at_ms is missing or not an integer") from None
    if not 0 < occurred_ms <= MAX_OCCURRED_MS:  # datetime overflows past year 9999
        raise MalformedHealthEvent("occurred_at_ms must be positive and before year 10000")
    return HealthEvent(
        runtime_id=runtime_id,
        container_id=fields.get("container_id", ""),
        event_type=event_type,
        occurred_at=datetime.fromtimestamp(occurred_ms / 1000, UTC),
        details=_details(fields.get("details")),
    )


def _details(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        details = loads(raw)  # bounded depth and valid Unicode, never RecursionError
    except InvalidDocument as exc:
        raise MalformedHealthEvent(f"details: {exc}") from None
    if not isinstance(details, dict):
        raise MalformedHealthEvent("details must be a JSON object")
    return details
