"""EventFanout over the in-memory event stream: one live read for every
follower, filters per follower, the hand-over from replay to live with no gap
and no duplicate, a slow follower cut (and resuming losing nothing), malformed
entries passed over, a failing live read followed again, and closing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from runplane.domain.errors import StoreUnavailable
from runplane.domain.event_reading import EventFilter, EventPage, StoredEvent
from runplane.domain.lifecycle_events import EVENT_FIELD
from runplane.services.event_fanout import EventFanout, FollowerLagging
from runplane.testing.event_stream import InMemoryEventReader
from tests.support.events import lifecycle_event

EVERYTHING = EventFilter()


class CountingReader(InMemoryEventReader):
    """Counts the follows it serves; `fail_follows` of them fail at once."""

    def __init__(self, fail_follows: int = 0) -> None:
        super().__init__()
        self.follows = 0
        self.fail_follows = fail_follows

    async def follow(self, *, after: str | None, where: EventFilter) -> AsyncIterator[StoredEvent]:
        self.follows += 1
        if self.follows <= self.fail_follows:
            raise StoreUnavailable("redis unavailable during events.follow")
        async for event in super().follow(after=after, where=where):
            yield event


class ArrivingReader(InMemoryEventReader):
    """Events arrive while a follower replays: one before each replay read
    (replayed and offered live: a duplicate unless the hand-over skips it), one
    after (only live: a gap unless it is taken from the buffer)."""

    def __init__(self, first: int) -> None:
        super().__init__()
        self.next = first

    async def replay(self, *, after: str, limit: int, where: EventFilter) -> EventPage:
        self._arrive()
        await asyncio.sleep(0)  # the live reader offers it meanwhile
        page = await super().replay(after=after, limit=limit, where=where)
        self._arrive()
        await asyncio.sleep(0)
        return page

    def _arrive(self) -> None:
        self.add(lifecycle_event(self.next))
        self.next += 1


def add(reader: InMemoryEventReader, first: int, count: int, **changes: str) -> list[str]:
    return [reader.add(lifecycle_event(n, **changes)) for n in range(first, first + count)]


async def receive(follower: AsyncIterator[list[StoredEvent]], count: int) -> list[str]:
    ids: list[str] = []
    async with asyncio.timeout(5):
        while len(ids) < count:
            ids += [event.entry_id for event in await anext(follower)]
    return ids


@pytest.fixture
def reader() -> CountingReader:
    return CountingReader()


async def test_every_follower_gets_every_event_from_one_live_read(reader: CountingReader) -> None:
    add(reader, 1, 3)
    fanout = EventFanout(reader)
    followers = [fanout.follow_batches(after=None, where=EVERYTHING) for _ in range(50)]
    pending = [asyncio.ensure_future(receive(f, 20)) for f in followers]
    await asyncio.sleep(0.01)  # every follower has joined and waits

    ids = add(reader, 4, 20)

    assert await asyncio.gather(*pending) == [ids[:20]] * 50
    assert reader.follows == 1
    assert fanout.followers == 50
    await fanout.aclose()


async def test_filters_apply_per_follower(reader: CountingReader) -> None:
    fanout = EventFanout(reader)
    stops = fanout.follow_batches(after=None, where=EventFilter(types=frozenset({"runtime.stop"})))
    team_b = fanout.follow_batches(after=None, where=EventFilter(team_id="team-b"))
    got = [asyncio.ensure_future(receive(f, 2)) for f in (stops, team_b)]
    await asyncio.sleep(0.01)

    add(reader, 1, 2)
    stopped = add(reader, 3, 2, type="runtime.stop")
    theirs = add(reader, 5, 2, team_id="team-b")

    assert await asyncio.gather(*got) == [stopped, theirs]
    await fanout.aclose()


CHECKS: Counter[str | None] = Counter()


class CountedFilter(EventFilter):
    """An EventFilter that counts its checks, by team."""

    def matches(self, event: StoredEvent) -> bool:
        CHECKS[self.team_id] += 1
        return super().matches(event)


async def test_each_event_is_checked_once_per_filter_and_teams_see_only_their_own(
    reader: CountingReader,
) -> None:
    CHECKS.clear()
    fanout = EventFanout(reader)
    teams = ["team-a"] * 30 + ["team-b"] * 30
    followers = [fanout.follow_batches(after=None, where=CountedFilter(team_id=t)) for t in teams]
    got = [asyncio.ensure_future(receive(f, 5)) for f in followers]
    await asyncio.sleep(0.01)

    theirs = {t: add(reader, n, 5, team_id=t) for n, t in ((1, "team-a"), (6, "team-b"))}

    assert await asyncio.gather(*got) == [theirs[t] for t in teams]
    assert CHECKS == {"team-a": 10, "team-b": 10}  # not once per follower
    await fanout.aclose()


async def test_what_arrives_within_flush_s_reaches_a_follower_in_one_batch(
    reader: CountingReader,
) -> None:
    fanout = EventFanout(reader, flush_s=2.0)
    follower = fanout.follow_batches(after=None, where=EVERYTHING)
    batch = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.01)

    ids = add(reader, 1, 3)
    await asyncio.sleep(0.01)  # read and handed out: the follower is not woken yet
    ids += add(reader, 4, 3)

    async with asyncio.timeout(10):
        assert [event.entry_id for event in await batch] == ids
    await fanout.aclose()


async def test_a_lone_event_goes_out_at_once_and_a_burst_after_it_in_one_batch(
    reader: CountingReader,
) -> None:
    fanout = EventFanout(reader, coalesce_s=3600.0)  # a window no test waits out
    follower = fanout.follow_batches(after=None, where=EVERYTHING)
    first = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.01)

    lone = add(reader, 1, 1)
    async with asyncio.timeout(10):
        assert [event.entry_id for event in await first] == lone
    burst = []
    for n in range(2, 6):  # four reads within the window: held
        burst += add(reader, n, 1)
        await asyncio.sleep(0.01)
    fanout.close()  # what was read goes out first, then the follower ends

    async with asyncio.timeout(10):
        assert [[event.entry_id for event in batch] async for batch in follower] == [burst]
    await fanout.aclose()


def test_flush_s_must_not_be_negative(reader: CountingReader) -> None:
    with pytest.raises(ValueError, match="flush_s"):
        EventFanout(reader, flush_s=-1)
    with pytest.raises(ValueError, match="coalesce_s"):
        EventFanout(reader, coalesce_s=-1)


async def test_a_resuming_follower_hands_over_to_live_events_without_gap_or_duplicate() -> None:
    reader = ArrivingReader(first=21)
    ids = add(reader, 1, 20)
    fanout = EventFanout(reader, replay_page=3)
    await fanout.last_id()
    live = fanout.follow_batches(after=None, where=EVERYTHING)  # starts the live read
    first = asyncio.ensure_future(receive(live, 1))
    await asyncio.sleep(0.01)

    resumed = fanout.follow_batches(after=ids[4], where=EVERYTHING)
    got = await receive(resumed, 20)  # 15 replayed, the rest arrived meanwhile

    everything = [e.entry_id for e in reader.entries]
    assert got == everything[5 : 5 + len(got)]
    assert len(got) == len(set(got))
    await first
    await fanout.aclose()


async def test_a_slow_follower_is_cut_alone_and_resumes_losing_nothing(
    reader: CountingReader,
) -> None:
    fanout = EventFanout(reader, buffer_events=4)
    slow = fanout.follow_batches(after=None, where=EVERYTHING)
    fast = fanout.follow_batches(after=None, where=EVERYTHING)
    slow_first = asyncio.ensure_future(receive(slow, 1))
    fast_all = asyncio.ensure_future(receive(fast, 30))
    await asyncio.sleep(0.01)

    ids = add(reader, 1, 1)
    delivered = await slow_first  # then it stops reading
    for n in range(2, 31):
        ids += add(reader, n, 1)
        await asyncio.sleep(0)  # the fast one keeps up

    assert await fast_all == ids
    with pytest.raises(FollowerLagging) as cut:
        await anext(slow)
    assert cut.value.after == delivered[-1] == ids[0]
    resumed = fanout.follow_batches(after=cut.value.after, where=EVERYTHING)
    assert await receive(resumed, 29) == ids[1:]
    await fanout.aclose()


async def test_a_buffer_that_overflows_during_the_replay_is_read_again() -> None:
    reader = ArrivingReader(first=41)
    add(reader, 1, 40)
    fanout = EventFanout(reader, buffer_events=2, replay_page=4)
    starter = fanout.follow_batches(after=None, where=EVERYTHING)
    started = asyncio.ensure_future(receive(starter, 1))
    await asyncio.sleep(0.01)

    follower = fanout.follow_batches(after="0", where=EVERYTHING)
    got = await receive(follower, 60)

    assert got == [e.entry_id for e in reader.entries][: len(got)]
    await started
    await fanout.aclose()


async def test_malformed_entries_never_end_a_stream(reader: CountingReader) -> None:
    fanout = EventFanout(reader)
    follower = fanout.follow_batches(after=None, where=EVERYTHING)
    pending = asyncio.ensure_future(receive(follower, 2))
    await asyncio.sleep(0.01)

    good = add(reader, 1, 1)
    reader.add_entry({"other": "x"})
    reader.add_entry({EVENT_FIELD: "{not json"})
    good += add(reader, 2, 1)

    assert await pending == good
    await fanout.aclose()


async def test_a_failing_live_read_is_followed_again_and_followers_stay() -> None:
    reader = CountingReader(fail_follows=2)
    fanout = EventFanout(reader, retry_base_s=0.01, retry_cap_s=0.02)
    follower = fanout.follow_batches(after=None, where=EVERYTHING)
    pending = asyncio.ensure_future(receive(follower, 5))
    await asyncio.sleep(0)  # it joins; the live read fails meanwhile

    ids = add(reader, 1, 5)

    assert await pending == ids
    assert reader.follows == 3
    await fanout.aclose()


async def test_closing_ends_every_follower_at_once(reader: CountingReader) -> None:
    add(reader, 1, 2)
    fanout = EventFanout(reader)

    async def drain(follower: AsyncIterator[list[StoredEvent]]) -> list[str]:
        return [e.entry_id async for batch in follower for e in batch]

    followers = [
        asyncio.ensure_future(drain(fanout.follow_batches(after="0", where=EVERYTHING)))
        for _ in range(3)
    ]
    await asyncio.sleep(0.01)
    fanout.close()

    async with asyncio.timeout(1):
        assert await asyncio.gather(*followers) == [["1-0", "2-0"]] * 3
    assert [e async for e in fanout.follow(after="0", where=EVERYTHING)] == []
    assert reader.closed
    await fanout.aclose()
