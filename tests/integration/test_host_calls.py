"""Driver calls sent over a real Redis to a host's agent, executed on real
processes: answered, replayed, fenced, expired, malformed (docs/hosts.md).
The agent runs in the test (an AgentLoop task); test_agent_process.py runs it
as a `runplane agent` subprocess."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.host_calls import RedisHostCallSender
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.names import host_calls_stream
from runplane.domain.drivers import ContainerState
from runplane.domain.host_calls import CallFenced, CallInterrupted, CallOp, HostUnreachable
from tests.support.host_calls import (
    IGNORES_SIGTERM,
    SLEEPER,
    TTL_MS,
    Host,
    containers_of,
    leased,
    remote,
    under,
    until_claimed,
    until_drained,
    until_logged,
)
from tests.support.redis import RedisServer


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def host(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[Host]:
    host = Host(redis_server.url, tmp_path / "state")
    await host.start_agent()
    yield host
    await host.close()


async def test_start_inspect_stop_answered_by_the_agent(
    client: redis.asyncio.Redis, host: Host
) -> None:
    driver = remote(client, host)
    runtime_id, token = await leased(client)
    with under(runtime_id, token, 1):
        started = await driver.start(runtime_id, {"command": SLEEPER})
    assert (await host.driver.inspect(started.container_id)).state is ContainerState.RUNNING
    assert (await driver.inspect(started.container_id)).state is ContainerState.RUNNING
    listed = await driver.list_containers()
    assert [i.container_id for i in listed if i.runtime_id == runtime_id] == [started.container_id]
    with under(runtime_id, token, 2):
        stopped = await driver.stop(started.container_id, timeout_s=2)
    assert stopped.state is ContainerState.EXITED
    assert (await host.driver.inspect(started.container_id)).state is ContainerState.EXITED


async def test_a_repeated_call_id_replays_its_answer_without_a_second_effect(
    client: redis.asyncio.Redis, host: Host
) -> None:
    driver = remote(client, host)
    runtime_id, token = await leased(client)
    spec = {"command": SLEEPER}
    with under(runtime_id, token, 1):
        first = await driver.call(CallOp.START, runtime_id=runtime_id, spec=spec, call_id="c-1")
        again = await driver.call(CallOp.START, runtime_id=runtime_id, spec=spec, call_id="c-1")
    assert again == first
    assert [i.container_id for i in await containers_of(host, runtime_id)] == [
        first["container_id"]
    ]


async def test_a_stale_lease_token_is_refused_and_does_nothing(
    client: redis.asyncio.Redis, host: Host
) -> None:
    driver = remote(client, host)
    runtime_id, _token = await leased(client)
    with under(runtime_id, "a-token-that-lost-the-lease", 1), pytest.raises(CallFenced):
        await driver.start(runtime_id, {"command": SLEEPER})
    assert await containers_of(host, runtime_id) == []


async def test_an_older_record_version_is_refused_and_does_nothing(
    client: redis.asyncio.Redis, host: Host
) -> None:
    driver = remote(client, host)
    runtime_id, token = await leased(client)
    with under(runtime_id, token, 5):
        started = await driver.start(runtime_id, {"command": SLEEPER})
    with under(runtime_id, token, 4), pytest.raises(CallFenced, match="older"):
        await driver.stop(started.container_id, timeout_s=1)
    assert (await host.driver.inspect(started.container_id)).state is ContainerState.RUNNING


async def test_a_change_without_the_lease_context_is_never_sent(
    client: redis.asyncio.Redis, host: Host
) -> None:
    driver = remote(client, host)
    with pytest.raises(Exception, match="lease context"):
        await driver.pause("some-container")
    assert await client.xlen(host_calls_stream(host.host_id)) == 0


async def test_no_agent_the_caller_gives_up_and_the_late_call_is_never_applied(
    client: redis.asyncio.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    host = Host(redis_server.url, tmp_path / "state")  # its agent is not running yet
    try:
        driver = remote(client, host, timeout_s=1, margin_s=0.5)
        runtime_id, token = await leased(client)
        with under(runtime_id, token, 1), pytest.raises(HostUnreachable, match="no answer"):
            await driver.start(runtime_id, {"command": SLEEPER})
        with pytest.raises(HostUnreachable):
            await driver.list_containers()
        await host.start_agent()  # reads the waiting calls: the start is past its deadline
        await until_drained(client, host_calls_stream(host.host_id))
        assert await containers_of(host, runtime_id) == []
    finally:
        await host.close()


async def test_malformed_entries_get_an_error_answer_and_the_agent_goes_on(
    client: redis.asyncio.Redis, host: Host
) -> None:
    stream = host_calls_stream(host.host_id)
    sender = RedisHostCallSender(client)
    raw_client = host.bytes_client
    await raw_client.xadd(stream, {b"call": b"\xff\xfe not json"})
    await raw_client.xadd(stream, {b"other": b"field"})
    await raw_client.xadd(stream, {b"call": b"[1, 2]"})
    await raw_client.xadd(stream, {b"call": b"x" * 300_000})
    await raw_client.xadd(stream, {b"call": b'{"call_id": "bad-1", "op": "explode"}'})
    await raw_client.xadd(
        stream, {b"call": b'{"call_id": "bad-2", "op": "stop", "driver": "process", "deadline": 1}'}
    )
    for call_id, why in (("bad-1", "unknown op"), ("bad-2", "needs runtime_id")):
        answer = await sender.wait_answer(host.host_id, call_id, 10)
        assert answer is not None
        assert '"malformed"' in answer
        assert why in answer
    # The agent still serves a good call, and left nothing pending behind it.
    listed = await remote(client, host).list_containers()
    assert listed == []
    await until_drained(client, stream)


async def test_a_call_claimed_by_an_agent_that_died_is_answered_interrupted(
    client: redis.asyncio.Redis, host: Host
) -> None:
    """As the agent finds it after a kill -9 (test_agent_process.py does the kill):
    the call_id is claimed but unanswered. It is never run again."""
    driver = remote(client, host)
    runtime_id, token = await leased(client)
    with under(runtime_id, token, 1):
        started = await driver.start(runtime_id, {"command": SLEEPER})
        await client.set(f"runplane:fence:{{{runtime_id}}}:call:stop-1", "claimed")
        with pytest.raises(CallInterrupted, match="inspect"):
            await driver.call(CallOp.STOP, container_id=started.container_id, call_id="stop-1")
        # Its answer is now the one kept: a repeat gets it too.
        with pytest.raises(CallInterrupted):
            await driver.call(CallOp.STOP, container_id=started.container_id, call_id="stop-1")
    assert (await host.driver.inspect(started.container_id)).state is ContainerState.RUNNING


async def test_a_new_lease_holders_call_waits_for_the_old_one_in_flight(
    client: redis.asyncio.Redis, host: Host
) -> None:
    """The window between the fence and the act: the old holder's stop, checked
    while its lease held, is under way when the lease passes on; the new
    holder's call for that runtime runs only once the stop has ended."""
    driver = remote(client, host)
    runtime_id, old_token = await leased(client)
    with under(runtime_id, old_token, 1):
        started = await driver.start(runtime_id, {"command": IGNORES_SIGTERM})
    await until_logged(host.driver, started.container_id, "ready")
    with under(runtime_id, old_token, 2):
        old_stop = asyncio.create_task(driver.stop(started.container_id, timeout_s=1))
    await until_claimed(client, runtime_id)
    await client.delete(f"lease:{{{runtime_id}}}")  # the old lease ends mid-call...
    new_token = "new-holder"
    assert await RedisLeaseStore(client).try_acquire(runtime_id, new_token, TTL_MS)
    with under(runtime_id, new_token, 3):
        await driver.remove(started.container_id)  # ...and the new holder's call waits
    assert old_stop.done()
    assert (await old_stop).state is ContainerState.EXITED
    with under(runtime_id, old_token, 2), pytest.raises(CallFenced, match="lease"):
        await driver.pause(started.container_id)  # the old holder, late: refused
