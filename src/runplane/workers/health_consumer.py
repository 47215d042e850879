"""The health events consumer: `runtime:health_events` read in offset mode
(XREAD + an OffsetStore position), each event applied by HealthEventApplier.

It runs on one instance at a time (`LeaderOnly` of workers/leadership.py, lease
`lease:{runplane:health-events}`), under one shared offset name, so each event
is applied once and snapshot debouncing is not undone by a second reader; a new
leader goes on from the position the last one saved."""

from __future__ import annotations

import logging

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

logger = logging.getLogger(__name__)

"""The OffsetStore key of the consumer's position (shared by every instance)."""


class HealthEventHandler:
    """The stream handler: decode an entry and apply it. Unknown types and
    malformed entries are logged and passed over; an unreachable store or a
    runtime busy past the wait asks for the entry again (RetryLater)."""

    def __init__(self, applier: HealthEventApplier) -> None:
        self.applier = applier

    async def __call__(self, entry: StreamEntry) -> None:
        fields = {"stream": entry.stream, "entry_id": entry.entry_id}
        if entry.undecodable:  # U+FFFD stands in for bytes that were not UTF-8
            logger.warning("health event that is not UTF-8 passed over", extra=fields)
            return
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
    consumer: str,
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
