"""Host calls on Redis, round trip, on a plain Redis and on a cluster: the send
(XADD), the agent's group read, its fenced admit script (lease, fence and call
keys of one runtime: one slot), its answer (a MULTI on one key), its ack (a
MULTI on one stream) and the caller's BLPOP."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from runplane.adapters.redis.host_calls import RedisHostCallInbox, RedisHostCallSender
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.domain.host_calls import CallOp, HostCall
from runplane.ports.host_calls import Admission
from tests.support.redis_target import RedisTarget


@pytest.fixture
async def client(redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis_target.connect()
    yield client
    await client.aclose()


async def test_a_fenced_call_goes_there_and_back(client: redis.asyncio.Redis) -> None:
    host_id = f"host-{uuid.uuid4().hex[:8]}"
    runtime_id = f"rt-{uuid.uuid4().hex[:8]}"
    assert await RedisLeaseStore(client).try_acquire(runtime_id, "token-1", 10_000)
    sender = RedisHostCallSender(client)
    inbox = RedisHostCallInbox(client, host_id)
    await inbox.ensure_group()
    call = HostCall(
        call_id="call-1",
        op=CallOp.STOP,
        driver="process",
        deadline=time.time() + 60,
        runtime_id=runtime_id,
        lease_token="token-1",
        record_version=3,
    )
    await sender.send(host_id, call)

    deliveries = await inbox.read(10, 100, after=None)
    assert [d.raw is not None for d in deliveries] == [True]
    assert await inbox.admit(call) == (Admission.GO, "")
    assert (await inbox.admit(call))[0] is Admission.CLAIMED  # not answered yet
    await inbox.settle(call, "stopped")
    assert await inbox.admit(call) == (Admission.REPLAY, "stopped")
    await inbox.answer(call.call_id, "stopped")
    await inbox.ack(deliveries[0].entry_id)

    assert await sender.wait_answer(host_id, call.call_id, 2.0) == "stopped"
    assert await inbox.read(10, 100, after="0") == []  # acknowledged and deleted
