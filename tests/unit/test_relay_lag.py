"""The outbox relay's lag gauge, taken from the batch it reads each round (no
query of its own): the age of the oldest pending event, 0 once none is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from runplane.domain.lifecycle_events import OutboxEvent
from runplane.testing.leases import InMemoryLeaseStore
from runplane.testing.stores import InMemoryOutbox
from runplane.workers.leadership import Leadership
from runplane.workers.outbox_relay import RELAY_LAG, OutboxRelay
from tests.support.clock import FakeClock
from tests.support.events import MOMENT, lifecycle_event
from tests.support.tokens import SequentialTokens


class Published:
    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []

    async def publish(self, events: Sequence[OutboxEvent]) -> None:
        self.events.extend(events)


class CountingOutbox(InMemoryOutbox):
    def __init__(self) -> None:
        super().__init__()
        self.oldest_reads = 0

    async def oldest_pending_at(self) -> datetime | None:
        self.oldest_reads += 1
        return await super().oldest_pending_at()


async def test_the_lag_is_the_oldest_pending_events_age_then_zero() -> None:
    clock = FakeClock(MOMENT)
    outbox = CountingOutbox()
    outbox.add([lifecycle_event(1), lifecycle_event(2)])
    published = Published()
    leadership = Leadership(InMemoryLeaseStore(clock), SequentialTokens("t"), "relay")
    relay = OutboxRelay(outbox, published, leadership, clock, batch_size=1)
    clock.advance(3)
    assert await relay.step()
    assert RELAY_LAG._value.get() == 3.0  # read before the batch is published
    assert await relay.step()
    assert not await relay.step()
    assert RELAY_LAG._value.get() == 0.0
    assert [e.event_id for e in published.events] == ["evt-1", "evt-2"]
    assert outbox.oldest_reads == 0
