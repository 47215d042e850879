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


async def test_commands_are_sent_without_wait_for(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py's own send wraps each write in asyncio.wait_for (a task per
    command on Python 3.11); the pool's connections must not call it."""
    import redis.asyncio.connection as redis_connection

    def no_wait_for(*args: object, **kwargs: object) -> None:
        raise AssertionError("asyncio.wait_for used to send a command")

    monkeypatch.setattr(redis_connection.asyncio, "wait_for", no_wait_for)
    client = connect(redis_server.url)
    try:
        await client.set("lean", "sent")
        pipe = client.pipeline(transaction=False)
        pipe.get("lean").incr("lean-n")
        assert await pipe.execute() == ["sent", 1]
    finally:
        await client.aclose()


async def test_a_write_the_server_never_reads_times_out_and_drops_the_connection() -> None:
    """A peer that accepts and never reads: the write fills the socket buffers,
    and after socket_timeout the caller gets redis-py's TimeoutError and the
    connection is closed (the next command would open a fresh one)."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # never read: the client's writes back up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = LeanBlockingPool.from_url(
        f"redis://127.0.0.1:{port}", socket_timeout=0.5, timeout=5, driver_info=None, protocol=2
    )
    connection = pool.make_connection()
    try:
        await connection.connect()
        with pytest.raises(redis.exceptions.TimeoutError, match="Timeout writing to socket"):
            await connection.send_packed_command([b"x" * (64 << 20)], check_health=False)
        assert not connection.is_connected
    finally:
        await connection.disconnect()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
