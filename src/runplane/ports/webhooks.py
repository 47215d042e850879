"""Webhooks: their store and the sender that delivers a signed request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from runplane.domain.webhooks.model import Attempt, Delivery, SendRequest, SendResult, Webhook


class WebhookSender(Protocol):
    async def send(self, request: SendRequest) -> SendResult:
        """POST `request.body`, signed; never raises for a failed delivery."""


class WebhookStore(Protocol):
    """Webhooks, their secrets (encrypted at rest), deliveries and attempts."""

    async def add(self, webhook: Webhook, secret: str) -> None: ...

    async def get(self, webhook_id: str) -> Webhook | None: ...

    async def list_webhooks(self, *, team_id: str | None = None) -> list[Webhook]:
        """Ordered by creation; `team_id` None lists every webhook."""

    async def update(self, webhook: Webhook) -> Webhook | None:
        """Store url, event_types, enabled, disabled_reason, failing_since and
        updated_at; None when the webhook is gone."""

    async def delete(self, webhook_id: str) -> bool:
        """Delete the webhook with its deliveries; False when there was none."""

    async def secret(self, webhook_id: str) -> str | None:
        """The plaintext signing secret; None when the webhook is gone. Raises
        SecretUnreadable when it cannot be decrypted."""

    async def matching(self, team_id: str | None) -> list[Webhook]:
        """Enabled webhooks for `team_id`'s events: its own and every-team ones."""

    async def note_success(self, webhook_id: str) -> None:
        """Clear `failing_since`."""

    async def note_failure(self, webhook_id: str, at: datetime) -> datetime | None:
        """Set `failing_since` if unset; its value after that (None: gone)."""

    async def disable(self, webhook_id: str, reason: str, at: datetime) -> bool:
        """Disable an enabled webhook; False when it was not enabled (or is gone)."""

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Insert those whose (webhook_id, event_id) is new; how many were."""

    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    async def list_deliveries(self, webhook_id: str, *, limit: int = 50) -> list[Delivery]:
        """Newest first."""

    async def attempts_of(self, delivery_ids: Sequence[str]) -> Mapping[str, list[Attempt]]:
        """Each delivery's attempts, oldest first."""

    async def claim_due(
        self, now: datetime, *, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        """Pending deliveries due at `now`, oldest due first, with their
        `next_attempt_at` moved to `lease_until`, so no other instance attempts
        them meanwhile (and a crashed attempt is retried after it)."""

    async def record_attempt(self, delivery: Delivery, attempt: Attempt) -> bool:
        """Store `delivery`'s new state and `attempt`, if the stored delivery still
        has `attempt.number - 1` attempts; False (nothing written) otherwise."""

    async def abandon(self, delivery_id: str, reason: str, at: datetime) -> None:
        """Mark a pending delivery abandoned without attempting it."""

    async def purge_deliveries(self, before: datetime, *, limit: int = 1000) -> int:
        """Delete up to `limit` finished deliveries (not pending) last changed
        before `before`, with their attempts; how many were."""


class ChangeCounter(Protocol):
    """A number every instance reads alike, moved after each change to what it
    counts: a cache of that thing is good while the number has not moved."""

    async def current(self) -> int:
        """Raises StoreUnavailable when it cannot be read."""

    async def bump(self) -> None:
        """Raises StoreUnavailable when it cannot be moved."""
