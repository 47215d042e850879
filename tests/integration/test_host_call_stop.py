"""A stopping serve stops waiting for other hosts' answers (docs/hosts.md): a
wait in flight ends after the grace with HostUnreachable, an answer within
the grace still counts, and nothing is sent after. Real Redis; the bounds
below only keep a broken build from hanging the suite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.host_calls import RedisHostCallSender
from runplane.adapters.redis.names import host_calls_stream, host_reply_key
from runplane.domain.host_calls import CallOp, HostCall, HostUnreachable
from tests.support.redis import RedisServer

BOUND_S = 30.0
"""Far above the call bounds used here: only a wait that never ends reaches it."""


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


def a_call(call_id: str) -> HostCall:
    return HostCall(call_id=call_id, op=CallOp.LIST, driver="process", deadline=0.0)


async def test_a_wait_in_flight_ends_once_the_caller_stops_waiting(
    client: redis.asyncio.Redis,
) -> None:
    sender = RedisHostCallSender(client)
    waiting = asyncio.create_task(sender.wait_answer("gone-host", "c-1", wait_s=600))
    await asyncio.sleep(0.05)  # inside its BLPOP
    sender.stop_waiting(grace_s=0)
    with pytest.raises(HostUnreachable, match="stopping"):
        await asyncio.wait_for(waiting, BOUND_S)
    assert await client.ping()  # the read's connection was dropped, the client goes on


async def test_an_answer_within_the_grace_is_still_taken(client: redis.asyncio.Redis) -> None:
    sender = RedisHostCallSender(client)
    waiting = asyncio.create_task(sender.wait_answer("slow-host", "c-2", wait_s=600))
    sender.stop_waiting(grace_s=BOUND_S)
    await client.lpush(host_reply_key("slow-host", "c-2"), '{"ok": true}')
    assert await asyncio.wait_for(waiting, BOUND_S) == '{"ok": true}'


async def test_nothing_is_sent_once_the_waiting_stopped(client: redis.asyncio.Redis) -> None:
    sender = RedisHostCallSender(client)
    sender.stop_waiting(grace_s=0)
    await asyncio.sleep(0.01)  # the stop lands on the loop's next turn
    with pytest.raises(HostUnreachable, match="stopping"):
        await sender.send("any-host", a_call("c-3"))
    with pytest.raises(HostUnreachable, match="stopping"):
        await sender.wait_answer("any-host", "c-3", wait_s=600)
    assert await client.xlen(host_calls_stream("any-host")) == 0
