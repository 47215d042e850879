"""Publishing lifecycle events: the durable stream and its live channel."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio

from runplane.adapters.redis.client import is_cluster, unavailable_on_connection_errors
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
        if is_cluster(self.client):
            await self._publish_on_cluster(events)
            return
        with unavailable_on_connection_errors("publish events"):
            async with self.client.pipeline(transaction=False) as pipe:
                for event in events:
                    if event.durable:
                        pipe.xadd(self.stream, {EVENT_FIELD: event.payload})
                    pipe.publish(self.channel, event.payload)
                await pipe.execute()

    async def _publish_on_cluster(self, events: Sequence[OutboxEvent]) -> None:
        """A cluster pipeline refuses PUBLISH (redis-py blocks it): the XADDs
        go in one pipeline (one stream, one slot, one node), then each PUBLISH
        on its own, in order. PUBLISH reaches every node's subscribers."""
        with unavailable_on_connection_errors("publish events"):
            durable = [event for event in events if event.durable]
            if durable:
                async with self.client.pipeline(transaction=False) as pipe:
                    for event in durable:
                        pipe.xadd(self.stream, {EVENT_FIELD: event.payload})
                    await pipe.execute()
            for event in events:
                await self.client.publish(self.channel, event.payload)
