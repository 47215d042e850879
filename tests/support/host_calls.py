"""Driver calls to a host's agent, for tests: a host whose agent runs in the
test (an AgentLoop task over a real process driver), a RemoteDriver to it, a
lease, and waits."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis.asyncio

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.redis.client import connect
from runplane.adapters.redis.host_calls import RedisHostCallInbox, RedisHostCallSender
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.names import AGENT_GROUP, fence_call_key
from runplane.services.driver_call import driver_call
from runplane.services.remote_driver import RemoteDriver
from runplane.workers.agent import AgentLoop

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
IGNORES_SIGTERM = [
    sys.executable,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(120)",
]
TTL_MS = 60_000


class Host:
    """One host: its agent (a task in this test) over a real process driver."""

    def __init__(self, redis_url: str, state_dir: Path) -> None:
        self.host_id = f"h-{uuid.uuid4().hex[:8]}"
        self.bytes_client = connect(redis_url, decode_responses=False)
        self.inbox = RedisHostCallInbox(self.bytes_client, self.host_id)
        self.driver = ProcessDriver(state_dir)
        self.agent: AgentLoop | None = None
        self.task: asyncio.Task[None] | None = None

    async def start_agent(self) -> None:
        self.agent = AgentLoop(self.inbox, {"process": self.driver})
        self.task = asyncio.create_task(self.agent.run())
        await asyncio.wait_for(self.agent.ready.wait(), 10)

    async def close(self) -> None:
        if self.agent is not None and self.task is not None:
            self.agent.request_stop()
            await self.task
        for info in await self.driver.list_containers():
            await self.driver.remove(info.container_id)
        self.driver.close()
        await self.bytes_client.aclose()


def remote(
    client: redis.asyncio.Redis, host: Host, *, timeout_s: float = 20.0, margin_s: float = 5.0
) -> RemoteDriver:
    return RemoteDriver(
        "process",
        host.host_id,
        RedisHostCallSender(client),
        host.driver.validate_spec,
        call_timeout_s=timeout_s,
        margin_s=margin_s,
    )


async def leased(client: redis.asyncio.Redis) -> tuple[str, str]:
    """A fresh runtime id and the token of the lease taken on it."""
    runtime_id, token = f"rt-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    assert await RedisLeaseStore(client).try_acquire(runtime_id, token, TTL_MS)
    return runtime_id, token


@contextmanager
def under(runtime_id: str, token: str, version: int) -> Iterator[None]:
    with driver_call(runtime_id, token, version):
        yield


async def until_drained(client: redis.asyncio.Redis, stream: str) -> None:
    """Every entry handled: acknowledged and deleted (the agent does both just
    after it answers), none pending. Bounded."""
    for _ in range(200):
        if await client.xlen(stream) == 0:
            assert (await client.xpending(stream, AGENT_GROUP))["pending"] == 0
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{stream}: entries never handled")


async def containers_of(host: Host, runtime_id: str) -> list[Any]:
    return [i for i in await host.driver.list_containers() if i.runtime_id == runtime_id]


async def until_logged(driver: ProcessDriver, container_id: str, text: str) -> None:
    """The runtime wrote `text` (e.g. it now ignores SIGTERM). Bounded."""
    log_path = driver.log_path(container_id)
    for _ in range(200):
        if log_path.exists() and text in log_path.read_text():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never logged by {container_id}")


async def until_claimed(client: redis.asyncio.Redis, runtime_id: str, call_id: str = "") -> None:
    """An agent is inside a call for the runtime: claimed, not yet answered
    (`call_id`, or any). Bounded."""
    pattern = fence_call_key(runtime_id, call_id or "*")
    for _ in range(400):
        for key in await client.keys(pattern):
            if await client.get(key) == "claimed":
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no call claimed for {runtime_id}")
