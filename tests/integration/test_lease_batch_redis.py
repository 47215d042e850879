"""Lease renewals asked together go to Redis in one pipeline (issue 15), and
each still gets its own answer: ours renewed, another's or a gone lease not,
and a Redis away fails every renewal of the batch."""

from __future__ import annotations

import asyncio
from pathlib import Path
from unittest.mock import patch

import pytest

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.names import lease_key
from runplane.domain.errors import StoreUnavailable
from tests.support.redis import RedisServer
from tests.support.streams import unique


async def test_renewals_asked_together_answer_each_for_its_own_lease(
    redis_server: RedisServer,
) -> None:
    client = connect(redis_server.url)
    store = RedisLeaseStore(client)
    ours, theirs, gone = unique("ours"), unique("theirs"), unique("gone")
    try:
        assert await store.try_acquire(ours, "me", 1_000)
        assert await store.try_acquire(theirs, "other", 1_000)
        with patch.object(client, "pipeline", wraps=client.pipeline) as pipelines:
            answers = await asyncio.gather(
                store.renew(ours, "me", 60_000),
                store.renew(theirs, "me", 60_000),
                store.renew(gone, "me", 60_000),
            )
        assert answers == [True, False, False]
        assert pipelines.call_count == 1  # one round trip for the three
        assert await client.pttl(lease_key(ours)) > 1_000  # pushed out to the new TTL
        assert await client.pttl(lease_key(theirs)) <= 1_000  # left alone
        assert await client.get(lease_key(theirs)) == "other"
    finally:
        await client.delete(lease_key(ours), lease_key(theirs))
        await client.aclose()


async def test_a_batch_of_renewals_fails_whole_when_redis_is_away(tmp_path: Path) -> None:
    server = RedisServer.start(tmp_path / "redis")
    client = connect(server.url)
    store = RedisLeaseStore(client)
    try:
        assert await store.try_acquire("a", "me", 10_000)
        server.stop()
        answers = await asyncio.gather(
            store.renew("a", "me", 10_000), store.renew("b", "me", 10_000), return_exceptions=True
        )
        assert all(isinstance(answer, StoreUnavailable) for answer in answers), answers
        with pytest.raises(StoreUnavailable):
            await store.renew("a", "me", 10_000)
    finally:
        server.stop()
        await client.aclose()
