"""RedisEventReader.latest against a real redis-server: the newest events first
(`GET /v1/events?order=desc`), paged towards the oldest, filtered by team, and
looking at a bounded number of entries per page, as page() does forwards."""

from __future__ import annotations

import redis.asyncio

from runplane.domain.event_reading import ZERO_ID, EventFilter
from tests.integration.test_events_reader import EVERYTHING, Make, add, client, readers, stream

__all__ = ["client", "readers", "stream"]  # the reader tests' fixtures, shared


async def test_latest_pages_from_the_newest_to_the_oldest(
    client: redis.asyncio.Redis, stream: str, readers: Make
) -> None:
    ids = await add(client, stream, 25)
    reader = readers(batch_size=7)
    first = await reader.latest(before=None, limit=10, where=EVERYTHING)
    second = await reader.latest(before=first.next_cursor, limit=10, where=EVERYTHING)
    third = await reader.latest(before=second.next_cursor, limit=10, where=EVERYTHING)
    newest_first = list(reversed(ids))
    assert [e.entry_id for e in first.events + second.events + third.events] == newest_first
    assert (first.next_cursor, second.next_cursor, third.next_cursor) == (ids[15], ids[5], None)
    assert (await reader.latest(before=ZERO_ID, limit=10, where=EVERYTHING)).events == []


async def test_latest_filters_by_team_and_looks_at_a_bounded_number_of_entries(
    client: redis.asyncio.Redis, stream: str, readers: Make
) -> None:
    wanted = await add(client, stream, 2, team_id="team-a")
    other = await add(client, stream, 50, first=3, team_id="team-b")
    reader = readers(batch_size=8, scan_max=20)
    where = EventFilter(team_id="team-a")
    page = await reader.latest(before=None, limit=10, where=where)
    # A page read 20 of team-b's entries and found none of team-a's: it says
    # where to go on from, as page() does, rather than reading on without bound.
    assert (page.events, page.next_cursor) == ([], other[-20])
    found: list[str] = []
    cursor = page.next_cursor
    while cursor is not None:
        page = await reader.latest(before=cursor, limit=10, where=where)
        assert all(e.envelope["data"]["team_id"] == "team-a" for e in page.events)
        found += [e.entry_id for e in page.events]
        cursor = page.next_cursor
    assert found == list(reversed(wanted))
