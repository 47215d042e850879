"""Typed views of the API's answers. Every model accepts fields it does not
know (`extra="allow"`), so a newer server that adds fields (labels, say) does
not break an older client; statuses and types stay plain strings for the same
reason, with StrEnums of the known values to compare against."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Status(StrEnum):
    """A runtime's statuses (domain/statuses.py). A StrEnum member equals its string."""

    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    PAUSING = "pausing"
    PAUSED = "paused"
    RESUMING = "resuming"
    RESTARTING = "restarting"
    PATCHING = "patching"
    REMOVING = "removing"
    REMOVED = "removed"
    ENGINE_UNREACHABLE = "engine_unreachable"
    ERROR = "error"


SETTLED: frozenset[str] = frozenset(
    {
        Status.PENDING,
        Status.RUNNING,
        Status.STOPPED,
        Status.PAUSED,
        Status.REMOVED,
        Status.ENGINE_UNREACHABLE,
        Status.ERROR,
    }
)
"""Statuses an event on the stream can report. The others are passed through
inside an operation and only announced by transient events, which the stream
does not carry."""


class EventType(StrEnum):
    """The durable event types: those the stream and webhooks carry."""

    RUNTIME_CREATE = "runtime.create"
    RUNTIME_START = "runtime.start"
    RUNTIME_STOP = "runtime.stop"
    RUNTIME_RESTART = "runtime.restart"
    RUNTIME_PATCH = "runtime.patch"
    RUNTIME_PAUSE = "runtime.pause"
    RUNTIME_RESUME = "runtime.resume"
    RUNTIME_REMOVE = "runtime.remove"
    RUNTIME_UNREACHABLE = "runtime.unreachable"
    RUNTIME_RECOVERED = "runtime.recovered"
    WEBHOOK_DISABLED = "webhook.disabled"
    HOST_UP = "host.up"
    HOST_DOWN = "host.down"
    WEBHOOK_TEST = "runplane.webhook.test"
    """Sent by POST /v1/webhooks/{id}/test; to webhooks only."""


class Runtime(Model):
    runtime_id: str
    team_id: str
    status: str
    version: int
    driver: str
    spec: dict[str, Any]
    container_id: str | None = None
    engine_endpoint: str | None = None
    engine_health: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    removed_at: datetime | None = None
    last_op_at: datetime | None = None
    status_deadline: datetime | None = None
    host_id: str | None = None
    _replayed: bool = PrivateAttr(default=False)

    @property
    def replayed(self) -> bool:
        """True when create_runtime's Idempotency-Key had been used: this is the
        first call's runtime and nothing new was created."""
        return self._replayed


class RuntimePage(Model):
    runtimes: list[Runtime]
    next_cursor: str | None = None
    """Pass as `cursor` for the next page; None on the last one."""


class OperationResult(Model):
    """What start, stop, restart, patch, pause, resume and remove answer on success."""

    outcome: str
    error_code: str | None = None
    error_message: str = ""
    operation_id: str | None = None
    runtime: Runtime | None = None

    @property
    def replayed(self) -> bool:
        """True when the Idempotency-Key had been used: the first call's result,
        and no second effect."""
        return self.error_code == "replay_no_op"


class OperationEntry(Model):
    """One entry of a runtime's operation log."""

    operation_id: str
    runtime_id: str
    op: str
    op_source: str
    outcome: str
    error_code: str | None = None
    error_message: str = ""
    job_id: str | None = None
    """The Idempotency-Key of the call (or a stream job's id)."""
    source_ref: str = ""
    reason: str = ""
    status_from: str | None = None
    status_to: str | None = None
    container_id: str | None = None
    actor: str = ""
    started_at: datetime
    finished_at: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class EventActor(Model):
    type: str = ""
    id: str = ""
    name: str = ""


class EventResource(Model):
    id: str = ""
    type: str = ""


class EventData(Model):
    """`data` of an event: every field optional, as a test ping or a host event
    carries only some of them."""

    outcome: str | None = None
    team_id: str | None = None
    actor: EventActor | None = None
    resource: EventResource | None = None
    host_id: str | None = None
    status_from: str | None = None
    status_to: str | None = None
    reason: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    error: dict[str, str] | None = None


class Event(Model):
    """A lifecycle event: the CloudEvents 1.0 envelope (docs/streams.md)."""

    specversion: str = "1.0"
    id: str
    """Unique, the same on every retry (and the webhook's `webhook-id`)."""
    source: str = ""
    type: str
    subject: str = ""
    """The runtime's id (a host's or a webhook's for those events)."""
    time: datetime
    datacontenttype: str = "application/json"
    sequence: str | None = None
    """The runtime record's version this event describes."""
    data: EventData = Field(default_factory=EventData)
    stream_id: str | None = None
    """Its position in the stream (`1700000000000-0`): resume after it with
    events(last_event_id=...). Not part of the envelope; None for a webhook."""


class EventPage(Model):
    events: list[Event]
    next_cursor: str | None = None


class Webhook(Model):
    id: str
    team_id: str | None = None
    url: str
    event_types: list[str] = Field(default_factory=list)
    enabled: bool
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    created_at: datetime
    updated_at: datetime
    secret: str | None = None
    """The signing secret (`whsec_...`): only in create_webhook's answer."""


class DeliveryAttempt(Model):
    number: int
    trigger: str
    attempted_at: datetime
    succeeded: bool
    status_code: int | None = None
    latency_ms: int = 0
    error: str | None = None


class Delivery(Model):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    attempt_count: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class AttemptResult(Model):
    """A test send: the attempt made now and the delivery as it stands after it."""

    attempt: DeliveryAttempt | None = None
    delivery: Delivery
