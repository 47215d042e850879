"""The docker event watcher's session: a cancel of the session while it waits
for its stream reader to end is raised, not taken for the reader's and
swallowed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from runplane.adapters.drivers.docker_events import DockerEventWatcher
from runplane.domain.drivers import ContainerInfo
from runplane.domain.errors import DriverError
from runplane.testing.health import InMemoryHealthEvents
from tests.support.clock import FakeClock


class FinishingStream:
    """An event stream whose read, cancelled, finishes before it returns (until
    `finish` is set), as an HTTP client may; a second cancel ends it."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.finish = asyncio.Event()

    def __aiter__(self) -> FinishingStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        self.reading.set()
        try:
            await self.finish.wait()
        except asyncio.CancelledError:
            await self.finish.wait()
        raise StopAsyncIteration


class UnlistableDocker:
    """Connects to its event stream, then fails to list its containers."""

    url = "unix:///test/docker.sock"

    def __init__(self) -> None:
        self.stream = FinishingStream()

    @contextlib.asynccontextmanager
    async def event_stream(self, *, since_s: float | None) -> AsyncIterator[FinishingStream]:
        yield self.stream

    async def list_containers(self) -> list[ContainerInfo]:
        await self.stream.reading.wait()
        raise DriverError("the engine does not answer")


async def test_a_session_cancelled_while_it_ends_its_reader_ends_cancelled() -> None:
    docker = UnlistableDocker()
    watcher = DockerEventWatcher(docker, InMemoryHealthEvents(), FakeClock())  # type: ignore[arg-type]
    watching = asyncio.create_task(watcher.watch())
    await docker.stream.reading.wait()
    for _ in range(5):
        await asyncio.sleep(0)  # the re-list failed: the session waits for its reader
    watching.cancel()
    await asyncio.wait([watching], timeout=5)  # bounded against a hang only
    docker.stream.finish.set()
    assert watching.cancelled()
