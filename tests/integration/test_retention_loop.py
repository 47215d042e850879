"""Trimming the events stream keeps what a group has not acknowledged."""

from __future__ import annotations

import uuid

from runplane.adapters.redis.client import connect
from runplane.streams.retention import RetentionPolicy
from runplane.workers.stream_trimmer import RetentionLoop
from tests.support.redis import RedisServer


async def test_trim_keeps_the_newest_and_what_a_group_has_not_acknowledged(
    redis_server: RedisServer,
) -> None:
    client = connect(redis_server.url)
    stream = f"events-{uuid.uuid4().hex[:8]}"
    try:
        ids = [await client.xadd(stream, {"event": str(n)}) for n in range(50)]
        await client.xgroup_create(stream, "webhooks", id="0")
        delivered = await client.xreadgroup("webhooks", "c1", {stream: ">"}, count=30)
        acked = [entry_id for entry_id, _ in delivered[0][1]][:20]
        await client.xack(stream, "webhooks", *acked)
        loop = RetentionLoop(client, {stream: RetentionPolicy(max_len=10)})
        await loop.trim_once()
        kept = [entry_id for entry_id, _ in await client.xrange(stream)]
        assert kept == ids[20:]  # entry 21 was delivered but not acknowledged
        await client.xack(stream, "webhooks", *[e for e, _ in delivered[0][1]][20:])
        await client.xreadgroup("webhooks", "c1", {stream: ">"})
        await client.xack(stream, "webhooks", *ids[30:])
        await loop.trim_once()
        assert [entry_id for entry_id, _ in await client.xrange(stream)] == ids[40:]
    finally:
        await client.delete(stream)
        await client.aclose()
