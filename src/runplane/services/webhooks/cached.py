"""A WebhookStore whose `matching` is answered from memory while the webhooks
have not changed, so an event costs a counter read (one Redis GET), not a
database read, whether or not any webhook exists.

Every change that `matching` can see (add, update, delete, disable) goes
through this store, which moves the shared counter once the change is
committed. `matching` reads the counter before the database, so a set read
while a change was being made is kept under the old number and read again on
the next event. Any instance's cache is therefore current for every event
whose fan-out starts after the change's call returned. Should the counter not
move (Redis unreachable just after the commit) every cached set is also read
again once it is `max_age_s` old: a cache is never staler than that."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from runplane.domain.errors import StoreUnavailable
from runplane.domain.webhooks.model import Attempt, Delivery, Webhook
from runplane.ports.system import Clock
from runplane.ports.webhooks import ChangeCounter, WebhookStore

logger = logging.getLogger(__name__)

MAX_AGE_S = 5.0
MAX_TEAMS = 10_000
"""Cached sets past this many teams: the cache starts over (memory stays bounded)."""


class CachedWebhooks:
    def __init__(
        self,
        store: WebhookStore,
        counter: ChangeCounter,
        clock: Clock,
        *,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        self.store = store
        self.counter = counter
        self.clock = clock
        self.max_age = timedelta(seconds=max_age_s)
        self._sets: dict[str | None, tuple[int, datetime, list[Webhook]]] = {}
        """team -> (counter when read, when read, the matching webhooks)"""

    async def matching(self, team_id: str | None) -> list[Webhook]:
        version, now = await self.counter.current(), self.clock.now()
        cached = self._sets.get(team_id)
        fresh = cached is not None and timedelta(0) <= now - cached[1] < self.max_age
        if cached is not None and fresh and cached[0] == version:
            return cached[2]
        found = await self.store.matching(team_id)
        if len(self._sets) >= MAX_TEAMS:
            self._sets.clear()
        self._sets[team_id] = (version, now, found)
        return found

    async def _changed(self) -> None:
        self._sets.clear()  # this instance: at once, whatever Redis says
        try:
            await self.counter.bump()
        except StoreUnavailable as exc:
            logger.warning(
                "webhook change not signalled to other instances; they see it within "
                f"{self.max_age.total_seconds():g} s",
                extra={"error": str(exc)},
            )

    # -- changes: each moves the counter once committed --------------------------

    async def add(self, webhook: Webhook, secret: str) -> None:
        await self.store.add(webhook, secret)
        await self._changed()

    async def update(self, webhook: Webhook) -> Webhook | None:
        updated = await self.store.update(webhook)
        await self._changed()
        return updated

    async def delete(self, webhook_id: str) -> bool:
        deleted = await self.store.delete(webhook_id)
        await self._changed()
        return deleted

    async def disable(self, webhook_id: str, reason: str, at: datetime) -> bool:
        disabled = await self.store.disable(webhook_id, reason, at)
        if disabled:
            await self._changed()
        return disabled

    # -- the rest, as the store answers ------------------------------------------

    async def get(self, webhook_id: str) -> Webhook | None:
        return await self.store.get(webhook_id)

    async def list_webhooks(self, *, team_id: str | None = None) -> list[Webhook]:
        return await self.store.list_webhooks(team_id=team_id)

    async def secret(self, webhook_id: str) -> str | None:
        return await self.store.secret(webhook_id)

    async def note_success(self, webhook_id: str) -> None:
        await self.store.note_success(webhook_id)

    async def note_failure(self, webhook_id: str, at: datetime) -> datetime | None:
        return await self.store.note_failure(webhook_id, at)

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        return await self.store.add_deliveries(deliveries)

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        return await self.store.get_delivery(delivery_id)

    async def list_deliveries(self, webhook_id: str, *, limit: int = 50) -> list[Delivery]:
        return await self.store.list_deliveries(webhook_id, limit=limit)

    async def attempts_of(self, delivery_ids: Sequence[str]) -> Mapping[str, list[Attempt]]:
        return await self.store.attempts_of(delivery_ids)

    async def claim_due(
        self, now: datetime, *, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        return await self.store.claim_due(now, lease_until=lease_until, limit=limit)

    async def record_attempt(self, delivery: Delivery, attempt: Attempt) -> bool:
        return await self.store.record_attempt(delivery, attempt)

    async def abandon(self, delivery_id: str, reason: str, at: datetime) -> None:
        await self.store.abandon(delivery_id, reason, at)

    async def purge_deliveries(self, before: datetime, *, limit: int = 1000) -> int:
        return await self.store.purge_deliveries(before, limit=limit)
