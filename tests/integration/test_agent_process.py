"""A real `runplane agent` subprocess: it answers driver calls, and a kill -9 in
the middle of one leaves a call that is answered `interrupted` on restart and
never run twice (docs/hosts.md)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
import redis.asyncio

from runplane.adapters.drivers.process_files import parse_container_id
from runplane.adapters.redis.client import connect
from runplane.adapters.redis.host_calls import RedisHostCallSender
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.names import host_calls_stream
from runplane.domain.drivers import ContainerState
from runplane.domain.host_calls import CallInterrupted, CallOp
from runplane.services.driver_call import driver_call
from runplane.services.remote_driver import RemoteDriver
from tests.support.agents import AgentProcess
from tests.support.host_calls import until_claimed, until_drained, until_logged
from tests.support.redis import RedisServer

IGNORES_SIGTERM = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(120)",
]


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def agent(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[AgentProcess]:
    agent = AgentProcess(tmp_path / "agent", redis_server.url, f"h-{uuid.uuid4().hex[:8]}")
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()
        await agent.close_local()


def remote(client: redis.asyncio.Redis, agent: AgentProcess) -> RemoteDriver:
    # Generous: the subprocess imports runplane before it reads its first call.
    return RemoteDriver(
        "process",
        agent.host_id,
        RedisHostCallSender(client),
        agent.local_driver().validate_spec,
        call_timeout_s=60,
    )


async def test_a_runplane_agent_answers_and_a_kill_mid_call_never_runs_it_twice(
    client: redis.asyncio.Redis, agent: AgentProcess
) -> None:
    driver = remote(client, agent)
    runtime_id, token = f"rt-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    assert await RedisLeaseStore(client).try_acquire(runtime_id, token, 120_000)
    with driver_call(runtime_id, token, 1):
        started = await driver.start(runtime_id, {"command": IGNORES_SIGTERM})
    parsed = parse_container_id(started.container_id)
    assert parsed is not None
    runtime_process = psutil.Process(parsed[0])
    await until_logged(
        agent.local_driver(), started.container_id, "ready"
    )  # SIGTERM is ignored from now
    assert (await driver.inspect(started.container_id)).state is ContainerState.RUNNING

    # A stop with a long grace: the agent sends SIGTERM (ignored), then waits.
    with driver_call(runtime_id, token, 2):
        stopping = asyncio.create_task(
            driver.call(
                CallOp.STOP,
                container_id=started.container_id,
                timeout_s=60,
                wait_s=120,
                call_id="stop-1",
            )
        )
    await until_claimed(client, runtime_id, "stop-1")
    agent.kill()
    assert runtime_process.is_running()  # the runtime outlives its agent
    agent.start()

    with pytest.raises(CallInterrupted, match="inspect"):
        await stopping
    # The stop was not run again: its grace would have ended in a kill.
    assert runtime_process.is_running()
    assert runtime_process.status() != psutil.STATUS_ZOMBIE
    assert (await driver.inspect(started.container_id)).state is ContainerState.RUNNING
    await until_drained(client, host_calls_stream(agent.host_id))  # nothing left pending

    # The next operation inspects, then stops anew (a new call), once.
    with driver_call(runtime_id, token, 3):
        info = await driver.stop(started.container_id, timeout_s=0.5)
    assert info.state is ContainerState.EXITED
    listed = [i for i in await driver.list_containers() if i.runtime_id == runtime_id]
    assert [(i.container_id, i.state) for i in listed] == [
        (started.container_id, ContainerState.EXITED)
    ]
