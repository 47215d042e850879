"""LeanBlockingPool on a real redis-server: free connections are reused, a
crowd past the pool's size waits for one, a connection the server closed
is reopened, and a pool with none free times out as before."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
import redis.exceptions

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.pool import LeanBlockingPool
from tests.support.redis import RedisServer


async def test_the_client_uses_the_lean_pool_and_reuses_connections(
    redis_server: RedisServer,
) -> None:
    client = connect(redis_server.url)
    try:
        pool = client.connection_pool
        assert isinstance(pool, LeanBlockingPool)
        for i in range(50):
            await client.set(f"pool-{i}", i)
        assert await client.get("pool-49") == "49"
        # One caller at a time: one connection, taken and put back each time.
        assert len(pool._available_connections) == 1
        assert not pool._in_use_connections
    finally:
        await client.aclose()


async def test_a_crowd_larger_than_the_pool_waits_and_is_answered(
    redis_server: RedisServer,
) -> None:
    pool = LeanBlockingPool.from_url(redis_server.url, max_connections=4, timeout=30)
    client = redis.asyncio.Redis(connection_pool=pool, decode_responses=True)
    try:
        replies = await asyncio.gather(*(client.incr("pool-crowd") for _ in range(200)))
        assert sorted(replies) == list(range(1, 201))
        assert len(pool._available_connections) <= 4
        assert not pool._in_use_connections
    finally:
        await client.aclose()
        await pool.disconnect()


async def test_a_free_connection_the_server_closed_is_reopened(
    redis_server: RedisServer,
) -> None:
    client = connect(redis_server.url)
    killer = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        first_id = await client.client_id()
        await killer.client_kill_filter(_id=first_id)
        await asyncio.sleep(0.05)
        # The pooled connection is dead: it is reopened, not handed out broken.
        assert await client.set("pool-reopened", "x")
        assert await client.client_id() != first_id
    finally:
        await client.aclose()
        await killer.aclose()


async def test_no_free_connection_within_the_timeout_fails_as_before(
    redis_server: RedisServer,
) -> None:
    pool = LeanBlockingPool.from_url(redis_server.url, max_connections=1, timeout=0.2)
    try:
        held = await pool.get_connection()
        with pytest.raises(redis.exceptions.ConnectionError, match="No connection available"):
            await pool.get_connection()
        await pool.release(held)
        again = await pool.get_connection()  # the released one, at once
        assert again is held
        await pool.release(again)
    finally:
        await pool.disconnect()
