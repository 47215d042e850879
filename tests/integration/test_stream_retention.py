"""Trimming against a real redis-server: acknowledged entries go, entries some
group still needs (pending or not yet delivered) never do."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio

from runplane.streams import GroupConsumer, RetentionPolicy, trim
from runplane.streams import retention as retention_module
from tests.support.redis_target import RedisTarget
from tests.support.streams import Recorder, fast, running, unique, wait_until


@pytest_asyncio.fixture(loop_scope="session")
async def client(redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis_target.connect(decode_responses=False)
    yield client
    await client.aclose()


async def add(client: redis.asyncio.Redis, stream: str, n: int) -> list[bytes]:
    return [await client.xadd(stream, {"n": str(i)}) for i in range(n)]


async def ids_in(client: redis.asyncio.Redis, stream: str) -> list[bytes]:
    return [entry_id for entry_id, _ in await client.xrange(stream)]


async def test_pending_and_undelivered_entries_survive_a_length_trim(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("jobs")
    ids = await add(client, stream, 10)
    await client.xgroup_create(stream, "workers", id="0")
    await client.xreadgroup("workers", "c1", {stream: ">"}, count=6)  # 1-6 delivered
    await client.xack(stream, "workers", *ids[:4])  # 5 and 6 still pending

    removed = await trim(client, stream, RetentionPolicy(max_len=0))

    assert removed == 4
    assert await ids_in(client, stream) == ids[4:]


async def test_a_group_that_read_nothing_keeps_everything(client: redis.asyncio.Redis) -> None:
    stream = unique("jobs")
    ids = await add(client, stream, 5)
    await client.xgroup_create(stream, "fast", id="0")
    await client.xgroup_create(stream, "slow", id="0")
    await client.xreadgroup("fast", "c1", {stream: ">"})
    await client.xack(stream, "fast", *ids)

    assert await trim(client, stream, RetentionPolicy(max_len=0)) == 0
    assert await ids_in(client, stream) == ids


async def test_fully_acknowledged_entries_are_trimmed_to_the_length(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("jobs")
    ids = await add(client, stream, 10)
    await client.xgroup_create(stream, "workers", id="0")
    await client.xreadgroup("workers", "c1", {stream: ">"})
    await client.xack(stream, "workers", *ids)

    assert await trim(client, stream, RetentionPolicy(max_len=3)) == 7
    assert await ids_in(client, stream) == ids[7:]


async def test_an_age_trim_keeps_young_entries(client: redis.asyncio.Redis) -> None:
    stream = unique("events")
    old_ms = int(time.time() * 1000) - 3_600_000
    old = [await client.xadd(stream, {"n": "old"}, id=f"{old_ms}-{i}") for i in range(3)]
    young = await add(client, stream, 2)

    assert await trim(client, stream, RetentionPolicy(max_age_ms=60_000)) == len(old)
    assert await ids_in(client, stream) == young


async def test_with_both_bounds_the_stricter_one_wins(client: redis.asyncio.Redis) -> None:
    stream = unique("events")
    old_ms = int(time.time() * 1000) - 3_600_000
    await client.xadd(stream, {"n": "old"}, id=f"{old_ms}-0")
    young = await add(client, stream, 4)

    await trim(client, stream, RetentionPolicy(max_len=2, max_age_ms=60_000))
    assert await ids_in(client, stream) == young[2:]


async def test_a_long_backlog_is_trimmed_in_steps(
    client: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention_module, "MAX_LEN_STEP", 7)
    stream = unique("events")
    ids = await add(client, stream, 40)

    assert await trim(client, stream, RetentionPolicy(max_len=5)) == 35
    assert await ids_in(client, stream) == ids[35:]


async def test_missing_streams_and_other_keys_are_left_alone(
    client: redis.asyncio.Redis,
) -> None:
    other = unique("not-a-stream")
    await client.set(other, "x")
    assert await trim(client, unique("missing"), RetentionPolicy(max_len=0)) == 0
    assert await trim(client, other, RetentionPolicy(max_len=0)) == 0
    assert await client.get(other) == b"x"


async def test_an_empty_policy_trims_nothing(client: redis.asyncio.Redis) -> None:
    stream = unique("events")
    await add(client, stream, 3)
    assert await trim(client, stream, RetentionPolicy()) == 0
    assert await client.xlen(stream) == 3


def test_negative_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_len"):
        RetentionPolicy(max_len=-1)
    with pytest.raises(ValueError, match="max_age_ms"):
        RetentionPolicy(max_age_ms=-1)


async def test_a_group_consumer_trims_what_it_acknowledged(client: redis.asyncio.Redis) -> None:
    stream = unique("jobs")
    await add(client, stream, 5)
    recorder = Recorder()
    consumer = GroupConsumer(
        client,
        stream=stream,
        group="workers",
        consumer="c1",
        handler=recorder,
        settings=fast(retention=RetentionPolicy(max_len=0)),
    )

    async def emptied() -> bool:
        return len(recorder.calls) == 5 and await client.xlen(stream) == 0

    async with running(consumer):
        await wait_until(emptied)


async def test_ids_compare_as_numbers_not_text(client: redis.asyncio.Redis) -> None:
    """1-9 < 1-10 and 9-0 < 10-0: the script compares ids numerically, and the
    entry after a group's last-delivered 1-9 is 1-10."""
    stream = unique("jobs")
    ids = [await client.xadd(stream, {"n": "x"}, id=i) for i in ("9-8", "9-9", "10-0", "10-1")]
    await client.xgroup_create(stream, "workers", id="0")
    await client.xreadgroup("workers", "c1", {stream: ">"}, count=2)
    await client.xack(stream, "workers", *ids[:2])

    assert await trim(client, stream, RetentionPolicy(max_len=0)) == 2
    assert await ids_in(client, stream) == ids[2:]
