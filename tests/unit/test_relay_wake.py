"""A commit's wake runs the relay's round a moment later, and the wakes of that
moment (an operation's two commits) share the one round."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from runplane.domain.lifecycle_events import OutboxEvent
from runplane.testing.leases import InMemoryLeaseStore
from runplane.testing.stores import InMemoryOutbox
from runplane.workers import outbox_relay
from runplane.workers.leadership import Leadership
from runplane.workers.outbox_relay import OutboxRelay
from tests.support.clock import FakeClock
from tests.support.events import MOMENT, lifecycle_event
from tests.support.streams import wait_until
from tests.support.tokens import SequentialTokens


class Batches:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def publish(self, events: Sequence[OutboxEvent]) -> None:
        self.batches.append([e.event_id for e in events])


async def test_wakes_close_together_publish_in_one_round(monkeypatch: pytest.MonkeyPatch) -> None:
    # Long enough that the turns below always fall inside it, however loaded the machine.
    monkeypatch.setattr(outbox_relay, "WAKE_AFTER_S", 0.5)
    clock = FakeClock(MOMENT)
    outbox = InMemoryOutbox()
    published = Batches()
    leadership = Leadership(InMemoryLeaseStore(clock), SequentialTokens("t"), "relay")
    relay = OutboxRelay(
        outbox, published, leadership, clock, poll_interval_s=3600.0, idle_poll_max_s=3600.0
    )
    running = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: leadership.leading)  # its first round ran: idle
        outbox.add([lifecycle_event(1)])
        relay.wake()  # the transient status's commit
        for _ in range(10):  # turns in which a round woken at once would have run
            await asyncio.sleep(0)
        outbox.add([lifecycle_event(2)])
        relay.wake()  # the final one's, before the round
        await wait_until(lambda: published.batches != [])
        assert published.batches == [["evt-1", "evt-2"]]
        outbox.add([lifecycle_event(3)])
        relay.wake()  # a later wake runs a round of its own
        await wait_until(lambda: len(published.batches) == 2)
        assert published.batches[1] == ["evt-3"]
    finally:
        relay.request_stop()
        await asyncio.wait_for(running, 10)
