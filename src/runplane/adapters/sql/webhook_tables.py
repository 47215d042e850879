"""The webhook tables, on the shared `metadata` of tables.py (migration 0003)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from runplane.adapters.sql.tables import UtcDateTime, identifier, metadata

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", identifier(64), primary_key=True),
    Column("team_id", String(128)),
    Column("url", Text, nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("secret_encrypted", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("disabled_reason", Text),
    Column("failing_since", UtcDateTime),
    Index("ix_webhooks_team_id_created_at", "team_id", "created_at"),
)
"""`team_id` NULL: the webhook receives every team's events. `event_types` is a
JSON list; empty means every subscribable type."""

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", identifier(64), primary_key=True),
    Column(
        "webhook_id",
        identifier(64),
        ForeignKey("webhooks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", String(128), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("runtime_id", String(128), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("last_latency_ms", Integer),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_id_event_id"),
    Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook_id_created_at", "webhook_id", "created_at"),
)
"""One event for one webhook. (webhook_id, event_id) is unique: an event read
twice from the stream never becomes a second delivery. `payload` is the exact
body sent on every attempt."""

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "delivery_id",
        identifier(64),
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("webhook_id", identifier(64), nullable=False),
    Column("number", Integer, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("attempted_at", UtcDateTime, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text),
    Index("ix_webhook_attempts_delivery_id_number", "delivery_id", "number"),
)
"""Every HTTP attempt of a delivery, for `GET /v1/webhooks/{id}/deliveries`."""
