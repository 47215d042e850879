"""The webhook dispatcher: a fan-out from the events stream, and a delivery loop.

`WebhookFanout` handles entries of `runplane:events` for a GroupConsumer
(group `webhooks`): each event becomes one pending delivery per webhook that
receives it, inserted if absent, so a redelivered entry adds nothing. The
`WebhookDeliveryLoop` attempts due deliveries; their state (attempts, next
attempt time) lives in the database, so retries survive a restart and any
instance may attempt them. A claim moves a delivery's next attempt past
`claim_s` while it is attempted: an instance that dies mid-attempt leaves it
to be attempted again after that."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio

from runplane.domain.documents import InvalidDocument, loads
from runplane.domain.errors import StoreUnavailable
from runplane.domain.lifecycle_events import EVENT_FIELD
from runplane.domain.webhooks.model import Delivery, DeliveryStatus, Trigger
from runplane.domain.webhooks.rules import receives
from runplane.ports.system import Clock, TokenGenerator
from runplane.ports.webhooks import WebhookStore
from runplane.services.webhooks.delivery import Deliverer
from runplane.streams.entries import StreamEntry
from runplane.streams.every import Every
from runplane.streams.group import GroupConsumer
from runplane.streams.handler import RetryLater
from runplane.streams.settings import ConsumerSettings
from runplane.workers.periodic import PeriodicLoop

logger = logging.getLogger(__name__)

MAX_EVENT_ID_LENGTH = 128
MAX_EVENT_TYPE_LENGTH = 64
DEFAULT_RETENTION_S = 30 * 24 * 3600.0
"""Finished deliveries (and their attempts) are kept this long."""


def parse_event(entry: StreamEntry) -> tuple[str, dict[str, Any]] | None:
    """The entry's envelope text and its parsed form, or None if it is not one."""
    raw = entry.fields.get(EVENT_FIELD)
    if raw is None or entry.undecodable:
        return None
    try:
        event = loads(raw)  # bounded depth and valid Unicode: never RecursionError
    except InvalidDocument:
        return None
    if not isinstance(event, dict):
        return None
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH:
        return None
    if not isinstance(event_type, str) or not 0 < len(event_type) <= MAX_EVENT_TYPE_LENGTH:
        return None
    return raw, event


class WebhookFanout:
    """The GroupConsumer handler: deliveries for every webhook an event matches."""

    def __init__(
        self,
        store: WebhookStore,
        clock: Clock,
        tokens: TokenGenerator,
        *,
        on_added: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.tokens = tokens
        self.on_added = on_added

    async def __call__(self, entry: StreamEntry) -> None:
        parsed = parse_event(entry)
        if parsed is None:
            logger.warning(
                "events stream entry is not an event; no webhook gets it",
                extra={"stream": entry.stream, "entry_id": entry.entry_id},
            )
            return
        raw, event = parsed
        data = event.get("data")
        team_id = data.get("team_id") if isinstance(data, dict) else None
        try:
            webhooks = await self.store.matching(team_id if isinstance(team_id, str) else None)
            wanted = [w for w in webhooks if receives(w, event)]
            added = await self.store.add_deliveries(
                [self._delivery(w.id, raw, event) for w in wanted]
            )
        except StoreUnavailable as exc:
            raise RetryLater(str(exc)) from exc
        if added and self.on_added is not None:
            self.on_added()

    def _delivery(self, webhook_id: str, raw: str, event: dict[str, Any]) -> Delivery:
        now = self.clock.now()
        subject = event.get("subject")
        return Delivery(
            id="dlv_" + self.tokens.new_token(),
            webhook_id=webhook_id,
            event_id=event["id"],
            event_type=event["type"],
            runtime_id=subject[:128] if isinstance(subject, str) else "",
            payload=raw,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )


def webhook_consumer(
    client: redis.asyncio.Redis,
    fanout: WebhookFanout,
    *,
    consumer: str,
    settings: ConsumerSettings,
    stream: str,
    group: str,
) -> GroupConsumer:
    """The group consumer of the events stream that feeds `fanout`. `client` must
    not decode responses (see streams.loop.check_client)."""
    return GroupConsumer(
        client, stream=stream, group=group, consumer=consumer, handler=fanout, settings=settings
    )


class WebhookDeliveryLoop:
    """Attempts due deliveries, up to `max_concurrency` at once, a batch a
    round every `poll_interval_s` (at once after a full batch); `wake()` (the
    fan-out's `on_added`) ends the wait for the next poll early. With
    `idle_poll_max_s`, rounds that claim nothing wait twice as long each time,
    up to it: a retry comes due at most that late (retries' own delays double
    too, so they mostly fall on a round), and another instance's new delivery
    is attempted within it. A failed round backs off up to `backoff_cap_s`."""

    def __init__(
        self,
        store: WebhookStore,
        deliverer: Deliverer,
        clock: Clock,
        *,
        poll_interval_s: float = 0.5,
        batch_size: int = 32,
        max_concurrency: int = 16,
        claim_s: float = 60.0,
        backoff_cap_s: float = 10.0,
        retention_s: float | None = DEFAULT_RETENTION_S,
        purge_interval_s: float = 3600.0,
        idle_poll_max_s: float | None = None,
    ) -> None:
        """`claim_s` must exceed the sender's timeout. `retention_s` None keeps
        finished deliveries for ever."""
        if (
            min(poll_interval_s, claim_s, backoff_cap_s) <= 0
            or min(batch_size, max_concurrency) < 1
        ):
            raise ValueError("intervals must be positive, batch_size and max_concurrency >= 1")
        self.store = store
        self.deliverer = deliverer
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self.claim_s = claim_s
        self.backoff_cap_s = backoff_cap_s
        self.retention_s = retention_s
        self._purge_every = Every(purge_interval_s)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._loop = PeriodicLoop(
            "webhook deliveries",
            self._round,
            interval_s=poll_interval_s,
            backoff_cap_s=backoff_cap_s,
            idle_cap_s=idle_poll_max_s,
        )

    def __repr__(self) -> str:
        return "WebhookDeliveryLoop()"

    def wake(self) -> None:
        self._loop.wake()

    def request_stop(self) -> None:
        """Stop claiming; `run()` returns once the attempts in flight finished."""
        self._loop.request_stop()

    async def stop(self) -> None:
        """`request_stop()`, then wait until `run()` has returned."""
        await self._loop.stop()

    async def run(self) -> None:
        await self._loop.run()

    async def _round(self) -> bool | None:
        """A round; True when it claimed a full batch (more may be due), False
        when it claimed nothing (idle), None otherwise."""
        claimed = await self.run_once()
        if claimed >= self.batch_size:
            return True
        return False if claimed == 0 else None

    async def run_once(self) -> int:
        """Claim one batch of due deliveries and attempt them; how many were claimed."""
        now = self.clock.now()
        if self.retention_s is not None and self._purge_every.due():
            await self._purge(now - timedelta(seconds=self.retention_s))
        claimed = await self.store.claim_due(
            now, lease_until=now + timedelta(seconds=self.claim_s), limit=self.batch_size
        )
        if claimed:
            await asyncio.gather(*(self._attempt(d) for d in claimed))
        return len(claimed)

    async def _purge(self, before: datetime) -> None:
        purged = await self.store.purge_deliveries(before)
        if purged:
            logger.info("old webhook deliveries purged", extra={"count": purged})

    async def _attempt(self, delivery: Delivery) -> None:
        async with self._slots:
            try:
                await self.deliverer.attempt(delivery, Trigger.SCHEDULED)
            except Exception as exc:
                # Left claimed: attempted again once the claim runs out.
                level = logging.WARNING if isinstance(exc, StoreUnavailable) else logging.ERROR
                logger.log(
                    level,
                    "webhook delivery attempt failed",
                    extra={
                        "delivery_id": delivery.id,
                        "webhook_id": delivery.webhook_id,
                        "error": repr(exc),
                    },
                    exc_info=exc,
                )
