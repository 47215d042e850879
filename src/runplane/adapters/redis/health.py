"""Health events on Redis: the `runtime:health_events` stream."""

from __future__ import annotations

import redis.asyncio
from redis.typing import FieldT

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.names import HEALTH_EVENTS_STREAM
from runplane.domain.health.events import HealthEvent


class RedisHealthEventPublisher:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        stream: str = HEALTH_EVENTS_STREAM,
        max_len: int | None = 1_000_000,
    ) -> None:
        self.client = client
        self.stream = stream
        self.max_len = max_len

    async def publish(self, event: HealthEvent) -> None:
        fields: dict[FieldT, FieldT] = {k: v for k, v in event.as_fields().items()}  # noqa: C416
        with unavailable_on_connection_errors("publish health event"):
            await self.client.xadd(self.stream, fields, maxlen=self.max_len, approximate=True)
