"""When the live event fan-out (services/event_fanout.py) wakes the followers
of one filter: coalesced like a socket's send buffer (Nagle's algorithm).

An event for a filter whose followers were last woken at least `coalesce_s`
ago wakes them at once (after the rest of the read it came in: call_soon), so
an event on a quiet stream is not delayed. Events that come sooner wait for
the end of that window and go out together. Under load each follower is woken,
and so writes, once per `coalesce_s` however many events arrive, which is what
a write costs the server: far more than the bytes it carries. `flush_s` > 0
delays every wake by that much as well (the older, fixed delay).

What waits is bounded: a filter with `bound` events pending is woken at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from runplane.domain.event_reading import EventFilter, StoredEvent

__all__ = ["COALESCE_S", "FLUSH_S", "CoalescedWakes"]

FLUSH_S = 0.0
"""How long every handed-out event waits for more before its followers are woken."""
COALESCE_S = 0.02
"""The shortest time between two wakes of one filter's followers: events that
come sooner wait for the rest of it, and go out in one write per follower."""

Deliver = Callable[[EventFilter, list[StoredEvent]], None]


class CoalescedWakes:
    """Events pending by filter, each filter's own wake. Never awaits."""

    def __init__(
        self,
        deliver: Deliver,
        *,
        bound: int,
        flush_s: float = FLUSH_S,
        coalesce_s: float = COALESCE_S,
    ) -> None:
        if flush_s < 0 or coalesce_s < 0:
            raise ValueError("flush_s and coalesce_s must not be negative")
        if bound < 1:
            raise ValueError("bound must be positive")
        self._deliver = deliver
        self._bound = bound
        self._flush_s = flush_s
        self._coalesce_s = coalesce_s
        self._pending: dict[EventFilter, list[StoredEvent]] = {}
        self._wakes: dict[EventFilter, asyncio.Handle] = {}
        """The wake of each filter with events pending."""
        self._woken: dict[EventFilter, float] = {}
        """When each filter's followers were last woken (the loop's clock)."""

    def add(self, where: EventFilter, event: StoredEvent) -> None:
        events = self._pending.get(where)
        if events is None:
            self._pending[where] = [event]
            self._schedule(where)
            return
        events.append(event)
        if len(events) >= self._bound:  # held here, it must not grow: out now
            self._wakes.pop(where).cancel()
            self._wake(where)

    def forget(self, where: EventFilter) -> None:
        """The filter has no follower left: what it holds has nobody to go to (a
        follower joining later replays it from the durable stream)."""
        wake = self._wakes.pop(where, None)
        if wake is not None:
            wake.cancel()
        self._pending.pop(where, None)
        self._woken.pop(where, None)

    def flush(self) -> None:
        """Everything pending goes out now."""
        for where, wake in list(self._wakes.items()):
            wake.cancel()
            self._wake(where)

    def _schedule(self, where: EventFilter) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = now + self._flush_s
        last = self._woken.get(where)
        if last is not None:
            due = max(due, last + self._coalesce_s)
        if due > now:
            self._wakes[where] = loop.call_at(due, self._wake, where)
        else:
            self._wakes[where] = loop.call_soon(self._wake, where)

    def _wake(self, where: EventFilter) -> None:
        self._wakes.pop(where, None)
        events = self._pending.pop(where, None)
        if events:
            self._woken[where] = asyncio.get_running_loop().time()
            self._deliver(where, events)
