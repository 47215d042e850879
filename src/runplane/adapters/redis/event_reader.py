"""Reading the durable lifecycle event stream (`runplane:events`) back: pages for
`GET /v1/events` and followers for the SSE stream.

A follower reads the stream itself (XRANGE from its own position), for the replay
after a `Last-Event-ID` and for live events alike, so a resumed client gets no gap
and no duplicate, and a slow one only falls behind in the stream, where nothing is
dropped. One blocking XREAD per reader (a `_Tail`) wakes every follower when
entries arrive, so a hundred SSE clients do not hold a hundred pooled connections.
If the stream is trimmed past a follower's position, it raises EventsTrimmed."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis.asyncio
import redis.exceptions

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.names import EVENTS_STREAM
from runplane.domain.event_reading import (
    ZERO_ID,
    EventFilter,
    EventPage,
    EventsTrimmed,
    StoredEvent,
    normalize_stream_id,
    parse_stream_id,
)
from runplane.domain.lifecycle_events import EVENT_FIELD

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
"""Entries one XRANGE reads."""
SCAN_MAX = 10_000
"""Entries one page looks at, at most, to fill up past filtered-out events."""
BLOCK_MS = 2_000
"""The tail's XREAD BLOCK: below the client's socket timeout, and the longest a
closed reader's tail may take to end (new entries end a blocking read at once)."""
POLL_S = 5.0
"""A follower re-reads at least this often even without a wake-up."""
RETRY_S = 1.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _is_zero(position: str) -> bool:
    return parse_stream_id(position) == (0, 0)


Entry = tuple[str, dict[Any, Any]]


def _entries(reply: Any) -> list[Entry]:
    """XRANGE's (entry id, fields) pairs with `str` ids (fields stay as read)."""
    return [(_text(raw_id), fields or {}) for raw_id, fields in reply or ()]


class RedisEventReader:
    """Satisfies EventReader. Give it a `bytes` client (decode_responses=False),
    as stream consumers use: a non-UTF-8 entry is then skipped like any malformed
    one, where a `str` client would fail every read that reaches it."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        stream: str = EVENTS_STREAM,
        batch_size: int = BATCH_SIZE,
        scan_max: int = SCAN_MAX,
        block_ms: int = BLOCK_MS,
        poll_s: float = POLL_S,
    ) -> None:
        if batch_size < 1 or scan_max < 1 or block_ms < 1 or poll_s <= 0:
            raise ValueError("batch_size, scan_max, block_ms and poll_s must be positive")
        self._client = client
        self._stream = stream
        self._batch_size = batch_size
        self._scan_max = scan_max
        self._poll_s = poll_s
        self._tail = _Tail(client, stream, block_ms)
        self._closed = False

    @property
    def stream(self) -> str:
        return self._stream

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every follower at its next step (server shutdown: open SSE streams
        would otherwise keep the server waiting for their connections). Safe to
        call from a signal handler."""
        self._closed = True
        self._tail.stop()

    async def aclose(self) -> None:
        """close(), then end the tail's blocking read: call it before closing the
        Redis client, so the tail does not reconnect a client being closed."""
        self.close()
        await self._tail.finish()

    async def last_id(self) -> str:
        with unavailable_on_connection_errors("events.last_id"):
            return await _newest_id(self._client, self._stream)

    async def page(self, *, after: str | None, limit: int, where: EventFilter) -> EventPage:
        found: list[StoredEvent] = []
        start = "-" if after is None else f"({normalize_stream_id(after)}"
        scanned = 0
        last = after
        while scanned < self._scan_max:
            count = min(self._batch_size, self._scan_max - scanned)
            with unavailable_on_connection_errors("events.page"):
                entries = _entries(
                    await self._client.xrange(self._stream, min=start, max="+", count=count)
                )
            for last, fields in entries:
                scanned += 1
                event = self._decode(last, fields)
                if event is not None and where.matches(event):
                    found.append(event)
                    if len(found) == limit:
                        return EventPage(found, last)
            if len(entries) < count:
                return EventPage(found, None)
            start = f"({last}"
        return EventPage(found, last)

    async def follow(self, *, after: str | None, where: EventFilter) -> AsyncIterator[StoredEvent]:
        position = await self.last_id() if after is None else normalize_stream_id(after)
        if self._closed:
            return
        with self._tail.watching():
            while not self._closed:
                wake = self._tail.wake  # taken before reading: no wake-up is missed
                entries = await self._read_from(position)
                for entry_id, fields in entries:
                    position = entry_id
                    event = self._decode(entry_id, fields)
                    if event is not None and where.matches(event):
                        yield event
                if len(entries) < self._batch_size and not self._closed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self._poll_s)

    async def _read_from(self, position: str) -> list[Entry]:
        """Entries after `position`. Reads from `position` inclusive: finding the
        entry itself proves nothing after it was trimmed; missing it, XINFO tells."""
        with unavailable_on_connection_errors("events.follow"):
            found = _entries(
                await self._client.xrange(
                    self._stream, min=position, max="+", count=self._batch_size + 1
                )
            )
        if found and found[0][0] == position:
            return found[1:]
        if not _is_zero(position) and await self._trimmed_after(position):
            raise EventsTrimmed(position)
        return found[: self._batch_size]

    async def _trimmed_after(self, position: str) -> bool:
        """Whether entries after `position` (itself not in the stream) may have been
        removed. Trimming removes from the head, so a position before the first
        entry left may have lost what followed it, unless (Redis 7) nothing was
        ever removed; XDEL shows in max-deleted-entry-id."""
        try:
            with unavailable_on_connection_errors("events.follow"):
                info: dict[str, Any] = await self._client.xinfo_stream(self._stream)
        except redis.exceptions.ResponseError:
            return False  # no stream at all: nothing after the position to miss
        after = parse_stream_id(position)
        deleted = info.get("max-deleted-entry-id")
        if deleted is not None and parse_stream_id(_text(deleted)) > after:
            return True
        if info.get("entries-added") == info.get("length"):
            return False  # Redis 7: every entry ever added is still there
        first = info.get("first-entry")  # or, when every entry is gone, the last one made
        oldest_kept = _text(first[0]) if first else _text(info["last-generated-id"])
        return parse_stream_id(oldest_kept) > after

    def _decode(self, entry_id: str, fields: dict[Any, Any]) -> StoredEvent | None:
        """The entry's envelope, or None (logged) when it holds none."""
        raw = fields.get(EVENT_FIELD, fields.get(EVENT_FIELD.encode()))
        try:
            envelope = json.loads(raw) if raw is not None else None
        except (UnicodeDecodeError, ValueError):
            envelope = None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("type"), str):
            logger.warning(
                "malformed event entry skipped",
                extra={"stream": self._stream, "entry_id": entry_id},
            )
            return None
        return StoredEvent(entry_id, envelope)


class _Tail:
    """One blocking XREAD on the stream while anyone follows it. It only wakes the
    followers (each reads the entries itself), so it may miss nothing that matters.
    It is never cancelled (a cancelled blocking read can spoil a pooled
    connection): once the last follower left, it ends after its current read."""

    def __init__(self, client: redis.asyncio.Redis, stream: str, block_ms: int) -> None:
        self._client = client
        self._stream = stream
        self._block_ms = block_ms
        self._wake = asyncio.Event()
        self._followers = 0
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    @property
    def wake(self) -> asyncio.Event:
        """Set when entries were added since it was taken."""
        return self._wake

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        self._followers += 1
        if self._task is None and not self._stopped:
            # A context of its own: the tail outlives the request that started it,
            # so its lines must not carry that request's correlation id.
            self._task = asyncio.create_task(
                self._run(), name=f"events-tail:{self._stream}", context=contextvars.Context()
            )
        try:
            yield
        finally:
            self._followers -= 1

    def stop(self) -> None:
        self._stopped = True
        self._bump()

    async def finish(self) -> None:
        """Wait for a stopped tail to end. Its blocking read is cancelled too, but
        redis-py may swallow that (Python 3.11's wait_for), so the read's own
        block time bounds the wait."""
        task = self._task
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task], timeout=self._block_ms / 1000 + RETRY_S)
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, whatever it is: the tail is over

    @property
    def _wanted(self) -> bool:
        return self._followers > 0 and not self._stopped

    def _bump(self) -> None:
        woken, self._wake = self._wake, asyncio.Event()
        woken.set()

    async def _run(self) -> None:
        position: str | None = None  # None: skip to the newest entry, then wake everyone
        try:
            while self._wanted:
                try:
                    if position is None:
                        position = await _newest_id(self._client, self._stream)
                        self._bump()  # each follower re-reads, up to `position` at least
                    arrived: Any = await self._client.xread(
                        {self._stream: position}, count=1, block=self._block_ms
                    )
                except Exception as exc:  # the tail must outlive any failure
                    logger.warning(
                        "event stream tail failed",
                        extra={"stream": self._stream, "error": repr(exc)},
                        exc_info=exc,
                    )
                    position = None
                    self._bump()  # followers retry their own reads and see the error
                    if self._wanted:
                        await asyncio.sleep(RETRY_S)
                    continue
                if arrived:
                    position = None
        finally:
            self._task = None


async def _newest_id(client: redis.asyncio.Redis, stream: str) -> str:
    newest = _entries(await client.xrevrange(stream, count=1))
    return newest[0][0] if newest else ZERO_ID
