"""XINFO GROUPS of a stream, for the hooks listing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio
import redis.exceptions

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.ports.hooks import GroupState


class RedisGroupStates:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client

    async def groups(self, stream: str) -> Sequence[GroupState]:
        with unavailable_on_connection_errors("read consumer groups"):
            try:
                rows: list[dict[Any, Any]] = await self.client.xinfo_groups(stream)
            except redis.exceptions.ResponseError:
                return []  # no such stream yet: no group either
        return [_state(row) for row in rows]


def _state(row: dict[Any, Any]) -> GroupState:
    def text(key: str) -> str:
        value = row.get(key, row.get(key.encode(), b""))
        return value.decode() if isinstance(value, bytes) else str(value)

    lag = row.get("lag", row.get(b"lag"))
    return GroupState(
        name=text("name"),
        consumers=int(text("consumers") or 0),
        pending=int(text("pending") or 0),
        last_delivered_id=text("last-delivered-id"),
        lag=int(lag) if lag is not None else None,
    )
