"""The outbox relay: publishes committed events in order, one leader at a time.

Events are committed with the state change they describe (the outbox), so a
crash anywhere loses none: the relay publishes what is pending and only then
marks it sent. A crash between the two makes the next leader publish the batch
again; the publisher drops an event whose id it has already published (see
adapters/redis/event_publisher.py), so each event reaches the stream and the
live channel once. A Leadership (the lease `lease:{runplane:outbox-relay}`)
elects one relay among the instances, so events leave in commit order; it is
checked again just before publishing, but a leader paused past its lease's end
could still publish a batch the new one publishes too: the dedupe, not the
lease, is what makes that harmless (the lease key is in another slot, so it
cannot be checked in the publishing script on a cluster).

An idle relay does not poll every `poll_interval_s`: each round that finds
nothing doubles its wait, up to `idle_poll_max_s`. A commit of an outbox row by
this instance wakes it (`wake()`, called by the SQL adapter after such a
commit, see adapters/sql/outbox.py `watch_commits`), and the wait goes back to
`poll_interval_s`; a row committed by another instance is relayed within
`idle_poll_max_s` (plus a round) by the leading relay's own poll.

Under sustained load the wakes batch: a wake within `batch_window_s` of the
last round that published runs the next round `batch_window_s` after that one,
not WAKE_AFTER_S after the commit, so at 200 operations a second one round (a
read, a Redis script, a mark-sent write) carries ten operations' events rather
than one each. A lone commit still goes WAKE_AFTER_S later; an event waits at
most `batch_window_s` (plus the round) for its round either way."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from prometheus_client import Counter, Gauge

from runplane.domain.lifecycle_events import OutboxEvent
from runplane.ports.lifecycle_events import EventPublisher, Outbox
from runplane.ports.system import Clock
from runplane.workers.leadership import LeaderLoop, Leadership

PUBLISHED = Counter(
    "runplane_events_published_total", "Lifecycle events published by the relay.", ["durable"]
)
# Looked up once: a `labels()` call per event was a tenth of a round.
_PUBLISHED_DURABLE = PUBLISHED.labels(durable="true")
_PUBLISHED_TRANSIENT = PUBLISHED.labels(durable="false")
RELAY_LAG = Gauge(
    "runplane_outbox_lag_seconds", "Age of the oldest event not yet published (0 when none)."
)
WAKE_AFTER_S = 0.005
"""A commit wakes the relay this much later, not at once: an operation commits
twice about a millisecond apart (its transient status, then its final one with
its log entry), and one round then publishes both (a read, a Redis script and a
mark-sent write a round). Events reach the stream that much later."""
BATCH_WINDOW_S = 0.05
"""Rounds woken by commits start at least this far apart (see the module
docstring): the most an event waits for the relay under load."""


class OutboxRelay(LeaderLoop):
    """Publishes a batch a round, every `poll_interval_s` (up to
    `idle_poll_max_s` while nothing is pending), at once after a round that
    published a full batch (more are pending) or after `wake()` (batched, see
    the module docstring); a failed round backs off."""

    def __init__(
        self,
        outbox: Outbox,
        publisher: EventPublisher,
        leadership: Leadership,
        clock: Clock,
        *,
        poll_interval_s: float = 0.1,
        idle_poll_max_s: float | None = None,
        batch_size: int = 500,
        batch_window_s: float = BATCH_WINDOW_S,
    ) -> None:
        if batch_window_s < 0:
            raise ValueError("batch_window_s must not be negative")
        self.outbox = outbox
        self.publisher = publisher
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self.batch_window_s = batch_window_s
        self._wake_due = False
        self._last_batch = 0
        self._published_at = -math.inf
        """The event loop's time when the last round that published began."""
        super().__init__(
            "outbox relay",
            leadership,
            self._round,
            interval_s=poll_interval_s,
            idle_cap_s=idle_poll_max_s,
        )

    def wake(self) -> None:
        """Run a round WAKE_AFTER_S from now, or `batch_window_s` after the last
        round that published if that is later; wakes meanwhile join it."""
        if self._wake_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to wait on (a caller outside one): at once
            super().wake()
            return
        self._wake_due = True
        due = max(loop.time() + WAKE_AFTER_S, self._published_at + self.batch_window_s)
        loop.call_at(due, self._wake_now)

    def _wake_now(self) -> None:
        self._wake_due = False
        super().wake()

    async def _round(self) -> bool | None:
        """For the loop: True (next round at once) only after a full batch, as
        more are pending; after a smaller one the next round waits for a wake
        or the poll, not an extra read that would find nothing."""
        started = asyncio.get_running_loop().time()
        if not await self.step():
            return False
        self._published_at = started
        return True if self._last_batch >= self.batch_size else None

    async def step(self) -> bool:
        """One round: hold the leadership, publish one batch. True if it published."""
        if not await self.leadership.hold():
            return False
        pending = await self.outbox.pending(limit=self.batch_size)
        self._update_lag(pending)
        if not pending:
            return False
        if not self.leadership.leading:
            return False  # lost while reading: the new leader publishes these
        self._last_batch = len(pending)
        await self.publisher.publish(pending)
        await self.outbox.mark_sent([event.seq for event in pending], self.clock.now())
        durable = sum(event.durable for event in pending)
        if durable:
            _PUBLISHED_DURABLE.inc(durable)
        if durable < len(pending):
            _PUBLISHED_TRANSIENT.inc(len(pending) - durable)
        return True

    def _update_lag(self, pending: Sequence[OutboxEvent]) -> None:
        """From the batch just read, not another query each round: the batch is the
        oldest pending events (by commit order), so its earliest time is the oldest
        pending one's, give or take clocks of different instances."""
        oldest = min((event.created_at for event in pending), default=None)
        lag = (self.clock.now() - oldest).total_seconds() if oldest else 0.0
        RELAY_LAG.set(max(lag, 0.0))
