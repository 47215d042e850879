"""Request and response bodies of `/v1/webhooks`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from runplane.api.schemas.enums import EVENT_TYPES, closed_field
from runplane.domain.webhooks.model import (
    Attempt,
    Delivery,
    DeliveryLog,
    DeliveryStatus,
    Trigger,
    Webhook,
)


class CreateWebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    event_types: list[str] = closed_field(
        EVENT_TYPES, default_factory=list, description="empty: every subscribable event type"
    )
    enabled: StrictBool = True
    team_id: str | None = Field(
        default=None,
        max_length=128,
        description="admin keys only; unset on an admin key: every team's events",
    )


class UpdateWebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[str] | None = closed_field(EVENT_TYPES, default=None)
    enabled: StrictBool | None = None


class WebhookOut(BaseModel):
    id: str
    team_id: str | None
    url: str
    event_types: list[str] = closed_field(EVENT_TYPES)
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = None
    """The signing secret (`whsec_...`): only in the answer that created the webhook."""

    @classmethod
    def of(cls, webhook: Webhook, secret: str | None = None) -> WebhookOut:
        return cls(
            id=webhook.id,
            team_id=webhook.team_id,
            url=webhook.url,
            event_types=list(webhook.event_types),
            enabled=webhook.enabled,
            disabled_reason=webhook.disabled_reason,
            failing_since=webhook.failing_since,
            created_at=webhook.created_at,
            updated_at=webhook.updated_at,
            secret=secret,
        )


class WebhookListOut(BaseModel):
    webhooks: list[WebhookOut]


class AttemptOut(BaseModel):
    number: int
    trigger: Trigger
    attempted_at: datetime
    succeeded: bool
    status_code: int | None
    latency_ms: int
    error: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls(
            number=attempt.number,
            trigger=str(attempt.trigger),
            attempted_at=attempt.attempted_at,
            succeeded=attempt.succeeded,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
        )


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    runtime_id: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_latency_ms: int | None
    created_at: datetime
    updated_at: datetime
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, log: DeliveryLog) -> DeliveryOut:
        delivery: Delivery = log.delivery
        return cls(
            id=delivery.id,
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            runtime_id=delivery.runtime_id,
            status=str(delivery.status),
            attempt_count=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            last_latency_ms=delivery.last_latency_ms,
            created_at=delivery.created_at,
            updated_at=delivery.updated_at,
            attempts=[AttemptOut.of(a) for a in log.attempts],
        )


class DeliveryListOut(BaseModel):
    deliveries: list[DeliveryOut]


class AttemptResultOut(BaseModel):
    """A test or redelivery: the attempt made now (None when the webhook was
    deleted meanwhile) and the delivery as it stands after it."""

    attempt: AttemptOut | None
    delivery: DeliveryOut
