"""A stop ends an idle blocking read at once (streams/parked.py), against a
real Redis: a group consumer, an offset consumer and the agent, each parked
in a read that would block for ten minutes, stop within the test's patience,
and what arrives afterwards is read by the next one, none of it lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.redis.client import is_cluster
from runplane.adapters.redis.host_calls import RedisHostCallInbox
from runplane.adapters.redis.names import host_calls_stream
from runplane.adapters.redis.offsets import RedisOffsetStore
from runplane.streams import GroupConsumer, OffsetConsumer
from runplane.streams.loop import ConsumerLoop
from runplane.workers import agent as agent_module
from runplane.workers.agent import AgentLoop
from tests.support.redis_target import RedisTarget
from tests.support.streams import Recorder, fast, running, unique, wait_until

TEN_MINUTES_MS = 600_000
PATIENCE_S = 60
"""Far below the block: a stop that waited the read out would fail."""


@pytest_asyncio.fixture(loop_scope="session")
async def client(redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
    # The socket timeout must outlast the block (the consumers check it).
    client = redis_target.connect(decode_responses=False, socket_timeout_s=TEN_MINUTES_MS / 500)
    yield client
    await client.aclose()


async def parked_in(client: redis.asyncio.Redis, command: str, stream: str) -> bool:
    """Whether a connection is blocked in `command` (on a cluster, on the node of `stream`)."""
    if is_cluster(client):
        await client.initialize()  # type: ignore[attr-defined]
        node = client.get_node_from_key(stream)  # type: ignore[attr-defined]
        listed = await client.client_list(target_nodes=node)  # type: ignore[call-arg]
    else:
        listed = await client.client_list()
    return any(c.get("cmd") == command and "b" in c.get("flags", "") for c in listed)


async def stop_parked(consumer: ConsumerLoop, client: redis.asyncio.Redis, command: str) -> None:
    task = asyncio.create_task(consumer.run())
    await wait_until(lambda: parked_in(client, command, consumer.stream))
    consumer.request_stop()
    await asyncio.wait_for(task, PATIENCE_S)


def group_consumer(client: redis.asyncio.Redis, stream: str, handler: Recorder) -> GroupConsumer:
    settings = fast(block_ms=TEN_MINUTES_MS)
    return GroupConsumer(
        client, stream=stream, group="g", consumer="c", handler=handler, settings=settings
    )


def offset_consumer(client: redis.asyncio.Redis, stream: str, handler: Recorder) -> OffsetConsumer:
    return OffsetConsumer(
        client,
        RedisOffsetStore(client),
        stream=stream,
        consumer="reader",
        handler=handler,
        settings=fast(block_ms=TEN_MINUTES_MS),
        initial_id="0",
    )


async def test_a_group_consumer_parked_in_a_read_stops_at_once(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("jobs")
    first = Recorder()
    await stop_parked(group_consumer(client, stream, first), client, "xreadgroup")
    assert first.calls == []

    entry_id = (await client.xadd(stream, {"runtime_id": "rt-1"})).decode()
    second = Recorder()
    async with running(group_consumer(client, stream, second)):
        await wait_until(lambda: second.entry_ids == [entry_id])
    assert int((await client.xpending(stream, "g"))["pending"]) == 0


async def test_an_offset_consumer_parked_in_a_read_stops_at_once(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("events")
    before = (await client.xadd(stream, {"runtime_id": "rt-0"})).decode()
    first = Recorder()
    reader = offset_consumer(client, stream, first)
    await stop_parked(reader, client, "xread")
    assert first.entry_ids == [before]
    assert reader.position == before

    after = (await client.xadd(stream, {"runtime_id": "rt-1"})).decode()
    second = Recorder()
    async with running(offset_consumer(client, stream, second)):
        await wait_until(lambda: second.entry_ids == [after])


async def test_the_agent_parked_in_a_read_stops_at_once(
    client: redis.asyncio.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_module, "READ_BLOCK_MS", TEN_MINUTES_MS)
    driver = ProcessDriver(tmp_path / "state")
    host_id = unique("host")
    agent = AgentLoop(RedisHostCallInbox(client, host_id), {"process": driver})
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.wait_for(agent.ready.wait(), PATIENCE_S)
        await wait_until(lambda: parked_in(client, "xreadgroup", host_calls_stream(host_id)))
        agent.request_stop()
        await asyncio.wait_for(task, PATIENCE_S)
    finally:
        task.cancel()
        driver.close()
