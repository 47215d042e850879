"""A runtime's output and resource samples, read from its driver on its host
(the local driver, or its host's agent through a `RemoteDriver`): one read, a
follow that ends when the runtime stops, and the recent metrics.

The caller has checked that the runtime is visible to it (team scope). A
runtime with no container (never started, or removed) has no output: reads
answer nothing, and a follow ends at once. Every read is bounded by the
driver (MAX_CHUNK_LINES, MAX_CHUNK_BYTES), so a follower holds one chunk at a
time however fast the runtime writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from runplane.domain.errors import ContainerGone, DriverError
from runplane.domain.records import RuntimeRecord
from runplane.domain.runtime_output import LogChunk, LogLine, LogQuery, MetricsWindow
from runplane.ports.drivers import Driver, DriverRouter


class OutputUnavailable(Exception):
    """The runtime's host cannot be reached (or its driver kind is unknown here)."""


@dataclass(frozen=True, slots=True)
class FollowEnd:
    """The last thing a follow yields: why it ended, and where to go on."""

    cursor: str
    reason: str
    """`stopped`: the runtime stopped and all it wrote was sent; `no_container`."""


KEEPALIVE_S = 15.0


class RuntimeOutput:
    def __init__(
        self,
        router: DriverRouter,
        *,
        poll_s: float = 0.5,
        keepalive_s: float = KEEPALIVE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._router = router
        self._poll_s = poll_s
        self._keepalive_s = keepalive_s
        self._clock = clock

    async def read(self, record: RuntimeRecord, query: LogQuery) -> LogChunk:
        if record.container_id is None:
            return LogChunk([], query.cursor or "0", False)
        driver = self._driver(record)
        try:
            return await driver.logs(record.container_id, query)
        except ContainerGone:
            return LogChunk([], query.cursor or "0", False)
        except DriverError as exc:
            raise OutputUnavailable(str(exc)) from exc

    async def follow(
        self, record: RuntimeRecord, query: LogQuery
    ) -> AsyncGenerator[list[LogLine] | FollowEnd, None]:
        """Chunks of lines (an empty one every `keepalive_s` while nothing comes,
        so a gone client is noticed), then one FollowEnd."""
        chunk = await self.read(record, query)
        quiet_since = self._clock()
        while True:
            if chunk.lines:
                yield chunk.lines
                quiet_since = self._clock()
            elif not chunk.running:
                reason = "stopped" if record.container_id else "no_container"
                yield FollowEnd(chunk.cursor, reason)
                return
            elif self._clock() - quiet_since >= self._keepalive_s:
                yield []
                quiet_since = self._clock()
            if not chunk.more:
                await asyncio.sleep(self._poll_s)  # caught up: look again later
            chunk = await self.read(record, LogQuery(cursor=chunk.cursor))

    async def metrics(self, record: RuntimeRecord, window_s: float) -> MetricsWindow:
        if record.container_id is None:
            return MetricsWindow([], running=False)
        driver = self._driver(record)
        try:
            return await driver.metrics(record.container_id, window_s)
        except ContainerGone:
            return MetricsWindow([], running=False)
        except DriverError as exc:
            raise OutputUnavailable(str(exc)) from exc

    def _driver(self, record: RuntimeRecord) -> Driver:
        driver = self._router.driver(record.host_id, record.driver)
        if driver is None:
            raise OutputUnavailable(
                f"runtime {record.runtime_id!r} is on host {record.host_id!r}, "
                "which this instance cannot reach"
            )
        return driver
