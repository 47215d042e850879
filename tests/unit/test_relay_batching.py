"""Under load the relay's rounds batch: a commit soon after a round that
published waits for the batch window, and the commits meanwhile share the next
round; a full batch is followed by the next round at once, with no wake."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

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


class Running:
    def __init__(self, outbox: InMemoryOutbox, published: Batches, relay: OutboxRelay) -> None:
        self.outbox = outbox
        self.published = published
        self.relay = relay


@contextlib.asynccontextmanager
async def running_relay(*, batch_window_s: float, batch_size: int = 500) -> AsyncIterator[Running]:
    clock = FakeClock(MOMENT)
    outbox = InMemoryOutbox()
    published = Batches()
    leadership = Leadership(InMemoryLeaseStore(clock), SequentialTokens("t"), "relay")
    # Polls an hour apart: only wakes (and full batches) run rounds here.
    relay = OutboxRelay(
        outbox,
        published,
        leadership,
        clock,
        poll_interval_s=3600.0,
        idle_poll_max_s=3600.0,
        batch_size=batch_size,
        batch_window_s=batch_window_s,
    )
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: leadership.leading)  # its first round ran: idle
        yield Running(outbox, published, relay)
    finally:
        relay.request_stop()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def windowed(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    # No delay of a commit's own, so only the window can join the commits below;
    # a window long enough that the turns below always fall inside it, however
    # loaded the machine.
    monkeypatch.setattr(outbox_relay, "WAKE_AFTER_S", 0.0)
    async with running_relay(batch_window_s=1.0) as running:
        yield running


async def test_commits_within_the_window_after_a_round_share_the_next(windowed: Running) -> None:
    windowed.outbox.add([lifecycle_event(1)])
    windowed.relay.wake()  # a lone commit: its own round
    await wait_until(lambda: windowed.published.batches == [["evt-1"]])
    windowed.outbox.add([lifecycle_event(2)])
    windowed.relay.wake()
    for _ in range(20):  # turns in which a round woken at once would have run
        await asyncio.sleep(0)
    windowed.outbox.add([lifecycle_event(3)])
    windowed.relay.wake()
    await wait_until(lambda: len(windowed.published.batches) == 2)
    assert windowed.published.batches[1] == ["evt-2", "evt-3"]


async def test_a_full_batch_is_followed_by_the_next_round_without_a_wake() -> None:
    async with running_relay(batch_window_s=0.0, batch_size=2) as running:
        running.outbox.add([lifecycle_event(i) for i in range(1, 6)])
        running.relay.wake()  # one wake; the polls are an hour apart
        await wait_until(lambda: len(running.published.batches) == 3)
        assert running.published.batches == [
            ["evt-1", "evt-2"],
            ["evt-3", "evt-4"],
            ["evt-5"],
        ]
        assert await running.outbox.pending() == []


def test_a_negative_window_is_refused() -> None:
    clock = FakeClock(MOMENT)
    leadership = Leadership(InMemoryLeaseStore(clock), SequentialTokens("t"), "relay")
    with pytest.raises(ValueError, match="batch_window_s"):
        OutboxRelay(InMemoryOutbox(), Batches(), leadership, clock, batch_window_s=-1.0)
