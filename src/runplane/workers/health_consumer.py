"""The health events consumer: `runtime:health_events` read in offset mode
(XREAD + an OffsetStore position), each event applied by HealthEventApplier.

It runs on one instance at a time (`LeaderOnly` of workers/leadership.py, lease
`lease:{runplane:health-events}`), under one shared offset name, so each event
is applied once and snapshot debouncing is not undone by a second reader; a new
leader goes on from the position the last one saved.

Each read is applied as one batch (HealthEventApplier.apply_batch: repeats
folded, one read of the records); the entries a batch could not apply run one
by one through HealthEventHandler, per runtime in stream order, with the
retries and dead letters of the offset mode. The position then passes the
longest prefix of settled entries, as for any offset consumer."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis.asyncio

from runplane.domain.errors import StoreUnavailable
from runplane.domain.health.events import HealthEvent
from runplane.domain.health.reactions import (
    MalformedHealthEvent,
    UnknownHealthEventType,
    decode_health_event,
)
from runplane.ports.streams import OffsetStore
from runplane.services.health.applier import HealthEventApplier
from runplane.services.health.writes import RuntimeBusy
from runplane.streams import metrics
from runplane.streams.batch import Outcome, Status, run_batch
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import RetryLater
from runplane.streams.offset import FROM_START, OffsetConsumer
from runplane.streams.settings import ConsumerSettings

logger = logging.getLogger(__name__)


class HealthEventHandler:
    """The stream handler: decode an entry and apply it. Unknown types and
    malformed entries are logged and passed over; an unreachable store or a
    runtime busy past the wait asks for the entry again (RetryLater)."""

    def __init__(self, applier: HealthEventApplier) -> None:
        self.applier = applier

    async def __call__(self, entry: StreamEntry) -> None:
        event = decode(entry)
        if event is None:
            return
        try:
            await self.applier.handle(event)
        except (StoreUnavailable, RuntimeBusy) as exc:
            raise RetryLater(str(exc)) from exc


def decode(entry: StreamEntry) -> HealthEvent | None:
    """The entry's event; None (logged) for one to pass over."""
    fields = {"stream": entry.stream, "entry_id": entry.entry_id}
    if entry.undecodable:  # U+FFFD stands in for bytes that were not UTF-8
        logger.warning("health event that is not UTF-8 passed over", extra=fields)
        return None
    try:
        return decode_health_event(entry.fields)
    except UnknownHealthEventType as exc:
        logger.warning("health event of an unknown type passed over", extra=fields | _err(exc))
    except MalformedHealthEvent as exc:
        logger.warning("malformed health event passed over", extra=fields | _err(exc))
    return None


def _err(exc: Exception) -> dict[str, str]:
    return {"error": str(exc)}


class HealthEventsConsumer(OffsetConsumer):
    """The offset consumer, applying each read as one batch first."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        offsets: OffsetStore,
        applier: HealthEventApplier,
        *,
        settings: ConsumerSettings,
        stream: str,
        consumer: str,
    ) -> None:
        # From the stream's start when no position is saved yet: the first
        # instance misses nothing.
        super().__init__(
            client,
            offsets,
            stream=stream,
            consumer=consumer,
            handler=HealthEventHandler(applier),
            settings=settings,
            initial_id=FROM_START,
        )
        self.applier = applier

    async def _process(self, entries: Sequence[StreamEntry]) -> list[Outcome]:
        done: dict[str, Outcome] = {}
        decoded: list[tuple[StreamEntry, HealthEvent]] = []
        for entry in entries:
            event = decode(entry)
            if event is None:
                done[entry.entry_id] = Outcome(entry, Status.DONE)
            else:
                decoded.append((entry, event))
        try:
            applied = await self.applier.apply_batch([event for _, event in decoded])
        except Exception:
            # A bug in the batch path: the one-by-one path is the reference.
            logger.exception("health events batch failed", extra={"stream": self.stream})
            applied = [False] * len(decoded)
        rest = []
        for (entry, _), ok in zip(decoded, applied, strict=True):
            if ok:
                done[entry.entry_id] = Outcome(entry, Status.DONE)
            else:
                rest.append(entry)
        metrics.CONSUMED.labels(self.stream).inc(len(entries) - len(rest))
        if rest:
            ran = await run_batch(
                rest,
                self._attempt,
                key_of=self._key_of,
                max_concurrency=self.settings.max_concurrency,
            )
            done.update((o.entry.entry_id, o) for o in ran)
        return [done[entry.entry_id] for entry in entries]


def health_events_consumer(
    client: redis.asyncio.Redis,
    offsets: OffsetStore,
    applier: HealthEventApplier,
    *,
    settings: ConsumerSettings,
    stream: str,
    consumer: str,
) -> OffsetConsumer:
    """The consumer of the health events (see HealthEventsConsumer)."""
    return HealthEventsConsumer(
        client, offsets, applier, settings=settings, stream=stream, consumer=consumer
    )
