"""The health events consumer: `runtime:health_events` read in offset mode
(XREAD + an OffsetStore position), each event applied by HealthEventApplier.

It runs on one instance at a time (LeaderOnly, lease
`lease:{runplane:health-events}`), under one shared offset name, so each event
is applied once and snapshot debouncing is not undone by a second reader; a new
leader goes on from the position the last one saved."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio

from runplane.domain.errors import StoreUnavailable
from runplane.domain.health.reactions import (
    MalformedHealthEvent,
    UnknownHealthEventType,
    decode_health_event,
)
from runplane.ports.streams import OffsetStore
from runplane.services.health.applier import HealthEventApplier
from runplane.services.health.writes import RuntimeBusy
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import RetryLater
from runplane.streams.offset import FROM_START, OffsetConsumer
from runplane.streams.settings import ConsumerSettings
from runplane.workers.leadership import Leadership
from runplane.workers.runner import Loop

logger = logging.getLogger(__name__)

HEALTH_EVENTS_LEASE = "runplane:health-events"
HEALTH_EVENTS_CONSUMER = "runplane:health-events"
"""The OffsetStore key of the consumer's position (shared by every instance)."""


class HealthEventHandler:
    """The stream handler: decode an entry and apply it. Unknown types and
    malformed entries are logged and passed over; an unreachable store or a
    runtime busy past the wait asks for the entry again (RetryLater)."""

    def __init__(self, applier: HealthEventApplier) -> None:
        self.applier = applier

    async def __call__(self, entry: StreamEntry) -> None:
        fields = {"stream": entry.stream, "entry_id": entry.entry_id}
        try:
            event = decode_health_event(entry.fields)
        except UnknownHealthEventType as exc:
            logger.warning("health event of an unknown type passed over", extra=fields | _err(exc))
            return
        except MalformedHealthEvent as exc:
            logger.warning("malformed health event passed over", extra=fields | _err(exc))
            return
        try:
            await self.applier.handle(event)
        except (StoreUnavailable, RuntimeBusy) as exc:
            raise RetryLater(str(exc)) from exc


def _err(exc: Exception) -> dict[str, str]:
    return {"error": str(exc)}


def health_events_consumer(
    client: redis.asyncio.Redis,
    offsets: OffsetStore,
    applier: HealthEventApplier,
    *,
    settings: ConsumerSettings,
    stream: str,
    consumer: str = HEALTH_EVENTS_CONSUMER,
) -> OffsetConsumer:
    """An offset consumer of the health events; from the stream's start when no
    position is saved yet (the first instance misses nothing)."""
    return OffsetConsumer(
        client,
        offsets,
        stream=stream,
        consumer=consumer,
        handler=HealthEventHandler(applier),
        settings=settings,
        initial_id=FROM_START,
    )


class LeaderOnly:
    """Runs the loop `make()` builds only while `leadership` holds its lease;
    losing the lease stops it (a stopped loop is not run again: the next
    leadership builds a new one)."""

    def __init__(
        self, leadership: Leadership, make: Callable[[], Loop], *, check_interval_s: float = 2.0
    ) -> None:
        self.leadership = leadership
        self.make = make
        self.check_interval_s = check_interval_s
        self._inner: Loop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def __repr__(self) -> str:
        return f"LeaderOnly({self.leadership.name!r})"

    @property
    def leading(self) -> bool:
        return self._task is not None

    def request_stop(self) -> None:
        self._stopping.set()
        if self._inner is not None:
            self._inner.request_stop()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                await self._step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.check_interval_s)
        finally:
            await self._stop_inner()
            await self.leadership.release()

    async def _step(self) -> None:
        try:
            leading = await self.leadership.hold()
        except Exception as exc:
            # Redis away: leadership unknown. Keep what runs (it waits for Redis too).
            logger.warning("leadership check failed", extra={"error": repr(exc)}, exc_info=exc)
            return
        if self._task is not None and self._task.done():
            logger.error("led loop ended on its own", extra={"lease": self.leadership.name})
            self._task = self._inner = None
        if leading and self._task is None:
            self._inner = self.make()
            self._task = asyncio.create_task(self._inner.run(), name=repr(self._inner))
        elif not leading and self._task is not None:
            await self._stop_inner()

    async def _stop_inner(self) -> None:
        inner, task = self._inner, self._task
        self._inner = self._task = None
        if inner is None or task is None:
            return
        inner.request_stop()
        await asyncio.gather(task, return_exceptions=True)
