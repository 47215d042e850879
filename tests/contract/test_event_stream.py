"""EventPublisher and EventReader contract: the lifecycle event stream, written by
the publisher and read back by the reader, in memory and on a real Redis alike,
and through the fan-out `serve` puts in front of the reader: order, the live
channel, filters, paging, replays, following, trimming, and malformed entries
passed over."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect, open_pubsub
from runplane.adapters.redis.event_publisher import RedisEventPublisher
from runplane.adapters.redis.event_reader import RedisEventReader
from runplane.domain.errors import StoreUnavailable
from runplane.domain.event_reading import (
    ZERO_ID,
    EventFilter,
    EventsTrimmed,
    StoredEvent,
    parse_stream_id,
)
from runplane.domain.lifecycle_events import EVENT_FIELD, STATE_CHANGED, OutboxEvent
from runplane.ports.lifecycle_events import EventPublisher, EventReader
from runplane.services.event_fanout import EventFanout
from runplane.testing.event_stream import InMemoryEventPublisher, InMemoryEventReader
from tests.support.events import lifecycle_event
from tests.support.redis import free_port
from tests.support.redis_target import RedisTarget
from tests.support.streams import unique

EVERYTHING = EventFilter()
MALFORMED = (
    {"other": "x"},
    {EVENT_FIELD: "{not json"},
    {EVENT_FIELD: "[1, 2]"},
    {EVENT_FIELD: '{"no": "type"}'},
)
"""Entries a reader passes over: no `event` field, not JSON, not an object, no type."""


@dataclass(frozen=True, slots=True)
class EventStream:
    publisher: EventPublisher
    reader: EventReader
    add_entry: Callable[[dict[str, str]], Awaitable[str]]
    """XADD any fields to the durable stream (another producer's entry); its id."""
    trim_through: Callable[[str], Awaitable[None]]
    """Drop every entry up to and including this id, as retention does."""
    live: Callable[[int], Awaitable[list[str]]]
    """The payloads the live channel carried, once `count` arrived (or 5 s passed)."""
    close: Callable[[], None]
    """Close the reader: its followers end."""


def outbox_event(n: int, *, type_: str = "runtime.start", **changes: str) -> OutboxEvent:
    event = lifecycle_event(n, type=type_, **changes)
    return OutboxEvent(
        seq=n,
        event_id=event.id,
        runtime_id=event.runtime_id,
        team_id=event.team_id,
        type=event.type,
        durable=event.durable,
        payload=event.to_json(),
        created_at=event.time,
    )


async def publish(stream: EventStream, *events: OutboxEvent) -> list[str]:
    """Publish `events`; the entry ids the durable ones got, oldest first."""
    before = await stream.reader.last_id()
    await stream.publisher.publish(events)
    page = await stream.reader.page(after=before, limit=1000, where=EVERYTHING)
    return [e.entry_id for e in page.events]


async def take(events: AsyncIterator[StoredEvent], count: int) -> list[StoredEvent]:
    async with asyncio.timeout(5):
        return [await anext(events) for _ in range(count)]


def ids_of(events: list[StoredEvent]) -> list[str]:
    return [e.entry_id for e in events]


class EventStreamContract:
    """Every publisher + reader pair passes these; a subclass provides `backend`."""

    @pytest.fixture
    def backend(self) -> EventStream:
        raise NotImplementedError

    @pytest.fixture
    def stream(self, backend: EventStream) -> EventStream:
        return backend

    async def test_an_empty_stream_starts_at_zero(self, stream: EventStream) -> None:
        assert await stream.reader.last_id() == ZERO_ID
        page = await stream.reader.page(after=None, limit=10, where=EVERYTHING)
        assert (page.events, page.next_cursor) == ([], None)

    async def test_durable_events_read_back_in_order_with_their_envelopes(
        self, stream: EventStream
    ) -> None:
        events = [outbox_event(1), outbox_event(2, type_=STATE_CHANGED), outbox_event(3)]

        await stream.publisher.publish(events)

        page = await stream.reader.page(after=None, limit=10, where=EVERYTHING)
        assert [e.envelope for e in page.events] == [
            json.loads(events[0].payload),
            json.loads(events[2].payload),
        ]
        first, second = (parse_stream_id(e.entry_id) for e in page.events)
        assert first < second
        assert page.next_cursor is None
        assert await stream.reader.last_id() == page.events[-1].entry_id

    async def test_the_live_channel_carries_every_event_in_order(self, stream: EventStream) -> None:
        events = [outbox_event(1), outbox_event(2, type_=STATE_CHANGED), outbox_event(3)]

        await stream.publisher.publish(events)
        await stream.publisher.publish([outbox_event(4, type_=STATE_CHANGED)])

        assert await stream.live(4) == [e.payload for e in events] + [
            outbox_event(4, type_=STATE_CHANGED).payload
        ]

    async def test_publishing_nothing_adds_nothing(self, stream: EventStream) -> None:
        await stream.publisher.publish([])

        assert await stream.reader.last_id() == ZERO_ID
        assert await stream.live(0) == []

    async def test_pages_filter_by_type_runtime_and_team(self, stream: EventStream) -> None:
        starts = await publish(stream, *(outbox_event(n) for n in (1, 2)))
        stops = await publish(stream, outbox_event(3, type_="runtime.stop", runtime_id="rt-2"))
        other = await publish(stream, outbox_event(4, team_id="team-b", runtime_id="rt-9"))

        async def ids(where: EventFilter) -> list[str]:
            return ids_of((await stream.reader.page(after=None, limit=100, where=where)).events)

        assert await ids(EventFilter(types=frozenset({"runtime.stop"}))) == stops
        assert await ids(EventFilter(types=frozenset({"runtime.start", "runtime.stop"}))) == [
            *starts,
            *stops,
            *other,
        ]
        assert await ids(EventFilter(runtime_id="rt-9")) == other
        assert await ids(EventFilter(team_id="team-a")) == starts + stops
        assert await ids(EventFilter(team_id="team-b", runtime_id="rt-1")) == []

    async def test_pages_walk_the_stream_by_cursor(self, stream: EventStream) -> None:
        ids = await publish(stream, *(outbox_event(n) for n in range(1, 6)))
        pages = []
        cursor: str | None = None
        for _ in range(5):
            page = await stream.reader.page(after=cursor, limit=2, where=EVERYTHING)
            pages.append((ids_of(page.events), page.next_cursor))
            cursor = page.next_cursor
            if cursor is None:
                break

        assert pages == [(ids[0:2], ids[1]), (ids[2:4], ids[3]), (ids[4:], None)]

    async def test_a_page_that_fills_up_has_a_cursor_even_at_the_end(
        self, stream: EventStream
    ) -> None:
        ids = await publish(stream, *(outbox_event(n) for n in range(1, 5)))

        full = await stream.reader.page(after=ids[1], limit=2, where=EVERYTHING)
        after = await stream.reader.page(after=full.next_cursor, limit=2, where=EVERYTHING)

        assert (ids_of(full.events), full.next_cursor) == (ids[2:], ids[3])
        assert (after.events, after.next_cursor) == ([], None)

    async def test_a_cursor_older_than_the_stream_goes_on_from_its_oldest_entry(
        self, stream: EventStream
    ) -> None:
        ids = await publish(stream, *(outbox_event(n) for n in range(1, 6)))
        await stream.trim_through(ids[1])

        page = await stream.reader.page(after=ids[0], limit=10, where=EVERYTHING)
        everything = await stream.reader.page(after=None, limit=10, where=EVERYTHING)

        assert ids_of(page.events) == ids[2:]
        assert ids_of(everything.events) == ids[2:]

    async def test_replay_pages_after_a_position(self, stream: EventStream) -> None:
        ids = await publish(stream, *(outbox_event(n) for n in range(1, 6)))
        await publish(stream, outbox_event(6, type_="runtime.stop"))

        full = await stream.reader.replay(after=ids[0], limit=2, where=EVERYTHING)
        rest = await stream.reader.replay(
            after=str(full.next_cursor),
            limit=10,
            where=EventFilter(types=frozenset({"runtime.start"})),
        )

        assert (ids_of(full.events), full.next_cursor) == (ids[1:3], ids[2])
        assert (ids_of(rest.events), rest.next_cursor) == (ids[3:], None)

    async def test_replay_raises_events_trimmed_where_a_page_goes_on(
        self, stream: EventStream
    ) -> None:
        ids = await publish(stream, *(outbox_event(n) for n in range(1, 6)))
        await stream.trim_through(ids[1])

        with pytest.raises(EventsTrimmed) as raised:
            await stream.reader.replay(after=ids[0], limit=10, where=EVERYTHING)
        kept = await stream.reader.replay(after=ids[2], limit=10, where=EVERYTHING)

        assert raised.value.after == ids[0]
        assert ids_of(kept.events) == ids[3:]

    async def test_malformed_entries_are_passed_over(self, stream: EventStream) -> None:
        good = await publish(stream, outbox_event(1))
        for fields in MALFORMED:
            await stream.add_entry(dict(fields))
        good += await publish(stream, outbox_event(2))
        newest = await stream.add_entry({EVENT_FIELD: "null"})

        page = await stream.reader.page(after=None, limit=100, where=EVERYTHING)
        replayed = await stream.reader.replay(after=ZERO_ID, limit=100, where=EVERYTHING)
        events = stream.reader.follow(after=ZERO_ID, where=EVERYTHING)
        followed = await take(events, 2)
        await events.aclose()  # type: ignore[attr-defined]

        assert ids_of(page.events) == good
        assert ids_of(replayed.events) == good
        assert ids_of(followed) == good
        assert await stream.reader.last_id() == newest

    async def test_follow_replays_after_a_position_then_goes_live(
        self, stream: EventStream
    ) -> None:
        ids = await publish(stream, *(outbox_event(n) for n in range(1, 6)))
        events = stream.reader.follow(after=ids[1], where=EVERYTHING)

        replayed = await take(events, 3)
        pending = asyncio.ensure_future(take(events, 2))
        await asyncio.sleep(0.05)  # the follower now waits for new entries
        await stream.publisher.publish([outbox_event(6), outbox_event(7)])
        live = await pending
        await events.aclose()  # type: ignore[attr-defined]

        assert ids_of(replayed) == ids[2:]
        assert [e.envelope["id"] for e in live] == ["evt-6", "evt-7"]
        assert parse_stream_id(live[0].entry_id) > parse_stream_id(ids[-1])

    async def test_follow_without_a_position_starts_after_the_newest_entry(
        self, stream: EventStream
    ) -> None:
        await publish(stream, outbox_event(1), outbox_event(2))
        stops = EventFilter(types=frozenset({"runtime.stop"}))
        events = stream.reader.follow(after=None, where=stops)
        pending = asyncio.ensure_future(take(events, 2))
        await asyncio.sleep(0.1)

        await stream.publisher.publish(
            [
                outbox_event(3, type_="runtime.stop"),
                outbox_event(4),  # filtered out
                outbox_event(5, type_="runtime.stop"),
            ]
        )

        assert [e.envelope["id"] for e in await pending] == ["evt-3", "evt-5"]
        await events.aclose()  # type: ignore[attr-defined]

    async def test_follow_raises_events_trimmed_when_what_followed_its_position_is_gone(
        self, stream: EventStream
    ) -> None:
        ids = await publish(stream, *(outbox_event(n) for n in range(1, 7)))
        await stream.trim_through(ids[3])

        with pytest.raises(EventsTrimmed) as raised:
            await take(stream.reader.follow(after=ids[0], where=EVERYTHING), 1)
        untouched = stream.reader.follow(after=ids[4], where=EVERYTHING)
        rest = await take(untouched, 1)
        await untouched.aclose()  # type: ignore[attr-defined]

        assert raised.value.after == ids[0]
        assert ids_of(rest) == ids[5:]

    async def test_closing_the_reader_ends_its_followers(self, stream: EventStream) -> None:
        await publish(stream, outbox_event(1), outbox_event(2))

        async def drain(events: AsyncIterator[StoredEvent]) -> list[str]:
            return [event.envelope["id"] async for event in events]

        followers = [
            asyncio.ensure_future(drain(stream.reader.follow(after=ZERO_ID, where=EVERYTHING)))
            for _ in range(2)
        ]
        await asyncio.sleep(0.1)  # both have read what there is and wait for more
        stream.close()

        async with asyncio.timeout(3):
            assert await asyncio.gather(*followers) == [["evt-1", "evt-2"]] * 2


class TestInMemoryEventStream(EventStreamContract):
    @pytest.fixture
    def backend(self) -> EventStream:
        reader = InMemoryEventReader()
        publisher = InMemoryEventPublisher(reader)

        async def add_entry(fields: dict[str, str]) -> str:
            return reader.add_entry(fields)

        async def trim_through(entry_id: str) -> None:
            reader.trim(entry_id)

        async def live(count: int) -> list[str]:
            return list(publisher.live)

        return EventStream(publisher, reader, add_entry, trim_through, live, reader.close)


class TestRedisEventStream(EventStreamContract):
    @pytest.fixture
    async def client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        client = redis_target.connect()
        yield client
        await client.aclose()

    @pytest.fixture
    async def reader_client(self, redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
        """A bytes client, as the reader's docstring asks."""
        client = redis_target.connect(decode_responses=False)
        yield client
        await client.aclose()

    @pytest.fixture
    def name(self) -> str:
        return unique("events")

    @pytest.fixture
    async def backend(
        self, client: redis.asyncio.Redis, reader_client: redis.asyncio.Redis, name: str
    ) -> AsyncIterator[EventStream]:
        channel = f"{name}:live"
        publisher = RedisEventPublisher(client, stream=name, channel=channel)
        reader = RedisEventReader(reader_client, stream=name, block_ms=200)  # tail ends within it
        pubsub = await open_pubsub(client)
        await pubsub.subscribe(channel)
        await pubsub.get_message(timeout=1)  # the subscription's confirmation

        async def add_entry(fields: dict[str, str]) -> str:
            return str(await client.xadd(name, fields))  # type: ignore[arg-type]

        async def trim_through(entry_id: str) -> None:
            ms, seq = parse_stream_id(entry_id)
            await client.xtrim(name, minid=f"{ms}-{seq + 1}", approximate=False)

        async def live(count: int) -> list[str]:
            payloads: list[str] = []
            async with asyncio.timeout(5):
                while len(payloads) < count:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                    if message is not None:
                        payloads.append(message["data"])
            return payloads

        try:
            yield EventStream(publisher, reader, add_entry, trim_through, live, reader.close)
        finally:
            await reader.aclose()
            await pubsub.aclose()

    async def test_a_page_looks_at_a_bounded_number_of_entries(
        self, stream: EventStream, reader_client: redis.asyncio.Redis, name: str
    ) -> None:
        skipped = await publish(stream, *(outbox_event(n, team_id="team-b") for n in range(1, 31)))
        wanted = await publish(stream, outbox_event(31))
        reader = RedisEventReader(reader_client, stream=name, batch_size=8, scan_max=20)
        where = EventFilter(team_id="team-a")

        first = await reader.page(after=None, limit=10, where=where)
        second = await reader.page(after=first.next_cursor, limit=10, where=where)

        assert (first.events, first.next_cursor) == ([], skipped[19])
        assert (ids_of(second.events), second.next_cursor) == (wanted, None)

    async def test_unreachable_redis_raises_store_unavailable(self) -> None:
        client = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
        reader = RedisEventReader(client, block_ms=200)
        try:
            with pytest.raises(StoreUnavailable):
                await RedisEventPublisher(client).publish([outbox_event(1)])
            with pytest.raises(StoreUnavailable):
                await reader.last_id()
            with pytest.raises(StoreUnavailable):
                await reader.page(after=None, limit=10, where=EVERYTHING)
        finally:
            await reader.aclose()
            await client.aclose()


class FannedOut:
    """The same stream read through an EventFanout, as `runplane serve` reads it."""

    @pytest.fixture
    async def stream(self, backend: EventStream) -> AsyncIterator[EventStream]:
        fanout = EventFanout(backend.reader)

        def close() -> None:
            fanout.close()
            backend.close()

        yield dataclasses.replace(backend, reader=fanout, close=close)
        await fanout.aclose()


class TestFannedOutInMemoryEventStream(FannedOut, TestInMemoryEventStream):
    pass


class TestFannedOutRedisEventStream(FannedOut, TestRedisEventStream):
    pass
