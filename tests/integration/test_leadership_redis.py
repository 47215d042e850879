"""Leadership on a real Redis: a follower takes a dead leader's lease on its own
once it expires; a Redis away for longer than the lease ends the lead (the
leader is told, and does not claim it while Redis is away), and once Redis is
back one instance leads again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.names import lease_key
from runplane.domain.errors import StoreUnavailable
from runplane.workers.leadership import Leadership
from tests.support.redis import RedisServer
from tests.support.streams import unique, wait_until
from tests.support.tokens import SequentialTokens


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own: stopping the session one would disturb others."""
    server = RedisServer.start(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


async def test_a_follower_takes_a_dead_leaders_lease_when_it_expires(
    redis_server: RedisServer,
) -> None:
    client = connect(redis_server.url)
    name = unique("relay")
    # The dead leader (a kill -9): its lease stays until its TTL ends.
    await client.set(lease_key(name), "dead", px=400)
    follower = Leadership(RedisLeaseStore(client), SequentialTokens(), name, ttl_ms=400)
    woken = asyncio.Event()
    follower.on_change(woken.set)
    try:
        assert not await follower.hold()
        await asyncio.wait_for(woken.wait(), timeout=5)
        assert await client.get(lease_key(name)) == follower.token
        assert await follower.hold()
        await follower.release()
        assert await client.get(lease_key(name)) is None  # given back
    finally:
        await follower.release()
        await client.aclose()


async def test_redis_away_past_the_lease_ends_the_lead_until_it_is_back(
    own_redis: RedisServer,
) -> None:
    client = connect(own_redis.url, retries=0)
    leader = Leadership(
        RedisLeaseStore(client), SequentialTokens(), "runplane:reconciler", ttl_ms=400
    )
    told = asyncio.Event()
    leader.on_change(told.set)
    try:
        assert await leader.hold()
        await asyncio.to_thread(own_redis.stop)
        await asyncio.wait_for(told.wait(), timeout=5)
        assert not leader.leading
        with pytest.raises(StoreUnavailable):
            await leader.hold()  # unknown: not claimed
        await asyncio.to_thread(own_redis.restart)
        await wait_until(lambda: leader.leading)  # its follower takes it again
    finally:
        await leader.release()
        await client.aclose()
