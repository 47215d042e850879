"""A Redis restart under a live client: data comes back (AOF), leases carry on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.exceptions

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.offsets import RedisOffsetStore
from tests.support.redis import RedisServer


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own: restarting the session one would disturb others."""
    server = RedisServer.start(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


async def test_restart_keeps_data_and_the_client_reconnects(own_redis: RedisServer) -> None:
    client = connect(own_redis.url)
    leases, offsets = RedisLeaseStore(client), RedisOffsetStore(client)
    try:
        assert await leases.try_acquire("rt-1", "a", 30_000)
        await offsets.save("sse", "runplane:events", "5-0")
        port = own_redis.port

        await asyncio.to_thread(own_redis.restart)

        assert own_redis.port == port
        assert await leases.renew("rt-1", "a", 30_000)  # reconnect, script reloaded
        assert not await leases.try_acquire("rt-1", "b", 30_000)
        assert await offsets.load("sse", "runplane:events") == "5-0"
        assert await leases.release("rt-1", "a")
    finally:
        await client.aclose()


async def test_stop_is_idempotent_and_frees_the_port(own_redis: RedisServer) -> None:
    pid = own_redis.pid
    assert pid is not None
    own_redis.stop()
    own_redis.stop()
    assert own_redis.pid is None
    client = connect(own_redis.url, retries=0)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()
    finally:
        await client.aclose()
