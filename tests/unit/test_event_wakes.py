"""CoalescedWakes: when the live fan-out wakes one filter's followers. An
event on a quiet filter goes out at once (after the rest of its read); those
that come within the window after a wake wait for its end and go out together;
what waits is bounded; filters keep their own windows; flush() hands out
everything held; forget() drops a filter with nobody left."""

from __future__ import annotations

import asyncio

import pytest

from runplane.domain.event_reading import EventFilter, StoredEvent
from runplane.services.event_wakes import CoalescedWakes
from tests.support.events import envelope

TEAM_A = EventFilter(team_id="team-a")
TEAM_B = EventFilter(team_id="team-b")
LONG_S = 3600.0
"""A window no test waits out: what is held stays held until flush()."""


def event(n: int) -> StoredEvent:
    return StoredEvent(f"{n}-0", envelope(n))


class Delivered:
    def __init__(self) -> None:
        self.batches: list[tuple[EventFilter, list[str]]] = []
        self.more = asyncio.Event()

    def __call__(self, where: EventFilter, events: list[StoredEvent]) -> None:
        self.batches.append((where, [e.entry_id for e in events]))
        self.more.set()


@pytest.fixture
def delivered() -> Delivered:
    return Delivered()


async def test_a_lone_event_goes_out_after_the_rest_of_its_read(delivered: Delivered) -> None:
    wakes = CoalescedWakes(delivered, bound=100, coalesce_s=LONG_S)

    wakes.add(TEAM_A, event(1))
    wakes.add(TEAM_A, event(2))  # the same read: no await between them
    assert delivered.batches == []
    await asyncio.sleep(0)

    assert delivered.batches == [(TEAM_A, ["1-0", "2-0"])]


async def test_events_within_the_window_after_a_wake_wait_and_go_out_together(
    delivered: Delivered,
) -> None:
    wakes = CoalescedWakes(delivered, bound=100, coalesce_s=LONG_S)
    wakes.add(TEAM_A, event(1))
    await asyncio.sleep(0)

    for n in (2, 3, 4):  # three reads
        wakes.add(TEAM_A, event(n))
        await asyncio.sleep(0.01)
    assert delivered.batches == [(TEAM_A, ["1-0"])]
    wakes.flush()

    assert delivered.batches == [(TEAM_A, ["1-0"]), (TEAM_A, ["2-0", "3-0", "4-0"])]


async def test_the_window_ends_and_what_waited_goes_out(delivered: Delivered) -> None:
    wakes = CoalescedWakes(delivered, bound=100, coalesce_s=0.05)
    wakes.add(TEAM_A, event(1))
    await asyncio.sleep(0)
    delivered.more.clear()
    wakes.add(TEAM_A, event(2))
    wakes.add(TEAM_A, event(3))

    async with asyncio.timeout(10):
        await delivered.more.wait()
    assert delivered.batches == [(TEAM_A, ["1-0"]), (TEAM_A, ["2-0", "3-0"])]


async def test_after_a_quiet_window_an_event_goes_out_at_once_again(delivered: Delivered) -> None:
    wakes = CoalescedWakes(delivered, bound=100, coalesce_s=0.05)
    wakes.add(TEAM_A, event(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0.2)  # longer than the window: the filter is quiet again

    wakes.add(TEAM_A, event(2))
    await asyncio.sleep(0)

    assert delivered.batches == [(TEAM_A, ["1-0"]), (TEAM_A, ["2-0"])]


async def test_each_filter_has_its_own_window(delivered: Delivered) -> None:
    wakes = CoalescedWakes(delivered, bound=100, coalesce_s=LONG_S)
    wakes.add(TEAM_A, event(1))
    await asyncio.sleep(0)
    wakes.add(TEAM_A, event(2))  # team-a was just woken: it waits

    wakes.add(TEAM_B, event(3))  # team-b is quiet: at once
    await asyncio.sleep(0)

    assert delivered.batches == [(TEAM_A, ["1-0"]), (TEAM_B, ["3-0"])]


async def test_what_waits_is_bounded(delivered: Delivered) -> None:
    wakes = CoalescedWakes(delivered, bound=3, coalesce_s=LONG_S)
    wakes.add(TEAM_A, event(1))
    await asyncio.sleep(0)

    for n in (2, 3, 4, 5):
        wakes.add(TEAM_A, event(n))

    assert delivered.batches == [(TEAM_A, ["1-0"]), (TEAM_A, ["2-0", "3-0", "4-0"])]
    wakes.flush()
    assert delivered.batches[-1] == (TEAM_A, ["5-0"])


async def test_flush_s_delays_even_a_lone_event(delivered: Delivered) -> None:
    wakes = CoalescedWakes(delivered, bound=100, flush_s=LONG_S, coalesce_s=0)
    wakes.add(TEAM_A, event(1))
    await asyncio.sleep(0.01)
    assert delivered.batches == []

    wakes.flush()

    assert delivered.batches == [(TEAM_A, ["1-0"])]


async def test_a_coalesce_window_of_zero_wakes_once_per_read(delivered: Delivered) -> None:
    wakes = CoalescedWakes(delivered, bound=100, coalesce_s=0)
    for n in (1, 2):
        wakes.add(TEAM_A, event(n))
        await asyncio.sleep(0)

    assert delivered.batches == [(TEAM_A, ["1-0"]), (TEAM_A, ["2-0"])]


async def test_a_forgotten_filter_drops_what_it_held(delivered: Delivered) -> None:
    wakes = CoalescedWakes(delivered, bound=100, coalesce_s=LONG_S)
    wakes.add(TEAM_A, event(1))
    await asyncio.sleep(0)
    wakes.add(TEAM_A, event(2))

    wakes.forget(TEAM_A)
    wakes.flush()
    wakes.add(TEAM_A, event(3))  # a new follower's filter: quiet, at once
    await asyncio.sleep(0)

    assert delivered.batches == [(TEAM_A, ["1-0"]), (TEAM_A, ["3-0"])]


def test_windows_must_not_be_negative_and_the_bound_positive(delivered: Delivered) -> None:
    with pytest.raises(ValueError, match="coalesce_s"):
        CoalescedWakes(delivered, bound=1, coalesce_s=-1)
    with pytest.raises(ValueError, match="flush_s"):
        CoalescedWakes(delivered, bound=1, flush_s=-1)
    with pytest.raises(ValueError, match="bound"):
        CoalescedWakes(delivered, bound=0)
