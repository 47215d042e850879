"""The agent over a Redis that restarts or loses its data (docs/hosts.md):
it reconnects and serves on; a lease lost with the data fences its calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.domain.drivers import ContainerState
from runplane.domain.host_calls import CallFenced
from tests.support.host_calls import SLEEPER, Host, leased, remote, under
from tests.support.redis import RedisServer


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own: restarting the session one would disturb others."""
    server = RedisServer.start(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def client(own_redis: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(own_redis.url)
    yield client
    await client.aclose()


@pytest.fixture
async def host(own_redis: RedisServer, tmp_path: Path) -> AsyncIterator[Host]:
    host = Host(own_redis.url, tmp_path / "state")
    await host.start_agent()
    yield host
    await host.close()


async def test_a_redis_restart_and_the_agent_serves_on(
    own_redis: RedisServer, client: redis.asyncio.Redis, host: Host
) -> None:
    driver = remote(client, host)
    runtime_id, token = await leased(client)
    with under(runtime_id, token, 1):
        started = await driver.start(runtime_id, {"command": SLEEPER})
    own_redis.restart()  # the data comes back (AOF): the lease, the group
    with under(runtime_id, token, 2):
        stopped = await driver.stop(started.container_id, timeout_s=2)
    assert stopped.state is ContainerState.EXITED


async def test_a_redis_that_lost_its_data_fences_the_old_lease_and_serves_new_calls(
    client: redis.asyncio.Redis, host: Host
) -> None:
    driver = remote(client, host)
    runtime_id, token = await leased(client)
    with under(runtime_id, token, 1):
        started = await driver.start(runtime_id, {"command": SLEEPER})
    await client.flushall()  # the lease, the fence, the call stream and its group: gone
    with under(runtime_id, token, 2), pytest.raises(CallFenced, match="lease"):
        await driver.stop(started.container_id, timeout_s=2)
    assert (await host.driver.inspect(started.container_id)).state is ContainerState.RUNNING
    fresh_id, fresh_token = await leased(client)
    with under(fresh_id, fresh_token, 1):
        other = await driver.start(fresh_id, {"command": SLEEPER})
    assert (await host.driver.inspect(other.container_id)).state is ContainerState.RUNNING
