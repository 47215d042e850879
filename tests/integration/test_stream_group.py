"""Group mode against a real redis-server: batches, acks, pending re-reads,
claims, dead letters, poison entries, ordering, shutdown and lost groups."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio

from runplane.adapters.redis.client import connect_bytes, is_cluster
from runplane.streams import GroupConsumer, RetryLater, StreamEntry
from runplane.streams.settings import ConsumerSettings
from tests.support.redis import RedisServer
from tests.support.redis_target import RedisTarget
from tests.support.streams import Recorder, fast, running, sample, unique, wait_until


@pytest_asyncio.fixture(loop_scope="session")
async def client(redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis_target.connect(decode_responses=False)
    yield client
    await client.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, for flushing and restarting."""
    server = RedisServer.start(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


def consumer_for(
    client: redis.asyncio.Redis,
    stream: str,
    handler: Recorder,
    *,
    consumer: str = "c1",
    settings: ConsumerSettings | None = None,
) -> GroupConsumer:
    return GroupConsumer(
        client,
        stream=stream,
        group="workers",
        consumer=consumer,
        handler=handler,
        settings=settings or fast(),
    )


async def pending_count(client: redis.asyncio.Redis, stream: str, group: str = "workers") -> int:
    summary = await client.xpending(stream, group)
    return int(summary["pending"])


async def nothing_pending(client: redis.asyncio.Redis, stream: str) -> bool:
    return await pending_count(client, stream) == 0


async def test_a_batch_is_handled_and_acknowledged(client: redis.asyncio.Redis) -> None:
    stream = unique("jobs")
    ids = [(await client.xadd(stream, {"runtime_id": f"rt-{i}"})).decode() for i in range(5)]
    recorder = Recorder()
    consumed = sample("runplane_stream_consumed_total", stream=stream)

    async with running(consumer_for(client, stream, recorder)):
        await wait_until(lambda: len(recorder.calls) == 5)
        await wait_until(lambda: sample("runplane_stream_acknowledged_total", stream=stream) == 5)

    assert sorted(recorder.entry_ids) == ids
    assert all(call.entry.deliveries == 1 for call in recorder.calls)
    assert recorder.calls[0].entry.fields == {"runtime_id": "rt-0"}
    assert await pending_count(client, stream) == 0
    assert sample("runplane_stream_consumed_total", stream=stream) == consumed + 5


async def test_entries_added_while_running_are_handled(client: redis.asyncio.Redis) -> None:
    stream = unique("jobs")
    recorder = Recorder()
    async with running(consumer_for(client, stream, recorder)):
        await wait_until(lambda: client.exists(stream))  # the group creates the stream
        await client.xadd(stream, {"runtime_id": "rt-late"})
        await wait_until(lambda: len(recorder.calls) == 1)
    assert await pending_count(client, stream) == 0


async def test_own_pending_entries_are_handled_first_after_a_restart(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("jobs")
    await client.xgroup_create(stream, "workers", id="0", mkstream=True)
    old = [(await client.xadd(stream, {"runtime_id": f"rt-{i}"})).decode() for i in range(3)]
    # The previous life of consumer c1 read these, then crashed before XACK.
    await client.xreadgroup("workers", "c1", {stream: ">"}, count=10)
    new = (await client.xadd(stream, {"runtime_id": "rt-new"})).decode()
    recorder = Recorder()
    settings = fast(claim_idle_ms=60_000)  # only the PEL re-read can find them

    async with running(consumer_for(client, stream, recorder, settings=settings)):
        await wait_until(lambda: len(recorder.calls) == 4)

    assert recorder.entry_ids == [*old, new]
    assert [c.entry.deliveries for c in recorder.calls] == [2, 2, 2, 1]
    assert await pending_count(client, stream) == 0


async def test_another_consumer_claims_entries_left_idle(client: redis.asyncio.Redis) -> None:
    stream = unique("jobs")
    await client.xgroup_create(stream, "workers", id="0", mkstream=True)
    entry_id = (await client.xadd(stream, {"runtime_id": "rt-1"})).decode()
    await client.xreadgroup("workers", "crashed", {stream: ">"}, count=10)
    recorder = Recorder()

    async with running(consumer_for(client, stream, recorder, consumer="c2")):
        await wait_until(lambda: len(recorder.calls) == 1)
        await wait_until(lambda: nothing_pending(client, stream))

    assert recorder.entry_ids == [entry_id]
    assert recorder.calls[0].entry.deliveries == 2


async def test_an_entry_failing_max_deliveries_times_is_dead_lettered(
    client: redis.asyncio.Redis,
) -> None:
    stream, dead_letters = unique("jobs"), unique("dead")

    async def fail(entry: StreamEntry) -> None:
        raise RetryLater("database unreachable")

    recorder = Recorder(fail)
    entry_id = (await client.xadd(stream, {"runtime_id": "rt-1", "job_id": "j-1"})).decode()
    settings = fast(max_deliveries=3, dead_letter_stream=dead_letters)

    async with running(consumer_for(client, stream, recorder, settings=settings)):
        await wait_until(lambda: client.xlen(dead_letters))
        await wait_until(lambda: nothing_pending(client, stream))

    assert [c.entry.deliveries for c in recorder.calls] == [1, 2, 3]
    [(_, letter)] = await client.xrange(dead_letters)
    assert letter[b"stream"].decode() == stream
    assert letter[b"entry_id"].decode() == entry_id
    assert json.loads(letter[b"fields"]) == {"runtime_id": "rt-1", "job_id": "j-1"}
    assert letter[b"error"] == b"RetryLater: database unreachable"
    assert letter[b"deliveries"] == b"3"
    assert sample("runplane_stream_dead_lettered_total", stream=stream) == 1
    assert sample("runplane_stream_failed_total", stream=stream) == 3


async def test_a_handler_bug_ends_in_the_dead_letters(client: redis.asyncio.Redis) -> None:
    stream, dead_letters = unique("jobs"), unique("dead")

    async def crash(entry: StreamEntry) -> None:
        raise KeyError("spec")

    after = Recorder()
    await client.xadd(stream, {"runtime_id": "rt-1"})
    settings = fast(max_deliveries=1, dead_letter_stream=dead_letters)

    async with running(consumer_for(client, stream, Recorder(crash), settings=settings)):
        await wait_until(lambda: client.xlen(dead_letters))
    [(_, letter)] = await client.xrange(dead_letters)
    assert letter[b"error"] == b"KeyError: 'spec'"

    # The loop goes on: the next entry of the stream is handled.
    await client.xadd(stream, {"runtime_id": "rt-2"})
    async with running(consumer_for(client, stream, after, settings=settings)):
        await wait_until(lambda: len(after.calls) == 1)
    assert await pending_count(client, stream) == 0


async def test_an_entry_over_the_delivery_cap_is_dead_lettered_unrun(
    client: redis.asyncio.Redis,
) -> None:
    """An entry that kills its consumer every time is never acknowledged: its
    delivery count alone sends it to the dead letters."""
    stream, dead_letters = unique("jobs"), unique("dead")
    await client.xgroup_create(stream, "workers", id="0", mkstream=True)
    await client.xadd(stream, {"runtime_id": "rt-poison"})
    for start in (">", "0", "0"):
        await client.xreadgroup("workers", "c1", {stream: start})  # each a crashed life
    recorder = Recorder()
    settings = fast(max_deliveries=3, dead_letter_stream=dead_letters, claim_idle_ms=60_000)

    async with running(consumer_for(client, stream, recorder, settings=settings)):
        await wait_until(lambda: client.xlen(dead_letters))

    assert recorder.calls == []
    [(_, letter)] = await client.xrange(dead_letters)
    assert letter[b"deliveries"] == b"4"
    assert b"without being acknowledged" in letter[b"error"]
    assert await pending_count(client, stream) == 0


async def test_binary_garbage_neither_crashes_nor_pins_the_stream(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("jobs")
    garbage = (await client.xadd(stream, {b"\xff\xferuntime_id": b"\x80\x00junk"})).decode()
    good = (await client.xadd(stream, {"runtime_id": "rt-1"})).decode()
    recorder = Recorder()

    async with running(consumer_for(client, stream, recorder)):
        await wait_until(lambda: len(recorder.calls) == 2)

    by_id = {call.entry.entry_id: call.entry for call in recorder.calls}
    assert by_id[garbage].undecodable
    assert by_id[garbage].fields == {"\ufffd\ufffdruntime_id": "\ufffd\x00junk"}
    assert not by_id[good].undecodable
    assert await pending_count(client, stream) == 0


async def test_one_runtime_runs_in_order_while_runtimes_run_concurrently(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("jobs")
    for i in range(3):
        for runtime in ("rt-a", "rt-b", "rt-c"):
            await client.xadd(stream, {"runtime_id": runtime, "seq": str(i)})

    async def slow(entry: StreamEntry) -> None:
        await asyncio.sleep(0.1)

    recorder = Recorder(slow)
    async with running(consumer_for(client, stream, recorder)):
        await wait_until(lambda: len(recorder.calls) == 9 and all(c.ended for c in recorder.calls))

    for runtime in ("rt-a", "rt-b", "rt-c"):
        calls = [c for c in recorder.calls if c.entry.fields["runtime_id"] == runtime]
        assert [c.entry.fields["seq"] for c in calls] == ["0", "1", "2"]
        for earlier, later in itertools.pairwise(calls):
            assert later.started >= earlier.ended
    first_a, first_b = recorder.calls[0], recorder.calls[1]
    assert first_b.started < first_a.ended  # different runtimes overlapped
    span = max(c.ended for c in recorder.calls) - min(c.started for c in recorder.calls)
    assert span < 0.6  # three rounds of 0.1 s, not nine


async def test_a_failed_entry_holds_back_later_entries_of_its_runtime(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("jobs")
    first = (await client.xadd(stream, {"runtime_id": "rt-a", "op": "start"})).decode()
    await client.xadd(stream, {"runtime_id": "rt-a", "op": "stop"})
    other = (await client.xadd(stream, {"runtime_id": "rt-b", "op": "start"})).decode()
    failures = {first}

    async def flaky(entry: StreamEntry) -> None:
        if entry.entry_id in failures:
            failures.discard(entry.entry_id)
            raise RetryLater("driver busy")

    recorder = Recorder(flaky)
    async with running(consumer_for(client, stream, recorder)):
        await wait_until(lambda: len(recorder.calls) == 4)
        await wait_until(lambda: nothing_pending(client, stream))

    ops_of_a = [
        c.entry.fields["op"] for c in recorder.calls if c.entry.fields["runtime_id"] == "rt-a"
    ]
    assert ops_of_a == ["start", "start", "stop"]  # the stop never overtook the start
    assert other in recorder.entry_ids


async def test_stop_finishes_in_flight_entries_and_acknowledges_them(
    client: redis.asyncio.Redis,
) -> None:
    stream = unique("jobs")
    started = asyncio.Event()

    async def slow(entry: StreamEntry) -> None:
        started.set()
        await asyncio.sleep(0.3)

    recorder = Recorder(slow)
    await client.xadd(stream, {"runtime_id": "rt-1"})
    consumer = consumer_for(client, stream, recorder)
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(started.wait(), 5)

    await asyncio.wait_for(consumer.stop(), 5)

    assert task.done()
    assert task.exception() is None
    assert recorder.calls[0].ended - recorder.calls[0].started >= 0.3  # not cancelled
    assert await pending_count(client, stream) == 0
    await client.xadd(stream, {"runtime_id": "rt-2"})
    await asyncio.sleep(0.3)
    assert len(recorder.calls) == 1  # no reading after stop


async def test_sigterm_wired_to_request_stop_drains_and_exits(
    client: redis.asyncio.Redis,
) -> None:
    """How a process wires it: SIGTERM -> request_stop(); run() then returns
    after the entry in flight was handled and acknowledged."""
    stream = unique("jobs")
    started = asyncio.Event()

    async def slow(entry: StreamEntry) -> None:
        started.set()
        await asyncio.sleep(0.2)

    recorder = Recorder(slow)
    await client.xadd(stream, {"runtime_id": "rt-1"})
    consumer = consumer_for(client, stream, recorder)
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    loop.add_signal_handler(signal.SIGTERM, consumer.request_stop)
    try:
        task = asyncio.create_task(consumer.run())
        await asyncio.wait_for(started.wait(), 5)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 5)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)
    assert recorder.calls[0].ended - recorder.calls[0].started >= 0.2
    assert await pending_count(client, stream) == 0


@pytest.mark.parametrize("loss", ["delete the stream", "destroy the group"])
async def test_a_lost_group_is_recreated_under_a_running_consumer(
    client: redis.asyncio.Redis, loss: str
) -> None:
    stream = unique("jobs")
    recorder = Recorder()
    recreated = sample("runplane_stream_group_recreated_total", stream=stream)
    async with running(consumer_for(client, stream, recorder)):
        await client.xadd(stream, {"runtime_id": "rt-1"})
        await wait_until(lambda: len(recorder.calls) == 1)
        if loss == "delete the stream":
            await client.delete(stream)
        else:
            await client.xgroup_destroy(stream, "workers")
        await wait_until(
            lambda: sample("runplane_stream_group_recreated_total", stream=stream) > recreated
        )
        await client.xadd(stream, {"runtime_id": "rt-2"})
        await wait_until(lambda: len(recorder.calls) >= 2)
    assert recorder.calls[-1].entry.fields == {"runtime_id": "rt-2"}


async def test_flushall_under_a_running_consumer(own_redis: RedisServer) -> None:
    client = connect_bytes(own_redis.url)
    stream = unique("jobs")
    recorder = Recorder()
    recreated = sample("runplane_stream_group_recreated_total", stream=stream)
    try:
        async with running(consumer_for(client, stream, recorder)):
            await client.xadd(stream, {"runtime_id": "rt-1"})
            await wait_until(lambda: len(recorder.calls) == 1)
            await client.flushall()
            await wait_until(
                lambda: sample("runplane_stream_group_recreated_total", stream=stream) > recreated
            )
            await client.xadd(stream, {"runtime_id": "rt-2"})
            await wait_until(lambda: len(recorder.calls) == 2)
        assert await pending_count(client, stream) == 0
    finally:
        await client.aclose()


async def test_a_consumer_reads_and_acknowledges_on_one_connection_it_keeps_until_it_stops(
    own_redis: RedisServer,
) -> None:
    client = connect_bytes(own_redis.url)
    stream = unique("jobs")
    recorder = Recorder()
    consumer = consumer_for(client, stream, recorder)
    try:
        async with running(consumer):
            kept = []
            for index in range(3):
                await client.xadd(stream, {"runtime_id": f"rt-{index}"})
                await wait_until(lambda n=index + 1: len(recorder.calls) == n)  # type: ignore[misc]
                await wait_until(lambda: nothing_pending(client, stream))
                kept.append(consumer._client.connection)
            assert kept[0] is not None
            assert kept == [kept[0]] * 3  # the same one, batch after batch
            assert kept[0] not in client.connection_pool._available_connections  # not lent out
        assert consumer._client.connection is None  # given back on stop
        assert await client.ping()
    finally:
        await client.aclose()


async def test_the_consumer_rides_out_a_redis_restart(own_redis: RedisServer) -> None:
    client = connect_bytes(own_redis.url)
    stream = unique("jobs")
    recorder = Recorder()
    try:
        async with running(consumer_for(client, stream, recorder)) as task:
            await client.xadd(stream, {"runtime_id": "rt-1"})
            await wait_until(lambda: len(recorder.calls) == 1)

            await asyncio.to_thread(own_redis.restart)

            await client.xadd(stream, {"runtime_id": "rt-2"})
            await wait_until(lambda: len(recorder.calls) == 2, timeout_s=10)
            assert not task.done()
        assert await pending_count(client, stream) == 0
    finally:
        await client.aclose()


async def test_a_consumer_survives_redis_being_down_for_a_while(own_redis: RedisServer) -> None:
    client = connect_bytes(own_redis.url, retries=0)
    stream = unique("jobs")
    recorder = Recorder()
    try:
        async with running(consumer_for(client, stream, recorder)) as task:
            await wait_until(lambda: client.exists(stream))
            await asyncio.to_thread(own_redis.stop)
            await asyncio.sleep(0.5)  # several failed reads, backing off
            assert not task.done()
            await asyncio.to_thread(own_redis.restart)
            await client.xadd(stream, {"runtime_id": "rt-1"})
            await wait_until(lambda: len(recorder.calls) == 1, timeout_s=10)
    finally:
        await client.aclose()


async def test_gauges_describe_the_group(client: redis.asyncio.Redis) -> None:
    stream = unique("jobs")
    await client.xgroup_create(stream, "workers", id="0", mkstream=True)
    await client.xadd(stream, {"runtime_id": "rt-1"})
    await client.xreadgroup("workers", "crashed", {stream: ">"})
    await client.xadd(stream, {"runtime_id": "rt-2"})
    consumer = consumer_for(client, stream, Recorder(), settings=fast(claim_idle_ms=60_000))

    from runplane.streams.metrics import refresh_group_gauges

    await refresh_group_gauges(client, stream, "workers")
    labels = {"stream": stream, "group": "workers"}
    assert sample("runplane_stream_pending", **labels) == 1
    assert sample("runplane_stream_lag", **labels) == 1
    assert sample("runplane_stream_oldest_pending_idle_seconds", **labels) >= 0
    assert consumer.group == "workers"


def test_a_decoding_client_is_refused(redis_server: RedisServer) -> None:
    decoding = redis.asyncio.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        consumer_for(decoding, "jobs", Recorder())


def test_a_block_longer_than_the_socket_timeout_is_refused(redis_server: RedisServer) -> None:
    client = connect_bytes(redis_server.url, socket_timeout_s=1.0)
    with pytest.raises(ValueError, match="block_ms"):
        consumer_for(client, "jobs", Recorder(), settings=fast(block_ms=1_000))


async def test_entries_xadded_together_under_a_blocked_read_are_one_batch(
    client: redis.asyncio.Redis,
) -> None:
    """Redis answers a blocked XREADGROUP after the first XADD of a pipeline;
    the consumer must still take the rest in the same batch, so every entry's
    handler starts before any ends (here each waits for all to have started)."""
    stream = unique("jobs")
    count = 12
    all_started = asyncio.Event()
    recorder: Recorder

    async def wait_for_the_others(entry: StreamEntry) -> None:
        if len(recorder.calls) == count:
            all_started.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await all_started.wait()

    recorder = Recorder(wait_for_the_others)
    consumer = consumer_for(client, stream, recorder, settings=fast(block_ms=3_000))

    async def blocked() -> bool:
        if is_cluster(client):  # the node that holds the stream
            await client.initialize()  # type: ignore[attr-defined]
            node = client.get_node_from_key(stream)  # type: ignore[attr-defined]
            listed = await client.client_list(target_nodes=node)  # type: ignore[call-arg]
        else:
            listed = await client.client_list()
        return any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in listed)

    async with running(consumer):
        await wait_until(blocked)
        pipe = client.pipeline(transaction=False)
        for i in range(count):
            pipe.xadd(stream, {"runtime_id": f"rt-{i}"})
        await pipe.execute()
        await wait_until(
            lambda: len(recorder.calls) == count and all(c.ended for c in recorder.calls),
            timeout_s=30,
        )

    assert max(c.started for c in recorder.calls) < min(c.ended for c in recorder.calls)
