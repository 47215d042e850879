"""Lifecycle events for tests: envelopes built by the domain (so CloudEvents
parses them) and an in-memory EventReader that holds a stream as a list."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from runplane.domain.event_reading import (
    ZERO_ID,
    EventFilter,
    EventPage,
    EventsTrimmed,
    StoredEvent,
    parse_stream_id,
)
from runplane.domain.lifecycle_events import Actor, LifecycleEvent

MOMENT = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def lifecycle_event(
    n: int,
    *,
    type: str = "runtime.start",
    runtime_id: str = "rt-1",
    team_id: str = "team-a",
    status_from: str = "starting",
    status_to: str = "running",
) -> LifecycleEvent:
    return LifecycleEvent(
        id=f"evt-{n}",
        type=type,
        runtime_id=runtime_id,
        time=MOMENT,
        sequence=n,
        outcome="success",
        team_id=team_id,
        actor=Actor("system", "runplane", "runplane"),
        source="/runplane/test",
        status_from=status_from,
        status_to=status_to,
        metadata={"n": str(n)},
    )


def envelope(n: int, **changes: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(lifecycle_event(n, **changes).to_json())
    return parsed


class InMemoryEventReader:
    """An EventReader over a list; entry ids are `<n>-0`. `trim(id)` drops every
    entry up to `id`, as XTRIM would; after `close()` a follower delivers what
    there is, then ends (so a whole SSE response can be read over ASGI)."""

    def __init__(self) -> None:
        self.entries: list[StoredEvent] = []
        self.trimmed_through = (0, 0)
        self._next = 1
        self._added = asyncio.Event()
        self.closed = False

    def add(self, event: LifecycleEvent) -> str:
        entry_id = f"{self._next}-0"
        self._next += 1
        self.entries.append(StoredEvent(entry_id, json.loads(event.to_json())))
        self._wake()
        return entry_id

    def trim(self, through: str) -> None:
        self.trimmed_through = parse_stream_id(through)
        self.entries = [
            e for e in self.entries if parse_stream_id(e.entry_id) > self.trimmed_through
        ]

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        added, self._added = self._added, asyncio.Event()
        added.set()

    def _after(self, position: str) -> list[StoredEvent]:
        at = parse_stream_id(position)
        return [e for e in self.entries if parse_stream_id(e.entry_id) > at]

    async def last_id(self) -> str:
        return self.entries[-1].entry_id if self.entries else ZERO_ID

    async def page(self, *, after: str | None, limit: int, where: EventFilter) -> EventPage:
        found = [e for e in self._after(after or ZERO_ID) if where.matches(e)]
        if len(found) > limit:
            return EventPage(found[:limit], found[limit - 1].entry_id)
        return EventPage(found, None)

    async def follow(self, *, after: str | None, where: EventFilter) -> AsyncIterator[StoredEvent]:
        position = after if after is not None else await self.last_id()
        while True:
            added = self._added
            at = parse_stream_id(position)
            if at != (0, 0) and at < self.trimmed_through:
                raise EventsTrimmed(position)
            for event in self._after(position):
                position = event.entry_id
                if where.matches(event):
                    yield event
            if self.closed:  # what was there is delivered, then the stream ends
                return
            await added.wait()
