"""Lifecycle events: the outbox they are committed to, the stream they are
published on, and reading them back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol

from runplane.domain.event_reading import EventFilter, EventPage, StoredEvent
from runplane.domain.lifecycle_events import OutboxEvent


class Outbox(Protocol):
    """Events committed with their state changes, waiting to be published."""

    async def pending(self, *, limit: int = 500) -> list[OutboxEvent]:
        """Unpublished events, oldest (lowest seq) first."""

    async def mark_sent(self, seqs: Sequence[int], at: datetime) -> None: ...

    async def oldest_pending_at(self) -> datetime | None: ...


class EventPublisher(Protocol):
    async def publish(self, events: Sequence[OutboxEvent]) -> None:
        """Durable events to the stream and the live channel, transient ones to the
        channel only, in order. Raises StoreUnavailable if Redis is down."""


class EventReader(Protocol):
    """The durable lifecycle event stream, read-only."""

    async def last_id(self) -> str:
        """The id of the newest entry (ZERO_ID when the stream is empty): the
        position a new subscriber without a resume id starts from."""

    async def page(self, *, after: str | None, limit: int, where: EventFilter) -> EventPage:
        """Up to `limit` matching events strictly after `after` (the start when
        None). A page looks at a bounded number of entries, so a selective
        filter may answer fewer than `limit` events with a `next_cursor`. A
        cursor older than what the stream retains goes on from its oldest entry."""

    async def latest(self, *, before: str | None, limit: int, where: EventFilter) -> EventPage:
        """page() read backwards: up to `limit` matching events strictly before
        `before` (the newest entry when None), newest first, looking at the same
        bounded number of entries; `next_cursor` continues towards the oldest."""

    async def replay(self, *, after: str, limit: int, where: EventFilter) -> EventPage:
        """page() for a follower resuming after `after`: the same pages, but it
        raises EventsTrimmed when entries after `after` were trimmed before they
        were read, where page() would go on from the oldest entry left. A read of
        what is there, never a wait for more."""

    def follow(self, *, after: str | None, where: EventFilter) -> AsyncIterator[StoredEvent]:
        """Every matching event strictly after `after` (after the newest entry
        when None), in stream order, then each new one as it is added: no gap, no
        duplicate. Ends when the reader is closed. Raises EventsTrimmed when
        entries after the position were trimmed before they were read, and
        StoreUnavailable when the stream cannot be read."""
        ...

    def close(self) -> None:
        """End every follower, after its current read. Safe to call from a
        signal handler."""
