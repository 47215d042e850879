"""Offset mode against a real redis-server: the position advances only past
handled entries, survives a restart, and a failing entry ends in the dead letters."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
import redis.asyncio

from runplane.adapters.redis.client import connect_bytes
from runplane.adapters.redis.offsets import RedisOffsetStore
from runplane.streams import OffsetConsumer, RetryLater, StreamEntry
from runplane.streams.settings import ConsumerSettings
from tests.support.redis import RedisServer
from tests.support.redis_target import RedisTarget
from tests.support.streams import Recorder, fast, running, sample, unique, wait_until


@pytest_asyncio.fixture(loop_scope="session")
async def client(redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis_target.connect(decode_responses=False)
    yield client
    await client.aclose()


def consumer_for(
    client: redis.asyncio.Redis,
    stream: str,
    handler: Recorder,
    *,
    name: str = "relay",
    settings: ConsumerSettings | None = None,
    initial_id: str = "0",
) -> OffsetConsumer:
    return OffsetConsumer(
        client,
        RedisOffsetStore(client),
        stream=stream,
        consumer=name,
        handler=handler,
        settings=settings or fast(),
        initial_id=initial_id,
    )


async def add(client: redis.asyncio.Redis, stream: str, n: int, runtime: str = "rt") -> list[str]:
    return [
        (await client.xadd(stream, {"runtime_id": f"{runtime}-{i}"})).decode() for i in range(n)
    ]


async def test_the_offset_advances_only_after_the_batch_was_handled(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("events")
    ids = await add(client, stream, 3)
    offsets = RedisOffsetStore(client)
    release = asyncio.Event()

    async def held(entry: StreamEntry) -> None:
        await release.wait()

    recorder = Recorder(held)
    async with running(consumer_for(client, stream, recorder)):
        await wait_until(lambda: len(recorder.calls) == 3)
        assert await offsets.load("relay", stream) is None  # handling, not handled
        release.set()
        await wait_until(lambda: offsets_at(offsets, stream, ids[-1]))

    assert sorted(recorder.entry_ids) == ids


async def offsets_at(offsets: RedisOffsetStore, stream: str, entry_id: str) -> bool:
    return await offsets.load("relay", stream) == entry_id


async def test_a_restarted_consumer_resumes_from_the_saved_offset(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("events")
    first = await add(client, stream, 2, "old")
    recorder = Recorder()
    async with running(consumer_for(client, stream, recorder)):
        await wait_until(lambda: len(recorder.calls) == 2)
        await wait_until(lambda: offsets_at(RedisOffsetStore(client), stream, first[-1]))

    later = await add(client, stream, 2, "new")
    again = Recorder()
    async with running(consumer_for(client, stream, again)):
        await wait_until(lambda: len(again.calls) == 2)
    assert again.entry_ids == later


async def test_a_new_consumer_may_start_from_now(client: redis.asyncio.Redis) -> None:
    stream = unique("events")
    await add(client, stream, 3, "before")
    recorder = Recorder()
    consumer = consumer_for(client, stream, recorder, initial_id="$")
    async with running(consumer):
        await wait_until(lambda: consumer.position is not None)
        later = await add(client, stream, 1, "after")
        await wait_until(lambda: len(recorder.calls) == 1)
    assert recorder.entry_ids == later


async def test_a_failing_entry_is_retried_in_process_until_it_succeeds(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("events")
    [entry_id] = await add(client, stream, 1)

    async def flaky(entry: StreamEntry) -> None:
        if entry.deliveries < 3:
            raise RetryLater("webhook target down")

    recorder = Recorder(flaky)
    async with running(consumer_for(client, stream, recorder, settings=fast(max_deliveries=5))):
        await wait_until(lambda: offsets_at(RedisOffsetStore(client), stream, entry_id))
    assert [c.entry.deliveries for c in recorder.calls] == [1, 2, 3]


async def test_an_entry_failing_max_deliveries_times_is_dead_lettered_and_passed(
    client: redis.asyncio.Redis,
) -> None:
    stream, dead_letters = unique("events"), unique("dead")
    poison, after = (await add(client, stream, 1, "poison"))[0], (await add(client, stream, 1))[0]

    async def fail_poison(entry: StreamEntry) -> None:
        if entry.fields["runtime_id"].startswith("poison"):
            raise ValueError("cannot parse")

    recorder = Recorder(fail_poison)
    settings = fast(max_deliveries=3, dead_letter_stream=dead_letters, backoff_base_s=0.01)
    async with running(consumer_for(client, stream, recorder, settings=settings)):
        await wait_until(lambda: offsets_at(RedisOffsetStore(client), stream, after))

    assert recorder.entry_ids.count(poison) == 3
    assert recorder.entry_ids.count(after) == 1
    [(_, letter)] = await client.xrange(dead_letters)
    assert letter[b"entry_id"].decode() == poison
    assert letter[b"stream"].decode() == stream
    assert json.loads(letter[b"fields"]) == {"runtime_id": "poison-0"}
    assert letter[b"error"] == b"ValueError: cannot parse"
    assert letter[b"deliveries"] == b"3"
    assert sample("runplane_stream_dead_lettered_total", stream=stream) == 1


async def test_stopping_during_retries_does_not_pass_the_entry(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("events")
    await add(client, stream, 1)

    async def fail(entry: StreamEntry) -> None:
        raise RetryLater("down")

    recorder = Recorder(fail)
    settings = fast(max_deliveries=100, backoff_base_s=5.0, backoff_cap_s=5.0)
    async with running(consumer_for(client, stream, recorder, settings=settings)):
        await wait_until(lambda: len(recorder.calls) == 1)
    assert await RedisOffsetStore(client).load("relay", stream) is None


async def test_the_consumer_rides_out_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer.start(tmp_path / "redis")
    client = connect_bytes(server.url)
    stream = unique("events")
    recorder = Recorder()
    try:
        async with running(consumer_for(client, stream, recorder)) as task:
            await add(client, stream, 1, "before")
            await wait_until(lambda: len(recorder.calls) == 1)
            await asyncio.to_thread(server.restart)
            [after] = await add(client, stream, 1, "after")
            await wait_until(
                lambda: offsets_at(RedisOffsetStore(client), stream, after), timeout_s=10
            )
            assert not task.done()
        assert [c.entry.fields["runtime_id"] for c in recorder.calls] == ["before-0", "after-0"]
    finally:
        await client.aclose()
        server.stop()


async def test_binary_garbage_is_handed_over_flagged(client: redis.asyncio.Redis) -> None:
    stream = unique("events")
    garbage = (await client.xadd(stream, {b"event": b"\xc3\x28"})).decode()
    good = (await add(client, stream, 1))[0]
    recorder = Recorder()
    async with running(consumer_for(client, stream, recorder)):
        await wait_until(lambda: offsets_at(RedisOffsetStore(client), stream, good))
    assert recorder.entry_ids == [garbage, good]
    assert recorder.calls[0].entry.undecodable
    assert recorder.calls[0].entry.fields == {"event": "\ufffd("}


async def test_one_runtime_in_order_many_runtimes_at_once(client: redis.asyncio.Redis) -> None:
    stream = unique("events")
    for i in range(3):
        for runtime in ("rt-a", "rt-b"):
            await client.xadd(stream, {"runtime_id": runtime, "seq": str(i)})

    async def slow(entry: StreamEntry) -> None:
        await asyncio.sleep(0.1)

    recorder = Recorder(slow)
    async with running(consumer_for(client, stream, recorder)):
        await wait_until(lambda: len(recorder.calls) == 6 and all(c.ended for c in recorder.calls))
    for runtime in ("rt-a", "rt-b"):
        calls = [c for c in recorder.calls if c.entry.fields["runtime_id"] == runtime]
        assert [c.entry.fields["seq"] for c in calls] == ["0", "1", "2"]
        for earlier, later in itertools.pairwise(calls):
            assert later.started >= earlier.ended
    assert recorder.calls[1].started < recorder.calls[0].ended
