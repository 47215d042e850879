"""RedisEventPublisher on a real Redis publishes each event once: a batch
published again (a new relay leader after a crash, an old one paused past its
lease) adds nothing to the stream or the live channel; the set of published
ids stays bounded; and that set lives in the stream's own cluster slot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.event_publisher import RedisEventPublisher
from runplane.adapters.redis.names import EVENTS_STREAM, published_ids_key, slot_tag
from runplane.domain.lifecycle_events import EVENT_FIELD, OutboxEvent
from tests.support.events import lifecycle_event
from tests.support.redis import RedisServer
from tests.support.streams import unique


def event(n: int, *, durable: bool = True) -> OutboxEvent:
    built = lifecycle_event(n)
    return OutboxEvent(
        seq=n,
        event_id=f"{built.id}-{'d' if durable else 't'}",
        runtime_id=built.runtime_id,
        team_id=built.team_id,
        type=built.type,
        durable=durable,
        payload=json.dumps({"id": f"{built.id}-{'d' if durable else 't'}", "n": n}),
        created_at=built.time,
    )


def crc16(data: bytes) -> int:
    """CRC16-XMODEM, the hash of Redis Cluster's key slots."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str) -> int:
    return crc16(slot_tag(key).encode()) % 16384


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


async def live_ids(pubsub: redis.asyncio.client.PubSub) -> list[str]:
    seen: list[str] = []
    async with asyncio.timeout(5):
        while (message := await pubsub.get_message(True, timeout=0.3)) is not None:
            seen.append(json.loads(message["data"])["id"])
    return seen


async def stream_ids(client: redis.asyncio.Redis, stream: str) -> list[str]:
    entries = await client.xrange(stream)
    return [json.loads(fields[EVENT_FIELD])["id"] for _, fields in entries]


def test_the_published_ids_share_the_streams_slot() -> None:
    assert published_ids_key(EVENTS_STREAM) == "{runplane:events}:published"
    assert slot_tag("{runplane:events}:published") == "runplane:events"
    assert key_slot(published_ids_key(EVENTS_STREAM)) == key_slot(EVENTS_STREAM)
    # A stream already tagged keeps its tag; an empty tag hashes the whole name.
    assert published_ids_key("{app}:events") == "{app}:published"
    assert slot_tag("a{}b") == "a{}b"
    assert key_slot("{app}:published") == key_slot("{app}:events")
    assert crc16(b"123456789") == 0x31C3  # the check value of CRC16-XMODEM


async def test_a_batch_published_twice_reaches_stream_and_channel_once(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("events")
    channel = f"{stream}:live"
    publisher = RedisEventPublisher(client, stream=stream, channel=channel)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1)
    batch = [event(1), event(2, durable=False), event(3)]
    await publisher.publish(batch)
    await publisher.publish(batch)  # the new leader, after a crash before mark_sent
    await publisher.publish([*batch, event(4)])  # and more, a batch that overlaps
    try:
        assert await stream_ids(client, stream) == [
            batch[0].event_id,
            batch[2].event_id,
            event(4).event_id,
        ]
        assert await live_ids(pubsub) == [e.event_id for e in [*batch, event(4)]]
    finally:
        await pubsub.aclose()


async def test_published_ids_are_trimmed_by_count_and_age(client: redis.asyncio.Redis) -> None:
    stream = unique("events")
    by_count = RedisEventPublisher(client, stream=stream, keep_count=3)
    await by_count.publish([event(n) for n in range(1, 6)])
    kept = await client.zrange(by_count.published_ids, 0, -1)
    assert kept == [event(n).event_id for n in (3, 4, 5)]
    assert 0 < await client.pttl(by_count.published_ids) <= 24 * 3600 * 1000
    # Once its id is gone, an event published again is on the stream again: the bound.
    await by_count.publish([event(1)])
    assert (await stream_ids(client, stream)).count(event(1).event_id) == 2

    by_age = RedisEventPublisher(client, stream=unique("events"), keep_ms=100)
    await by_age.publish([event(1)])
    await asyncio.sleep(0.2)
    await by_age.publish([event(2)])
    assert await client.zrange(by_age.published_ids, 0, -1) == [event(2).event_id]
