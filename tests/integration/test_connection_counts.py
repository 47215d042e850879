"""The idle rule's connection count, on a real process runtime: counted here
(LocalConnections reading /proc) and through a host's agent (the
`connections` host call over a real Redis)."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from runplane.adapters.drivers.connections import LocalConnections
from runplane.adapters.redis.client import connect
from runplane.domain.errors import DriverError
from runplane.workers.agent import AgentLoop
from tests.support.host_calls import Host, leased, remote, under
from tests.support.redis import RedisServer
from tests.support.serve import free_port


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def host(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[Host]:
    host = Host(redis_server.url, tmp_path / "state")
    host.agent = AgentLoop(
        host.inbox, {"process": host.driver}, connections=LocalConnections({"process": host.driver})
    )
    host.task = asyncio.create_task(host.agent.run())
    await asyncio.wait_for(host.agent.ready.wait(), 10)
    yield host
    await host.close()


def connected(port: int, within_s: float = 30) -> socket.socket:
    deadline = time.monotonic() + within_s
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def test_connections_to_a_runtimes_port_are_counted_here_and_by_its_agent(
    client: redis.asyncio.Redis, host: Host
) -> None:
    port = free_port()
    driver = remote(client, host)
    runtime_id, token = await leased(client)
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with under(runtime_id, token, 1):
        started = await driver.start(runtime_id, {"command": server, "port": port})
    cid = started.container_id
    local = LocalConnections({"process": host.driver})
    probe = await asyncio.to_thread(connected, port)  # waits until it listens
    probe.close()
    # The closed probe may linger in TIME_WAIT: not ESTABLISHED, so not counted.
    await _until(lambda: local.count("process", [(cid, (port,))]), [0])

    with await asyncio.to_thread(connected, port), await asyncio.to_thread(connected, port):
        assert await local.count("process", [(cid, (port,))]) == [2]
        assert await driver.open_connections([(cid, (port,)), (cid, (port + 1,))]) == [2, 0]
        assert await driver.open_connections([("p-1-1", (port,))]) == [None]


async def test_an_agent_that_does_not_count_says_so(
    client: redis.asyncio.Redis, tmp_path: Path, redis_server: RedisServer
) -> None:
    host = Host(redis_server.url, tmp_path / "state")
    await host.start_agent()  # no counter given
    try:
        with pytest.raises(DriverError, match="does not count connections"):
            await remote(client, host).open_connections([("p-1-1", (80,))])
    finally:
        await host.close()


async def _until(read, wanted, within_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within_s
    while (seen := await read()) != wanted:
        assert time.monotonic() < deadline, f"still {seen}, not {wanted}"
        await asyncio.sleep(0.1)
