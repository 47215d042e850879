"""The dead-letter stream as an operator sees it: list, replay, drop.

Replaying adds the original fields back to their stream (a new entry id) and
then deletes the dead letter; a crash between the two leaves both, so a dead
letter may be replayed twice: handlers are idempotent by `job_id` for this
reason among others. Works with a client that decodes responses or one that
does not."""

from __future__ import annotations

from typing import Any

import redis.asyncio

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.names import DEAD_LETTER_STREAM
from runplane.domain.dead_letters import (
    DeadLetter,
    DeadLetterNotFound,
    DeadLetterUnreplayable,
    is_entry_id,
    is_last_possible_id,
    parse_dead_letter,
    replay_refusal,
)


class RedisDeadLetterQueue:
    def __init__(self, client: redis.asyncio.Redis, stream: str = DEAD_LETTER_STREAM) -> None:
        self.client = client
        self.stream = stream

    async def list(self, *, after: str | None = None, count: int = 100) -> list[DeadLetter]:
        """Oldest first; `after` is the last id of the previous page. The caller
        checks `after` (is_entry_id): Redis would answer an error for another."""
        if after is not None and (not is_entry_id(after) or is_last_possible_id(after)):
            return []
        start = "-" if after is None else "(" + after
        with unavailable_on_connection_errors("list dead letters"):
            entries: Any = await self.client.xrange(self.stream, min=start, max="+", count=count)
        return [parse_dead_letter(entry_id, raw) for entry_id, raw in entries or []]

    async def get(self, dead_letter_id: str) -> DeadLetter | None:
        if not is_entry_id(dead_letter_id):
            return None  # no entry has such an id (and XRANGE would refuse it)
        with unavailable_on_connection_errors("get dead letter"):
            entries: Any = await self.client.xrange(
                self.stream, min=dead_letter_id, max=dead_letter_id
            )
        if not entries:
            return None
        entry_id, raw = entries[0]
        return parse_dead_letter(entry_id, raw)

    async def replay(self, dead_letter_id: str) -> str:
        """Add the dead letter's fields back to its stream, then delete it; the new
        entry's id. Raises DeadLetterNotFound or DeadLetterUnreplayable."""
        letter = await self.get(dead_letter_id)
        if letter is None:
            raise DeadLetterNotFound(dead_letter_id)
        if not letter.stream:
            raise DeadLetterUnreplayable(dead_letter_id, "no stream")
        if not letter.fields:
            raise DeadLetterUnreplayable(dead_letter_id, "no fields")
        refusal = replay_refusal(letter.stream)
        if refusal is not None:
            raise DeadLetterUnreplayable(dead_letter_id, refusal)
        fields: dict[Any, Any] = dict(letter.fields)
        with unavailable_on_connection_errors("replay dead letter"):
            new_id = await self.client.xadd(letter.stream, fields)
            await self.client.xdel(self.stream, dead_letter_id)
        return new_id.decode() if isinstance(new_id, bytes) else str(new_id)

    async def drop(self, dead_letter_id: str) -> bool:
        """Delete a dead letter; False if there was none with that id."""
        if not is_entry_id(dead_letter_id):
            return False  # no entry has such an id (and XDEL would refuse it)
        with unavailable_on_connection_errors("drop dead letter"):
            deleted: int = await self.client.xdel(self.stream, dead_letter_id)
        return deleted > 0
