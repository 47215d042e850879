"""Webhooks: the service the API uses, the fan-out from the events stream into
deliveries, and the loop that sends (and retries) them."""

from __future__ import annotations

import contextlib
import dataclasses

import redis.asyncio

from runplane.adapters.http.webhook_sender import HttpWebhookSender, resolve_host
from runplane.adapters.redis.counters import RedisChangeCounter
from runplane.adapters.redis.event_publisher import RedisEventPublisher
from runplane.adapters.redis.names import EVENTS_STREAM, WEBHOOK_GROUP, WEBHOOKS_VERSION
from runplane.adapters.secrets import SecretBox
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.webhook_store import SqlWebhookStore
from runplane.bootstrap.streams import consumer_settings
from runplane.config import Settings
from runplane.domain.lifecycle_events import OutboxEvent
from runplane.domain.webhooks.model import Webhook
from runplane.domain.webhooks.rules import RetrySchedule, parse_retry_schedule
from runplane.ports.system import Clock, TokenGenerator
from runplane.services.webhooks.cached import CachedWebhooks
from runplane.services.webhooks.delivery import Deliverer
from runplane.services.webhooks.management import (
    DISABLED_EVENT_TYPE,
    WebhookService,
    webhook_envelope,
)
from runplane.workers.runner import Loop
from runplane.workers.webhook_dispatcher import (
    WebhookDeliveryLoop,
    WebhookFanout,
    webhook_consumer,
)


async def build_webhooks(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    database: SqlDatabase,
    client: redis.asyncio.Redis,
    stream_client: redis.asyncio.Redis,
    clock: Clock,
    tokens: TokenGenerator,
) -> tuple[WebhookService, list[Loop]]:
    """The webhook service for the API, and its two workers: the fan-out from the
    events stream into deliveries, and the loop that sends (and retries) them."""
    # Every event's fan-out asks which webhooks it matches: answered from memory
    # while the shared counter says the webhooks have not changed.
    store = CachedWebhooks(
        SqlWebhookStore(database, SecretBox(settings.data_dir / "webhook.key")),
        RedisChangeCounter(client, WEBHOOKS_VERSION),
        clock,
    )
    sender = HttpWebhookSender(clock, allow_private=settings.webhook_allow_private)
    stack.push_async_callback(sender.aclose)
    publisher = RedisEventPublisher(client)
    source = f"/runplane/{settings.consumer_name}"

    async def disabled(webhook: Webhook, reason: str) -> None:
        now, event_id = clock.now(), tokens.new_token()
        payload = webhook_envelope(
            webhook,
            event_id=event_id,
            event_type=DISABLED_EVENT_TYPE,
            at=now,
            source=source,
            reason=reason,
        )
        event = OutboxEvent(
            0, event_id, "", webhook.team_id, DISABLED_EVENT_TYPE, True, payload, now
        )
        await publisher.publish([event])

    deliverer = Deliverer(
        store,
        sender,
        clock,
        schedule=RetrySchedule(parse_retry_schedule(settings.webhook_retry_schedule_s)),
        on_disabled=disabled,
    )
    service = WebhookService(
        store,
        deliverer,
        clock,
        tokens,
        resolver=resolve_host,
        allow_private=settings.webhook_allow_private,
    )
    delivery_loop = WebhookDeliveryLoop(
        store, deliverer, clock, idle_poll_max_s=settings.webhook_idle_poll_max_s
    )
    fanout = WebhookFanout(store, clock, tokens, on_added=delivery_loop.wake)
    # No retention here: this group's acknowledgements alone must not trim the
    # events stream that SSE readers replay from.
    consumer = webhook_consumer(
        stream_client,
        fanout,
        stream=EVENTS_STREAM,
        group=WEBHOOK_GROUP,
        consumer=settings.consumer_name,
        settings=dataclasses.replace(consumer_settings(settings), retention=None),
    )
    return service, [consumer, delivery_loop]
