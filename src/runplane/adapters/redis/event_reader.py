"""Reading the durable lifecycle event stream (`runplane:events`) back: pages for
`GET /v1/events`, replays for a resuming SSE client, and a follower.

Pages and replays are XRANGE reads of what is there. A follower catches up
with XRANGE from its position, then waits with a blocking XREAD (one pooled
connection per follower: `runplane serve` runs one, and fans its events out in
process, services/event_fanout.py). A replay or a follower whose position was
trimmed past raises EventsTrimmed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio
import redis.exceptions

from runplane.adapters.redis.client import unavailable_on_connection_errors
from runplane.adapters.redis.names import EVENTS_STREAM
from runplane.adapters.redis.passed_over import pass_over
from runplane.domain.documents import InvalidDocument, loads
from runplane.domain.event_reading import (
    MAX_ID_PART,
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
"""A follower's XREAD BLOCK: below the client's socket timeout, and the longest a
closed reader's follower may take to end (new entries end a blocking read at once)."""


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
    ) -> None:
        if batch_size < 1 or scan_max < 1 or block_ms < 1:
            raise ValueError("batch_size, scan_max and block_ms must be positive")
        self._client = client
        self._stream = stream
        self._batch_size = batch_size
        self._scan_max = scan_max
        self._block_ms = block_ms
        self._closed = False

    @property
    def stream(self) -> str:
        return self._stream

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every follower after its current read (at most `block_ms`). Safe
        to call from a signal handler."""
        self._closed = True

    async def aclose(self) -> None:
        self.close()

    async def last_id(self) -> str:
        with unavailable_on_connection_errors("events.last_id"):
            return await _newest_id(self._client, self._stream)

    async def page(self, *, after: str | None, limit: int, where: EventFilter) -> EventPage:
        if after is not None and parse_stream_id(after) == (MAX_ID_PART, MAX_ID_PART):
            return EventPage([], None)  # nothing can follow; "(" + it is an error
        start = "-" if after is None else f"({normalize_stream_id(after)}"

        async def read(bound: str, count: int) -> Any:
            return await self._client.xrange(self._stream, min=bound, max="+", count=count)

        return await self._scan(read, start, after, limit, where, "events.page")

    async def latest(self, *, before: str | None, limit: int, where: EventFilter) -> EventPage:
        if before is not None and _is_zero(before):
            return EventPage([], None)  # nothing can precede it; "(0-0" is an error
        end = "+" if before is None else f"({normalize_stream_id(before)}"

        async def read(bound: str, count: int) -> Any:
            return await self._client.xrevrange(self._stream, max=bound, min="-", count=count)

        return await self._scan(read, end, before, limit, where, "events.latest")

    async def _scan(
        self,
        read: Callable[[str, int], Awaitable[Any]],
        bound: str,
        last: str | None,
        limit: int,
        where: EventFilter,
        op: str,
    ) -> EventPage:
        """Up to `limit` matching events from `bound` on, in the direction `read`
        goes, looking at no more than `scan_max` entries; the cursor is the last
        entry looked at when the page is full or the scan bound was reached."""
        found: list[StoredEvent] = []
        scanned = 0
        while scanned < self._scan_max:
            count = min(self._batch_size, self._scan_max - scanned)
            with unavailable_on_connection_errors(op):
                entries = _entries(await read(bound, count))
            for last, fields in entries:
                scanned += 1
                event = self._decode(last, fields)
                if event is not None and where.matches(event):
                    found.append(event)
                    if len(found) == limit:
                        return EventPage(found, last)
            if len(entries) < count:
                return EventPage(found, None)
            bound = f"({last}"
        return EventPage(found, last)

    async def replay(self, *, after: str, limit: int, where: EventFilter) -> EventPage:
        found: list[StoredEvent] = []
        position = normalize_stream_id(after)
        scanned = 0
        while scanned < self._scan_max:
            count = min(self._batch_size, self._scan_max - scanned)
            entries = await self._read_from(position, count)
            for position, fields in entries:
                scanned += 1
                event = self._decode(position, fields)
                if event is not None and where.matches(event):
                    found.append(event)
                    if len(found) == limit:
                        return EventPage(found, position)
            if len(entries) < count:
                return EventPage(found, None)
        return EventPage(found, position)

    async def follow(self, *, after: str | None, where: EventFilter) -> AsyncIterator[StoredEvent]:
        position = await self.last_id() if after is None else normalize_stream_id(after)
        caught_up = False
        while not self._closed:
            if caught_up:
                entries = await self._wait_after(position)
            else:
                entries = await self._read_from(position, self._batch_size)
            for position, fields in entries:
                event = self._decode(position, fields)
                if event is not None and where.matches(event):
                    yield event
            caught_up = len(entries) < self._batch_size

    async def _wait_after(self, position: str) -> list[Entry]:
        """Entries after `position`, waiting up to block_ms for the first. Only
        ever called at the end of the stream: nothing there can have been trimmed
        unseen; a full batch sends the follower back to _read_from, which checks."""
        with unavailable_on_connection_errors("events.follow"):
            reply: Any = await self._client.xread(
                {self._stream: position}, count=self._batch_size, block=self._block_ms
            )
        return [entry for _, entries in reply or () for entry in _entries(entries)]

    async def _read_from(self, position: str, count: int) -> list[Entry]:
        """Up to `count` entries after `position`. Reads from `position` inclusive:
        finding the entry itself proves nothing after it was trimmed; missing it,
        XINFO tells."""
        with unavailable_on_connection_errors("events.follow"):
            found = _entries(
                await self._client.xrange(self._stream, min=position, max="+", count=count + 1)
            )
        if found and found[0][0] == position:
            return found[1:]
        if not _is_zero(position) and await self._trimmed_after(position):
            raise EventsTrimmed(position)
        return found[:count]

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
        """The entry's envelope, or None (passed over, logged once) when it holds
        none: bad JSON, not UTF-8, a lone surrogate, nesting past the limit (which
        would raise RecursionError, or break the JSON answer later), no `type`."""
        raw = fields.get(EVENT_FIELD, fields.get(EVENT_FIELD.encode()))
        try:
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8")  # json.loads would guess UTF-16/32 for odd bytes
            envelope = loads(raw) if raw is not None else None
        except (InvalidDocument, UnicodeDecodeError) as exc:
            pass_over(self._stream, entry_id, str(exc))
            return None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("type"), str):
            pass_over(self._stream, entry_id, "no event envelope with a type")
            return None
        return StoredEvent(entry_id, envelope)


async def _newest_id(client: redis.asyncio.Redis, stream: str) -> str:
    newest = _entries(await client.xrevrange(stream, count=1))
    return newest[0][0] if newest else ZERO_ID
