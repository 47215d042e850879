"""A dict-backed WebhookStore with the SQL store's semantics (the contract tests
run against both): unique (webhook_id, event_id), claims that move
`next_attempt_at`, attempts recorded only over the expected count, deliveries
deleted with their webhook."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from runplane.domain.webhooks.model import Attempt, Delivery, DeliveryStatus, Webhook


class InMemoryWebhookStore:
    def __init__(self) -> None:
        self.webhooks: dict[str, Webhook] = {}
        self.secrets: dict[str, str] = {}
        self.deliveries: dict[str, Delivery] = {}
        self.attempts: list[tuple[int, Attempt]] = []
        self._seq = itertools.count(1)

    async def add(self, webhook: Webhook, secret: str) -> None:
        if webhook.id in self.webhooks:
            raise ValueError(f"webhook {webhook.id!r} already exists")
        self.webhooks[webhook.id] = webhook
        self.secrets[webhook.id] = secret

    async def get(self, webhook_id: str) -> Webhook | None:
        return self.webhooks.get(webhook_id)

    async def list_webhooks(self, *, team_id: str | None = None) -> list[Webhook]:
        found = [w for w in self.webhooks.values() if team_id is None or w.team_id == team_id]
        return sorted(found, key=lambda w: (w.created_at, w.id))

    async def update(self, webhook: Webhook) -> Webhook | None:
        stored = self.webhooks.get(webhook.id)
        if stored is None:
            return None
        updated = replace(
            stored,
            url=webhook.url,
            event_types=webhook.event_types,
            enabled=webhook.enabled,
            updated_at=webhook.updated_at,
            disabled_reason=webhook.disabled_reason,
            failing_since=webhook.failing_since,
        )
        self.webhooks[webhook.id] = updated
        return updated

    async def delete(self, webhook_id: str) -> bool:
        if self.webhooks.pop(webhook_id, None) is None:
            return False
        self.secrets.pop(webhook_id, None)
        gone = {d.id for d in self.deliveries.values() if d.webhook_id == webhook_id}
        self.deliveries = {i: d for i, d in self.deliveries.items() if i not in gone}
        self.attempts = [(s, a) for s, a in self.attempts if a.delivery_id not in gone]
        return True

    async def secret(self, webhook_id: str) -> str | None:
        return self.secrets.get(webhook_id)

    async def matching(self, team_id: str | None) -> list[Webhook]:
        return [
            w
            for w in await self.list_webhooks()
            if w.enabled and (w.team_id is None or w.team_id == team_id)
        ]

    async def note_success(self, webhook_id: str) -> None:
        self._change(webhook_id, failing_since=None)

    async def note_failure(self, webhook_id: str, at: datetime) -> datetime | None:
        webhook = self.webhooks.get(webhook_id)
        if webhook is None:
            return None
        if webhook.failing_since is None:
            self._change(webhook_id, failing_since=at)
        return self.webhooks[webhook_id].failing_since

    async def disable(self, webhook_id: str, reason: str, at: datetime) -> bool:
        webhook = self.webhooks.get(webhook_id)
        if webhook is None or not webhook.enabled:
            return False
        self._change(webhook_id, enabled=False, disabled_reason=reason, updated_at=at)
        return True

    def _change(self, webhook_id: str, **values: object) -> None:
        webhook = self.webhooks.get(webhook_id)
        if webhook is not None:
            self.webhooks[webhook_id] = replace(webhook, **values)  # type: ignore[arg-type]

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        taken = {(d.webhook_id, d.event_id) for d in self.deliveries.values()}
        added = 0
        for delivery in deliveries:
            key = (delivery.webhook_id, delivery.event_id)
            gone = delivery.webhook_id not in self.webhooks
            if key in taken or gone or delivery.id in self.deliveries:
                continue
            self.deliveries[delivery.id] = delivery
            taken.add(key)
            added += 1
        return added

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        return self.deliveries.get(delivery_id)

    async def list_deliveries(self, webhook_id: str, *, limit: int = 50) -> list[Delivery]:
        found = [d for d in self.deliveries.values() if d.webhook_id == webhook_id]
        found.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return found[:limit]

    async def attempts_of(self, delivery_ids: Sequence[str]) -> Mapping[str, list[Attempt]]:
        wanted = set(delivery_ids)
        found: dict[str, list[Attempt]] = {}
        for _, attempt in sorted(self.attempts, key=lambda pair: pair[0]):
            if attempt.delivery_id in wanted:
                found.setdefault(attempt.delivery_id, []).append(attempt)
        return found

    async def claim_due(
        self, now: datetime, *, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        due = [
            d
            for d in self.deliveries.values()
            if d.status is DeliveryStatus.PENDING
            and d.next_attempt_at is not None
            and d.next_attempt_at <= now
        ]
        due.sort(key=lambda d: (d.next_attempt_at or now, d.id))
        claimed = [replace(d, next_attempt_at=lease_until) for d in due[:limit]]
        self.deliveries.update((d.id, d) for d in claimed)
        return claimed

    async def record_attempt(self, delivery: Delivery, attempt: Attempt) -> bool:
        stored = self.deliveries.get(delivery.id)
        if stored is None or stored.attempts != attempt.number - 1:
            return False
        self.deliveries[delivery.id] = replace(
            delivery,
            event_id=stored.event_id,
            payload=stored.payload,
            created_at=stored.created_at,
        )
        self.attempts.append((next(self._seq), attempt))
        return True

    async def abandon(self, delivery_id: str, reason: str, at: datetime) -> None:
        stored = self.deliveries.get(delivery_id)
        if stored is None or stored.status is not DeliveryStatus.PENDING:
            return
        self.deliveries[delivery_id] = replace(
            stored,
            status=DeliveryStatus.ABANDONED,
            next_attempt_at=None,
            last_error=reason,
            updated_at=at,
        )

    async def purge_deliveries(self, before: datetime, *, limit: int = 1000) -> int:
        old = [
            d.id
            for d in self.deliveries.values()
            if d.status is not DeliveryStatus.PENDING and d.updated_at < before
        ][:limit]
        for delivery_id in old:
            del self.deliveries[delivery_id]
        self.attempts = [(s, a) for s, a in self.attempts if a.delivery_id in self.deliveries]
        return len(old)
