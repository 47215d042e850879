"""ChangeCounter on one Redis key (INCR), shared by every instance."""

from __future__ import annotations

import redis.asyncio

from runplane.adapters.redis.client import unavailable_on_connection_errors


class RedisChangeCounter:
    def __init__(self, client: redis.asyncio.Redis, key: str) -> None:
        self._client = client
        self._key = key

    async def current(self) -> int:
        with unavailable_on_connection_errors("counter.current"):
            value = await self._client.get(self._key)
        return int(value or 0)

    async def bump(self) -> None:
        with unavailable_on_connection_errors("counter.bump"):
            await self._client.incr(self._key)
