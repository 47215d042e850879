"""Short commands asked while one is in flight share a pipeline (issue 15),
and each caller still gets its own reply or error."""

from __future__ import annotations

import asyncio
from pathlib import Path
from unittest.mock import patch

import pytest
import redis.exceptions

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.coalesce import coalescer_for
from runplane.adapters.redis.jobs import RedisJobResultPublisher
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.domain.errors import StoreUnavailable
from runplane.domain.jobs import JobResult
from runplane.domain.operations import Outcome
from tests.support.redis import RedisServer
from tests.support.streams import unique


async def test_commands_asked_meanwhile_go_together_each_with_its_reply(
    redis_server: RedisServer,
) -> None:
    client = connect(redis_server.url)
    commands = coalescer_for(client)
    keys = [unique("n") for _ in range(20)]
    try:
        await client.set(keys[0], "not a number")
        with patch.object(client, "pipeline", wraps=client.pipeline) as pipelines:
            replies = await asyncio.gather(
                *(commands.call("INCRBY", key, i) for i, key in enumerate(keys)),
                return_exceptions=True,
            )
        # The first went alone; the 19 asked while it was in flight, together.
        assert pipelines.call_count == 1
        assert isinstance(replies[0], redis.exceptions.ResponseError)  # its own error only
        assert replies[1:] == list(range(1, 20))
        assert await client.get(keys[5]) == "5"
    finally:
        await client.delete(*keys)
        await client.aclose()


async def test_one_client_shares_one_coalescer(redis_server: RedisServer) -> None:
    client, other = connect(redis_server.url), connect(redis_server.url)
    try:
        assert coalescer_for(client) is coalescer_for(client)
        assert coalescer_for(client) is not coalescer_for(other)
    finally:
        await client.aclose()
        await other.aclose()


async def test_a_caller_cancelled_before_its_command_left_sends_nothing(
    redis_server: RedisServer,
) -> None:
    client = connect(redis_server.url)
    commands = coalescer_for(client)
    first, dropped, kept = unique("first"), unique("dropped"), unique("kept")
    try:
        in_flight = asyncio.ensure_future(commands.call("SET", first, "1"))
        await asyncio.sleep(0)  # the first is on its way: the next ones queue
        cancelled = asyncio.ensure_future(commands.call("SET", dropped, "1"))
        queued = asyncio.ensure_future(commands.call("SET", kept, "1"))
        await asyncio.sleep(0)
        cancelled.cancel()
        assert await in_flight
        assert await queued
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert await client.exists(dropped) == 0
        assert await client.get(kept) == "1"
    finally:
        await client.delete(first, dropped, kept)
        await client.aclose()


async def test_leases_and_results_taken_together_keep_their_answers(
    redis_server: RedisServer,
) -> None:
    client = connect(redis_server.url)
    leases = RedisLeaseStore(client)
    stream = unique("results")
    results = RedisJobResultPublisher(client, stream=stream)
    ids = [unique("rt") for _ in range(10)]
    try:
        assert await leases.try_acquire(ids[0], "theirs", 10_000)
        taken = await asyncio.gather(*(leases.try_acquire(i, "mine", 10_000) for i in ids))
        assert taken == [False] + [True] * 9
        await asyncio.gather(
            *(results.publish(JobResult(f"job-{i}", i, "stop", Outcome.SUCCESS, 1)) for i in ids)
        )
        released = await asyncio.gather(*(leases.release(i, "mine") for i in ids))
        assert released == [False] + [True] * 9  # another's lease is never deleted
        assert await client.get(f"lease:{{{ids[0]}}}") == "theirs"
        entries = await client.xrange(stream)
        assert [fields["job_id"] for _, fields in entries] == [f"job-{i}" for i in ids]
    finally:
        await client.delete(stream, *(f"lease:{{{i}}}" for i in ids))
        await client.aclose()


async def test_every_command_of_a_pipeline_fails_when_redis_is_away(tmp_path: Path) -> None:
    server = RedisServer.start(tmp_path / "redis")
    client = connect(server.url, retries=0)
    leases = RedisLeaseStore(client)
    try:
        assert await leases.try_acquire("a", "me", 10_000)
        server.stop()
        answers = await asyncio.gather(
            *(leases.try_acquire(f"r{i}", "me", 10_000) for i in range(5)),
            return_exceptions=True,
        )
        assert all(isinstance(answer, StoreUnavailable) for answer in answers), answers
        # Nothing is left waiting: the next command is answered too.
        with pytest.raises(StoreUnavailable):
            await leases.release("a", "me")
    finally:
        server.stop()
        await client.aclose()
