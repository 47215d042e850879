"""Webhooks as data, and the ports the webhook services depend on.

A webhook is a URL that receives lifecycle events (Standard Webhooks: signed
POSTs, retried on a schedule). A delivery is one event for one webhook; it is
attempted until it succeeds, is abandoned past the retry schedule, or its
webhook is disabled. Every attempt is kept, with its status code, latency and
error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from runplane.domain.errors import RunplaneError


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    """Waiting for its (next) attempt at `next_attempt_at`."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """A test or manual delivery whose attempt failed: not retried."""
    ABANDONED = "abandoned"
    """Past the retry schedule, or its webhook was disabled (410 Gone, long failure)."""


class Trigger(StrEnum):
    """What started an attempt."""

    SCHEDULED = "scheduled"
    MANUAL = "manual"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Webhook:
    """`team_id` None: every team's events. `event_types` empty: every subscribable
    type. The signing secret is not part of the record (see WebhookStore.secret)."""

    id: str
    team_id: str | None
    url: str
    event_types: tuple[str, ...]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    """When the first of the failures in a row happened; None after a success."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one webhook. `payload` is the exact body sent (the event's
    JSON envelope), so every attempt signs the same bytes; `event_id` is the
    `webhook-id` header of every attempt."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    runtime_id: str
    payload: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_status_code: int | None = None
    last_error: str | None = None
    last_latency_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP attempt of a delivery. `number` counts from 1."""

    delivery_id: str
    webhook_id: str
    number: int
    trigger: Trigger
    attempted_at: datetime
    succeeded: bool
    latency_ms: int
    status_code: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    """A delivery and its attempts, oldest first."""

    delivery: Delivery
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SendRequest:
    url: str
    secret: str = field(repr=False)
    message_id: str
    body: str


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one POST gave: a status code, or an `error` when there was no
    answer (refused target, timeout, connection failure)."""

    latency_ms: int
    status_code: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver says the endpoint no longer exists."""
        return self.status_code == 410


class InvalidWebhook(RunplaneError):
    """A webhook's URL or event types are not acceptable (the message says why)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SecretUnreadable(RunplaneError):
    """A stored signing secret cannot be decrypted (the key file was replaced)."""


Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host name and port to IP address strings; raises OSError when it
cannot."""

DisabledCallback = Callable[[Webhook, str], Awaitable[None]]
"""Told when a failing webhook has been disabled, with the reason."""
