"""One follower of the live lifecycle events (services/event_fanout.py): its
filter, its bounded buffer, and the hand-over from its replay to the live events.

While it replays the durable stream, the live events it matches wait in its
buffer; then it skips those it already replayed (entry ids up to the last one
it was handed) and goes on with the rest: no gap, no duplicate. A buffer that
fills up while it replays is dropped and the replay goes on (the durable stream
holds what was dropped); one that fills up once it is live cuts it: its stream
ends with FollowerLagging, and it resumes from the id it names."""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import AsyncIterator

from runplane.domain.errors import RunplaneError
from runplane.domain.event_reading import EventFilter, StoredEvent, parse_stream_id


class FollowerLagging(RunplaneError):
    """The follower fell too far behind the live events and was cut; nothing after
    `after`, the last entry it was handed, was lost: it resumes from there."""

    def __init__(self, after: str) -> None:
        super().__init__(f"the follower fell behind; resume after {after}")
        self.after = after


class _End(enum.Enum):
    CLOSED = "closed"
    """Hand out what is buffered, then end."""
    LAGGING = "lagging"
    """Cut: the buffer is dropped, FollowerLagging ends the follower."""


class Subscription:
    """Filled by the fan-out's one live reader (`take`, never awaits), read by
    one follower (`live`)."""

    def __init__(self, where: EventFilter, capacity: int, position: str) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.where = where
        self.delivered = position
        """The last entry id handed to the follower (its start before any)."""
        self._capacity = capacity
        self._buffer: deque[StoredEvent] = deque()
        self._wake = asyncio.Event()
        self._replaying = True
        self._overflowed = False
        self._end: _End | None = None

    @property
    def cut(self) -> bool:
        return self._end is _End.LAGGING

    def take(self, events: list[StoredEvent]) -> None:
        """Events its filter matched (checked by the fan-out once for every
        follower with the same filter), all that arrived together: one wake, and
        so one write, for all of them."""
        if self._end is not None:
            return
        if len(self._buffer) + len(events) > self._capacity:
            self._buffer.clear()
            if self._replaying:
                self._overflowed = True  # the next replay pass reads what was dropped
            else:
                self._stop(_End.LAGGING)
            return
        self._buffer.extend(events)
        self._wake.set()

    def end(self) -> None:
        """No more live events: hand out what is buffered, then end."""
        if self._end is None:
            self._stop(_End.CLOSED)

    def lag(self) -> None:
        """Cut now (the live events it would need are not coming)."""
        self._buffer.clear()
        self._stop(_End.LAGGING)

    def replayed(self) -> bool:
        """Called at the end of a replay pass: True to go live, False when the
        buffer overflowed during the pass, so another pass must read what it
        dropped. No await between this and the pass's last read."""
        if self._overflowed:
            self._overflowed = False
            return False
        self._replaying = False
        return True

    async def live(self) -> AsyncIterator[list[StoredEvent]]:
        """The buffered events, in batches of what has arrived, past the replay."""
        skip: tuple[int, int] | None = parse_stream_id(self.delivered)
        while True:
            if not self._buffer:
                if self._end is _End.LAGGING:
                    raise FollowerLagging(self.delivered)
                if self._end is _End.CLOSED:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = list(self._buffer)
            self._buffer.clear()
            if skip is not None:  # the hand-over: drop what the replay handed out
                batch = [e for e in batch if parse_stream_id(e.entry_id) > skip]
                skip = None if batch else skip
            if batch:
                self.delivered = batch[-1].entry_id
                yield batch

    def _stop(self, end: _End) -> None:
        self._end = end
        self._wake.set()
