"""The durable lifecycle event stream in memory: an EventPublisher and an
EventReader over one list of entries, held to the Redis adapters by the
contract suite (tests/contract/test_event_stream.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

from runplane.domain.documents import InvalidDocument, loads
from runplane.domain.event_reading import (
    ZERO_ID,
    EventFilter,
    EventPage,
    EventsTrimmed,
    StoredEvent,
    parse_stream_id,
)
from runplane.domain.lifecycle_events import EVENT_FIELD, LifecycleEvent, OutboxEvent


class InMemoryEventReader:
    """An EventReader over a list of stream entries; entry ids are `<n>-0`.

    `add` appends an event's envelope, `add_entry` any fields (a malformed
    entry, as a foreign producer might write one: readers pass over it).
    `trim(id)` drops every entry up to `id`, as XTRIM MINID would. After
    `close()` a follower delivers what there is, then ends (so a whole SSE
    response can be read over ASGI)."""

    def __init__(self) -> None:
        self._stream: list[tuple[str, dict[str, str]]] = []
        self.trimmed_through = (0, 0)
        self._next = 1
        self._added = asyncio.Event()
        self.closed = False

    @property
    def entries(self) -> list[StoredEvent]:
        """The well-formed entries, oldest first."""
        return [event for event in map(_decoded, self._stream) if event is not None]

    def add(self, event: LifecycleEvent) -> str:
        return self.add_entry({EVENT_FIELD: event.to_json()})

    def add_entry(self, fields: Mapping[str, str]) -> str:
        """Append an entry of any fields (XADD); its id."""
        entry_id = f"{self._next}-0"
        self._next += 1
        self._stream.append((entry_id, dict(fields)))
        self._wake()
        return entry_id

    def trim(self, through: str) -> None:
        self.trimmed_through = parse_stream_id(through)
        self._stream = [
            entry for entry in self._stream if parse_stream_id(entry[0]) > self.trimmed_through
        ]

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        added, self._added = self._added, asyncio.Event()
        added.set()

    def _check_retained(self, position: str) -> None:
        at = parse_stream_id(position)
        if at != (0, 0) and at < self.trimmed_through:
            raise EventsTrimmed(position)

    def _after(self, position: str) -> list[StoredEvent]:
        at = parse_stream_id(position)
        return [e for e in self.entries if parse_stream_id(e.entry_id) > at]

    async def last_id(self) -> str:
        """The newest entry's id, malformed or not, as XREVRANGE sees it."""
        return self._stream[-1][0] if self._stream else ZERO_ID

    async def page(self, *, after: str | None, limit: int, where: EventFilter) -> EventPage:
        """Like the Redis reader, a page that fills up ends at its last event
        with a cursor, even when no matching event follows it."""
        found: list[StoredEvent] = []
        for event in self._after(after or ZERO_ID):
            if where.matches(event):
                found.append(event)
                if len(found) == limit:
                    return EventPage(found, event.entry_id)
        return EventPage(found, None)

    async def latest(self, *, before: str | None, limit: int, where: EventFilter) -> EventPage:
        """page() backwards, newest first, with the Redis reader's cursor rule."""
        found: list[StoredEvent] = []
        top = parse_stream_id(before) if before is not None else None
        for event in reversed(self.entries):
            if top is not None and parse_stream_id(event.entry_id) >= top:
                continue
            if where.matches(event):
                found.append(event)
                if len(found) == limit:
                    return EventPage(found, event.entry_id)
        return EventPage(found, None)

    async def replay(self, *, after: str, limit: int, where: EventFilter) -> EventPage:
        self._check_retained(after)
        return await self.page(after=after, limit=limit, where=where)

    async def follow(self, *, after: str | None, where: EventFilter) -> AsyncIterator[StoredEvent]:
        position = after if after is not None else await self.last_id()
        while True:
            added = self._added
            self._check_retained(position)
            for event in self._after(position):
                position = event.entry_id
                if where.matches(event):
                    yield event
            if self.closed:  # what was there is delivered, then the stream ends
                return
            await added.wait()


class InMemoryEventPublisher:
    """Durable events go to `stream` (field `event`, as the Redis publisher XADDs
    them) and onto `live`, the channel; transient ones onto `live` only."""

    def __init__(self, stream: InMemoryEventReader) -> None:
        self.stream = stream
        self.live: list[str] = []
        """Every payload published to the live channel, in order."""

    async def publish(self, events: Sequence[OutboxEvent]) -> None:
        for event in events:
            if event.durable:
                self.stream.add_entry({EVENT_FIELD: event.payload})
            self.live.append(event.payload)


def _decoded(entry: tuple[str, dict[str, str]]) -> StoredEvent | None:
    """The entry's envelope, or None when it holds none (the Redis reader's rule)."""
    entry_id, fields = entry
    raw = fields.get(EVENT_FIELD)
    try:
        envelope = loads(raw) if raw is not None else None
    except InvalidDocument:
        envelope = None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("type"), str):
        return None
    return StoredEvent(entry_id, envelope)
