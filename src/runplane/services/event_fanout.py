"""The lifecycle event stream as the API serves it: one live reader per instance,
fanned out in process to every follower (SSE client), each with a bounded buffer
(services/event_subscription.py).

A follower first replays the durable stream from its position (its
Last-Event-ID, or the newest entry) with paged reads of its own, then takes the
live events the one reader hands it; pages pass straight through. So a thousand
SSE clients hold one blocking read, not a thousand pooled connections.

The live reader checks each event once per distinct filter (a thousand admin
followers: one check; team keys: one per team) and keeps what matched, by
filter, until the filter's wake; then each of its followers takes them in one
call and writes them at once. The wakes coalesce (services/event_wakes.py): at
once on a quiet stream, at most one per `coalesce_s` under load.

When the live reader fails (Redis restarts) it
follows again from the last entry it handed out, with backoff, and the followers
stay connected; if the stream was trimmed past it, it starts again from the
newest entry and cuts every follower (FollowerLagging), which resumes from the
last entry it was handed. Closing the fan-out ends every follower at once."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncGenerator, AsyncIterator

from runplane.domain.backoff import Backoff
from runplane.domain.event_reading import (
    EventFilter,
    EventPage,
    EventsTrimmed,
    StoredEvent,
    normalize_stream_id,
    parse_stream_id,
)
from runplane.ports.lifecycle_events import EventReader
from runplane.services.event_subscription import FollowerLagging, Subscription
from runplane.services.event_wakes import COALESCE_S, FLUSH_S, CoalescedWakes

__all__ = ["BUFFER_EVENTS", "EventFanout", "FollowerLagging"]

logger = logging.getLogger(__name__)

BUFFER_EVENTS = 2_000
"""Live events one follower may have waiting (10 s of 200 events/s) before it is cut."""
REPLAY_PAGE = 500
"""Events one replay read returns at most."""
RETRY_BASE_S = 0.2
RETRY_CAP_S = 5.0
STOP_WAIT_S = 5.0
"""How long aclose() waits for the live reader's last read to end."""
EVERYTHING = EventFilter()


class EventFanout:
    """Satisfies EventReader; `follow_batches` hands out what has arrived at once."""

    def __init__(
        self,
        reader: EventReader,
        *,
        buffer_events: int = BUFFER_EVENTS,
        replay_page: int = REPLAY_PAGE,
        retry_base_s: float = RETRY_BASE_S,
        retry_cap_s: float = RETRY_CAP_S,
        flush_s: float = FLUSH_S,
        coalesce_s: float = COALESCE_S,
    ) -> None:
        if buffer_events < 1 or replay_page < 1:
            raise ValueError("buffer_events and replay_page must be positive")
        self._reader = reader
        self._buffer_events = buffer_events
        self._replay_page = replay_page
        self._backoff = Backoff(base_s=retry_base_s, cap_s=retry_cap_s)
        self._subscribers: set[Subscription] = set()
        self._by_filter: dict[EventFilter, set[Subscription]] = {}
        # Held by filter until the wake; at most half a follower's buffer, so one
        # that has not written the last batch yet still takes the next.
        self._wakes = CoalescedWakes(
            self._deliver,
            bound=max(1, buffer_events // 2),
            flush_s=flush_s,
            coalesce_s=coalesce_s,
        )
        self._live: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._closed = False
        self._ended = False

    @property
    def followers(self) -> int:
        return len(self._subscribers)

    @property
    def lagging(self) -> int:
        """Followers cut for falling behind whose streams have not ended yet."""
        return sum(subscription.cut for subscription in self._subscribers)

    async def last_id(self) -> str:
        return await self._reader.last_id()

    async def page(self, *, after: str | None, limit: int, where: EventFilter) -> EventPage:
        return await self._reader.page(after=after, limit=limit, where=where)

    async def latest(self, *, before: str | None, limit: int, where: EventFilter) -> EventPage:
        return await self._reader.latest(before=before, limit=limit, where=where)

    async def replay(self, *, after: str, limit: int, where: EventFilter) -> EventPage:
        return await self._reader.replay(after=after, limit=limit, where=where)

    async def follow(self, *, after: str | None, where: EventFilter) -> AsyncIterator[StoredEvent]:
        async for batch in self.follow_batches(after=after, where=where):
            for event in batch:
                yield event

    async def follow_batches(
        self, *, after: str | None, where: EventFilter
    ) -> AsyncGenerator[list[StoredEvent], None]:
        """follow(), in batches: each one what had arrived when it was taken.
        Raises FollowerLagging when this follower fell too far behind."""
        if self._closed:
            return
        position = await self.last_id() if after is None else normalize_stream_id(after)
        subscription = Subscription(where, self._buffer_events, position)
        await self._join(subscription)
        try:
            async for batch in self._replay(subscription):
                yield batch
            async for batch in subscription.live():
                yield batch
        finally:
            self._leave(subscription)

    def close(self) -> None:
        """End every follower at once, after what it holds, and close the reader:
        the live read ends after its current read. Safe to call from a signal
        handler (server shutdown: open SSE streams would keep the server waiting)."""
        self._closed = True
        self._end_all()
        self._reader.close()

    async def aclose(self) -> None:
        """close(), then wait for the live read to end: call it before closing the
        reader's client. A blocking read is cancelled only as a last resort (it
        would spoil its pooled connection)."""
        self.close()
        live = self._live
        if live is None or live.done():
            return
        await asyncio.wait([live], timeout=STOP_WAIT_S)
        if not live.done():
            live.cancel()
            await asyncio.wait([live], timeout=STOP_WAIT_S)

    async def _join(self, subscription: Subscription) -> None:
        """Joined before its replay reads, with the live reader's start known:
        whatever it misses in its buffer, its replay reads."""
        self._subscribers.add(subscription)
        self._by_filter.setdefault(subscription.where, set()).add(subscription)
        if self._ended:
            subscription.end()  # the stream was closed: the replay, then the end
            return
        if self._live is None:
            try:
                async with self._starting:
                    if self._live is None and not self._ended:
                        start = await self._reader.last_id()
                        # A context of its own: it outlives the request that started it,
                        # so its log lines must not carry that request's correlation id.
                        self._live = asyncio.create_task(
                            self._run(start), name="events-fanout", context=contextvars.Context()
                        )
            except BaseException:
                self._leave(subscription)
                raise

    def _leave(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        same = self._by_filter.get(subscription.where)
        if same is not None:
            same.discard(subscription)
            if not same:
                del self._by_filter[subscription.where]
                self._wakes.forget(subscription.where)

    async def _replay(self, subscription: Subscription) -> AsyncIterator[list[StoredEvent]]:
        cursor = subscription.delivered
        while not self._closed:
            page = await self._reader.replay(
                after=cursor, limit=self._replay_page, where=subscription.where
            )
            if page.events:
                subscription.delivered = page.events[-1].entry_id
                yield page.events
            if page.next_cursor is not None:
                cursor = page.next_cursor
            elif subscription.replayed():
                return
            else:  # its buffer overflowed meanwhile: read again what it dropped
                cursor = max(cursor, subscription.delivered, key=parse_stream_id)

    async def _run(self, position: str | None) -> None:
        """The one live reader: every event of the stream to every follower."""
        try:
            while not self._closed:
                try:
                    if position is None:
                        position = await self._reader.last_id()
                        self._cut_all()  # none of them can get what was skipped
                    async for event in self._reader.follow(after=position, where=EVERYTHING):
                        position = event.entry_id
                        self._backoff.reset()
                        self._hand_out(event)
                    return  # the stream was closed
                except EventsTrimmed:
                    logger.warning(
                        "live events trimmed past the fan-out; followers cut",
                        extra={"entry_id": position, "followers": len(self._subscribers)},
                    )
                    position = None
                except Exception:
                    logger.warning(
                        "live event reader failed; following again",
                        extra={"entry_id": position, "followers": len(self._subscribers)},
                        exc_info=True,
                    )
                    await asyncio.sleep(self._backoff.next_delay_s())
        finally:
            self._ended = True
            self._end_all()

    def _hand_out(self, event: StoredEvent) -> None:
        """Each filter checked once; the events wait, by filter, for its wake."""
        add = self._wakes.add
        for where in self._by_filter:
            if where.matches(event):
                add(where, event)

    def _deliver(self, where: EventFilter, events: list[StoredEvent]) -> None:
        """A follower that joined since an event was read may get it too: its
        hand-over from replay to live skips what it already has."""
        for subscription in self._by_filter.get(where, ()):
            subscription.take(events)

    def _end_all(self) -> None:
        """What was read goes out first, then every follower ends."""
        self._wakes.flush()
        for subscription in self._subscribers:
            subscription.end()

    def _cut_all(self) -> None:
        for subscription in self._subscribers:
            subscription.lag()
