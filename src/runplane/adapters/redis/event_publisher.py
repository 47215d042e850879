"""Publishing lifecycle events: the durable stream and its live channel."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.names import EVENTS_CHANNEL, EVENTS_STREAM
from runplane.domain.lifecycle_events import EVENT_FIELD, OutboxEvent


class RedisEventPublisher:
    """Durable events are XADDed to the stream (field `event`) and PUBLISHed to the
    channel; transient ones only PUBLISHed. One pipeline per batch, in order."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        stream: str = EVENTS_STREAM,
        channel: str = EVENTS_CHANNEL,
    ) -> None:
        self.client = client
        self.stream = stream
        self.channel = channel

    async def publish(self, events: Sequence[OutboxEvent]) -> None:
        if not events:
            return
        with unavailable_on_connection_errors("publish events"):
            async with self.client.pipeline(transaction=False) as pipe:
                for event in events:
                    if event.durable:
                        pipe.xadd(self.stream, {EVENT_FIELD: event.payload})
                    pipe.publish(self.channel, event.payload)
                await pipe.execute()
