"""Offset-mode consumer positions on Redis: one hash per consumer, a field per stream."""

from __future__ import annotations

import redis.asyncio

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.names import offsets_key


class RedisOffsetStore:
    """OffsetStore on `runplane:offsets:{<consumer>}`: stream name -> last handled id.

    Connection failures raise StoreUnavailable.
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client

    async def load(self, consumer: str, stream: str) -> str | None:
        with unavailable_on_connection_errors("offsets.load"):
            entry_id = await self._client.hget(offsets_key(consumer), stream)
        if isinstance(entry_id, bytes):  # a client built without decode_responses
            return entry_id.decode()
        return entry_id

    async def save(self, consumer: str, stream: str, entry_id: str) -> None:
        with unavailable_on_connection_errors("offsets.save"):
            await self._client.hset(offsets_key(consumer), stream, entry_id)
