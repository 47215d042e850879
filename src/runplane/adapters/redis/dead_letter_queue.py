"""The dead-letter stream as an operator sees it (list, replay, drop)."""

from __future__ import annotations

import redis.asyncio

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.streams import dead_lettering as dead_letters
from runplane.streams.dead_lettering import DeadLetter
from runplane.streams.settings import DEAD_LETTER_STREAM


class RedisDeadLetterQueue:
    def __init__(self, client: redis.asyncio.Redis, stream: str = DEAD_LETTER_STREAM) -> None:
        self.client = client
        self.stream = stream

    async def list(self, *, after: str | None = None, count: int = 100) -> list[DeadLetter]:
        with unavailable_on_connection_errors("list dead letters"):
            return await dead_letters.list_dead_letters(
                self.client, dead_letter_stream=self.stream, after=after, count=count
            )

    async def replay(self, dead_letter_id: str) -> str:
        with unavailable_on_connection_errors("replay dead letter"):
            return await dead_letters.replay_dead_letter(
                self.client, dead_letter_id, dead_letter_stream=self.stream
            )

    async def drop(self, dead_letter_id: str) -> bool:
        with unavailable_on_connection_errors("drop dead letter"):
            return await dead_letters.drop_dead_letter(
                self.client, dead_letter_id, dead_letter_stream=self.stream
            )
