"""RedisEventReader against a real redis-server: pages by position, filters,
follow = replay then live with no gap and no duplicate, malformed entries
skipped, trimming detected (Redis 7's XINFO, and the embedded Redis 6.2)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio
from cloudevents.v1.http import from_json

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.embedded import EmbeddedRedis
from runplane.adapters.redis.event_reader import RedisEventReader
from runplane.domain.event_reading import EventFilter, EventsTrimmed, StoredEvent
from runplane.domain.lifecycle_events import EVENT_FIELD
from runplane.services.event_fanout import EventFanout
from tests.support.events import lifecycle_event
from tests.support.redis import RedisServer
from tests.support.streams import sample, unique

EVERYTHING = EventFilter()


@pytest_asyncio.fixture(loop_scope="session")
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_server.url, decode_responses=False)
    yield client
    await client.aclose()


@pytest.fixture
def stream() -> str:
    return unique("events")


Make = Callable[..., RedisEventReader]


@contextlib.asynccontextmanager
async def reader_factory(client: redis.asyncio.Redis, stream: str) -> AsyncIterator[Make]:
    """Readers on `stream`, closed (their tails ended) before the client is."""
    made: list[RedisEventReader] = []

    def make(**settings: Any) -> RedisEventReader:
        settings.setdefault("block_ms", 200)  # a closed reader's tail ends within it
        made.append(RedisEventReader(client, stream=stream, **settings))
        return made[-1]

    try:
        yield make
    finally:
        for reader in made:
            await reader.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def readers(client: redis.asyncio.Redis, stream: str) -> AsyncIterator[Make]:
    async with reader_factory(client, stream) as make:
        yield make


async def add(
    client: redis.asyncio.Redis, stream: str, count: int, *, first: int = 1, **changes: Any
) -> list[str]:
    ids = []
    for n in range(first, first + count):
        raw = await client.xadd(stream, {EVENT_FIELD: lifecycle_event(n, **changes).to_json()})
        ids.append(raw.decode() if isinstance(raw, bytes) else raw)
    return ids


async def take(events: AsyncIterator[StoredEvent], count: int) -> list[StoredEvent]:
    async with asyncio.timeout(10):
        return [await anext(events) for _ in range(count)]


async def test_pages_walk_the_stream_by_position(
    client: redis.asyncio.Redis, stream: str, readers: Make
) -> None:
    ids = await add(client, stream, 25)
    reader = readers(batch_size=7)
    first = await reader.page(after=None, limit=10, where=EVERYTHING)
    second = await reader.page(after=first.next_cursor, limit=10, where=EVERYTHING)
    third = await reader.page(after=second.next_cursor, limit=10, where=EVERYTHING)
    assert [e.entry_id for e in first.events + second.events + third.events] == ids
    assert (first.next_cursor, second.next_cursor, third.next_cursor) == (ids[9], ids[19], None)
    envelope = from_json(_json(first.events[0].envelope))
    assert (envelope["id"], envelope["subject"]) == ("evt-1", "rt-1")


async def test_pages_filter_by_type_runtime_and_team(
    client: redis.asyncio.Redis, stream: str, readers: Make
) -> None:
    starts = await add(client, stream, 3, team_id="team-a")
    stops = await add(client, stream, 3, first=4, type="runtime.stop", runtime_id="rt-2")
    other = await add(client, stream, 2, first=7, team_id="team-b", runtime_id="rt-9")
    reader = readers()

    async def ids(where: EventFilter) -> list[str]:
        return [e.entry_id for e in (await reader.page(after=None, limit=100, where=where)).events]

    assert await ids(EventFilter(types=frozenset({"runtime.stop"}))) == stops
    assert await ids(EventFilter(runtime_id="rt-9")) == other
    assert await ids(EventFilter(team_id="team-a")) == starts + stops
    assert await ids(EventFilter(team_id="team-b", runtime_id="rt-1")) == []


async def test_a_page_looks_at_a_bounded_number_of_entries(
    client: redis.asyncio.Redis, stream: str, readers: Make
) -> None:
    skipped = await add(client, stream, 50, team_id="team-b")
    wanted = await add(client, stream, 1, first=51, team_id="team-a")
    reader = readers(batch_size=8, scan_max=20)
    where = EventFilter(team_id="team-a")
    page = await reader.page(after=None, limit=10, where=where)
    assert (page.events, page.next_cursor) == ([], skipped[19])
    found: list[str] = []
    cursor = page.next_cursor
    while cursor is not None:
        page = await reader.page(after=cursor, limit=10, where=where)
        found += [e.entry_id for e in page.events]
        cursor = page.next_cursor
    assert found == wanted


async def test_follow_replays_after_an_id_then_goes_live(
    client: redis.asyncio.Redis, stream: str, readers: Make
) -> None:
    ids = await add(client, stream, 150)
    reader = readers(batch_size=32)
    events = reader.follow(after=ids[49], where=EVERYTHING)
    replayed = await take(events, 100)
    assert [e.entry_id for e in replayed] == ids[50:]
    assert [e.envelope["id"] for e in replayed] == [f"evt-{n}" for n in range(51, 151)]
    pending = asyncio.ensure_future(take(events, 10))
    await asyncio.sleep(0.05)  # the follower now waits for live entries
    live_ids = await add(client, stream, 10, first=151)
    assert [e.entry_id for e in await pending] == live_ids
    await events.aclose()  # type: ignore[attr-defined]


async def test_follow_without_a_position_starts_after_the_newest_entry(
    client: redis.asyncio.Redis, stream: str, readers: Make
) -> None:
    await add(client, stream, 5)
    reader = readers()
    events = reader.follow(after=None, where=EventFilter(types=frozenset({"runtime.stop"})))
    first = asyncio.ensure_future(take(events, 2))
    await asyncio.sleep(0.1)
    await add(client, stream, 2, first=6)  # filtered out
    stops = await add(client, stream, 2, first=8, type="runtime.stop")
    assert [e.entry_id for e in await first] == stops
    await events.aclose()  # type: ignore[attr-defined]


async def test_a_slow_follower_loses_nothing(
    client: redis.asyncio.Redis, stream: str, readers: Make
) -> None:
    reader = readers(batch_size=16)
    events = reader.follow(after="0", where=EVERYTHING)
    ids = await add(client, stream, 20)
    received = await take(events, 10)
    ids += await add(client, stream, 400, first=21)  # while the client is busy elsewhere
    received += await take(events, 410)
    assert [e.entry_id for e in received] == ids
    await events.aclose()  # type: ignore[attr-defined]


async def test_malformed_entries_are_skipped_with_a_warning(
    client: redis.asyncio.Redis, stream: str, caplog: pytest.LogCaptureFixture, readers: Make
) -> None:
    good = await add(client, stream, 1)
    for fields in (
        {"other": "x"},
        {EVENT_FIELD: "{not json"},
        {EVENT_FIELD: "[1, 2]"},
        {EVENT_FIELD: '{"no": "type"}'},
        {EVENT_FIELD: b"\xff\xfe\x00"},
        {EVENT_FIELD: '{"type": "x", "data": ' + "[" * 10_000 + "]" * 10_000 + "}"},
        {EVENT_FIELD: '{"type": "x", "subject": "\\ud800"}'},
    ):
        await client.xadd(stream, fields)  # type: ignore[arg-type]
    good += await add(client, stream, 1, first=2)
    reader = readers()
    before = sample("runplane_stream_entries_passed_over_total", stream=stream)
    with caplog.at_level(logging.WARNING, logger="runplane.adapters.redis.passed_over"):
        page = await reader.page(after=None, limit=100, where=EVERYTHING)
        events = reader.follow(after="0", where=EVERYTHING)
        followed = await take(events, 2)
        await events.aclose()  # type: ignore[attr-defined]
    assert [e.entry_id for e in page.events] == good
    assert [e.entry_id for e in followed] == good
    skipped = [
        r for r in caplog.records if r.getMessage() == "undecodable stream entry passed over"
    ]
    assert len(skipped) == 7  # each id once, though read twice
    assert sample("runplane_stream_entries_passed_over_total", stream=stream) - before == 14


async def test_many_followers_share_one_blocking_read(
    redis_server: RedisServer, stream: str
) -> None:
    db = "11"  # a database of its own: other tests' tails may still be blocked elsewhere
    client = connect(f"redis://127.0.0.1:{redis_server.port}/{db}", decode_responses=False)
    async with reader_factory(client, stream) as make:
        await many_followers_share_one_blocking_read(client, make(block_ms=2000), db, stream)
    await client.aclose()


async def many_followers_share_one_blocking_read(
    client: redis.asyncio.Redis, reader: RedisEventReader, db: str, stream: str
) -> None:
    """Through the fan-out `serve` puts in front of the reader."""
    fanout = EventFanout(reader)
    followers = [fanout.follow(after="0", where=EVERYTHING) for _ in range(20)]
    pending = [asyncio.ensure_future(take(f, 3)) for f in followers]
    await asyncio.sleep(0.2)
    listing = await client.client_list()
    blocked = [c for c in listing if c.get("db") == db and "b" in c.get("flags", "")]
    assert len(blocked) == 1
    ids = await add(client, stream, 3)
    for got in await asyncio.gather(*pending):
        assert [e.entry_id for e in got] == ids
    for follower in followers:
        await follower.aclose()  # type: ignore[attr-defined]
    await fanout.aclose()


async def test_close_ends_every_follower(
    client: redis.asyncio.Redis, stream: str, readers: Make
) -> None:
    await add(client, stream, 2)
    reader = readers()
    followers = [reader.follow(after="0", where=EVERYTHING) for _ in range(3)]

    async def drain(events: AsyncIterator[StoredEvent]) -> int:
        return len([e async for e in events])

    drained = [asyncio.ensure_future(drain(f)) for f in followers]
    await asyncio.sleep(0.1)
    reader.close()
    async with asyncio.timeout(2):
        assert await asyncio.gather(*drained) == [2, 2, 2]


@pytest_asyncio.fixture(loop_scope="session", params=["redis-7", "embedded-6.2"])
async def any_client(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[redis.asyncio.Redis]:
    """Redis 7 says exactly what was trimmed (max-deleted-entry-id); the embedded
    Redis 6.2 does not, and the reader falls back to the first entry."""
    if request.param == "redis-7":
        client = connect(redis_server.url, decode_responses=False)
        yield client
        await client.aclose()
        return
    server = EmbeddedRedis(tmp_path / "embedded")
    url = await asyncio.to_thread(server.start)
    client = connect(url, decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()
        await asyncio.to_thread(server.stop)


@pytest_asyncio.fixture(loop_scope="session")
async def any_readers(any_client: redis.asyncio.Redis, stream: str) -> AsyncIterator[Make]:
    async with reader_factory(any_client, stream) as make:
        yield make


async def test_resuming_past_trimmed_entries_raises_events_trimmed(
    any_client: redis.asyncio.Redis, stream: str, any_readers: Make
) -> None:
    ids = await add(any_client, stream, 10)
    await any_client.xtrim(stream, maxlen=5, approximate=False)  # ids[0..4] are gone
    reader = any_readers()
    with pytest.raises(EventsTrimmed):
        await take(reader.follow(after=ids[2], where=EVERYTHING), 1)
    from_anchor = reader.follow(after=ids[5], where=EVERYTHING)
    from_start = reader.follow(after="0", where=EVERYTHING)
    assert [e.entry_id for e in await take(from_anchor, 4)] == ids[6:]
    assert [e.entry_id for e in await take(from_start, 5)] == ids[5:]
    for events in (from_anchor, from_start):
        await events.aclose()  # type: ignore[attr-defined]


async def test_a_follower_overtaken_by_trimming_raises_events_trimmed(
    any_client: redis.asyncio.Redis, stream: str, any_readers: Make
) -> None:
    ids = await add(any_client, stream, 10)
    reader = any_readers(batch_size=2)
    events = reader.follow(after="0", where=EVERYTHING)
    assert [e.entry_id for e in await take(events, 2)] == ids[:2]
    await any_client.xtrim(stream, maxlen=5, approximate=False)
    with pytest.raises(EventsTrimmed):
        await take(events, 1)


async def test_resuming_in_a_stream_never_trimmed_replays_it_all(
    client: redis.asyncio.Redis, stream: str, readers: Make
) -> None:
    ids = await add(client, stream, 5)
    reader = readers()
    events = reader.follow(after="1000-0", where=EVERYTHING)  # before it, never an entry
    assert [e.entry_id for e in await take(events, 5)] == ids
    await events.aclose()  # type: ignore[attr-defined]


def _json(envelope: dict[str, Any]) -> str:
    return json.dumps(envelope)
