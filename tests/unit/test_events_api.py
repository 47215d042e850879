"""The event routes over the fan-out of an in-memory EventReader: filters, team
scope, paging, SSE framing, resume, resync, lagging and the SSE client gauge."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from cloudevents.v1.http import from_json
from fastapi import FastAPI
from sse_starlette import ServerSentEvent

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.api.routes import events as routes_events
from runplane.cli.events import SseMessage, parse_sse
from runplane.domain.errors import StoreUnavailable
from runplane.domain.event_reading import EventFilter, EventPage, StoredEvent
from runplane.services.api_keys import ApiKeys
from runplane.services.event_fanout import EventFanout
from runplane.testing.event_stream import InMemoryEventReader
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.events import lifecycle_event
from tests.support.streams import sample
from tests.support.world import World


@dataclass
class EventsApi:
    app: FastAPI
    http: httpx.AsyncClient
    keys: ApiKeys
    reader: InMemoryEventReader
    fanout: EventFanout

    async def key(self, team: str | None = None) -> dict[str, str]:
        _, plaintext = await self.keys.issue(team_id=team, admin=team is None)
        return {"Authorization": f"Bearer {plaintext}"}

    async def sse(self, headers: dict[str, str], **params: str) -> list[SseMessage]:
        """The whole stream (the reader is closed first, so it ends)."""
        self.reader.close()
        response = await self.http.get("/v1/events/stream", params=params, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(parse_sse(response.text.splitlines()))


def with_event_routes(app: FastAPI) -> FastAPI:
    """The app as bootstrap builds it (the router may already be included)."""
    if not any(getattr(r, "path", "") == "/v1/events/stream" for r in app.routes):
        app.include_router(routes_events.router)
    return app


@pytest.fixture
async def api(world: World) -> AsyncIterator[EventsApi]:
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)

    async def ok() -> None:
        return None

    reader = InMemoryEventReader()
    fanout = EventFanout(reader)
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=keys,
        readiness={"fake": ok},
        event_reader=fanout,
    )
    app = with_event_routes(create_app(context))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        yield EventsApi(app, client, keys, reader, fanout)
    await fanout.aclose()


async def frames_of(frames: AsyncIterator[bytes | ServerSentEvent]) -> list[SseMessage]:
    """The messages of the next chunk the route writes."""
    chunk = await anext(frames)
    encoded = chunk.encode() if isinstance(chunk, ServerSentEvent) else chunk
    return list(parse_sse(encoded.decode().splitlines()))


def add_mixed(reader: InMemoryEventReader) -> None:
    """1: a/rt-1 start, 2: b/rt-2 start, 3: a/rt-1 stop, 4: a/rt-3 pause, 5: b/rt-2 stop."""
    for n, (team, runtime, type) in enumerate(
        [
            ("team-a", "rt-1", "runtime.start"),
            ("team-b", "rt-2", "runtime.start"),
            ("team-a", "rt-1", "runtime.stop"),
            ("team-a", "rt-3", "runtime.pause"),
            ("team-b", "rt-2", "runtime.stop"),
        ],
        start=1,
    ):
        reader.add(lifecycle_event(n, type=type, runtime_id=runtime, team_id=team))


async def test_a_page_lists_events_oldest_first_with_their_entry_ids(api: EventsApi) -> None:
    add_mixed(api.reader)
    page = await api.http.get("/v1/events", headers=await api.key())
    assert page.status_code == 200
    body = page.json()
    assert [e["id"] for e in body["events"]] == ["1-0", "2-0", "3-0", "4-0", "5-0"]
    assert body["next_cursor"] is None
    first = from_json(json.dumps(body["events"][0]["event"]))
    assert (first["type"], first["subject"], first["id"]) == ("runtime.start", "rt-1", "evt-1")


async def test_pages_follow_the_cursor_to_the_end(api: EventsApi) -> None:
    add_mixed(api.reader)
    admin = await api.key()
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params = {"limit": "2"} | ({"after": cursor} if cursor else {})
        body = (await api.http.get("/v1/events", params=params, headers=admin)).json()
        seen += [e["id"] for e in body["events"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["1-0", "2-0", "3-0", "4-0", "5-0"]
    assert cursor is None


async def test_type_filters_take_repeated_and_comma_separated_values(api: EventsApi) -> None:
    add_mixed(api.reader)
    admin = await api.key()
    repeated = await api.http.get(
        "/v1/events", params=[("type", "runtime.stop"), ("type", "runtime.pause")], headers=admin
    )
    commas = await api.http.get(
        "/v1/events", params={"type": "runtime.stop,runtime.pause"}, headers=admin
    )
    by_runtime = await api.http.get(
        "/v1/events", params={"runtime_id": "rt-2", "type": "runtime.stop"}, headers=admin
    )
    assert [e["id"] for e in repeated.json()["events"]] == ["3-0", "4-0", "5-0"]
    assert commas.json() == repeated.json()
    assert [e["id"] for e in by_runtime.json()["events"]] == ["5-0"]


async def test_a_team_key_sees_only_its_teams_events(api: EventsApi) -> None:
    add_mixed(api.reader)
    alpha = await api.key("team-a")
    page = await api.http.get("/v1/events", headers=alpha)
    other_runtime = await api.http.get("/v1/events", params={"runtime_id": "rt-2"}, headers=alpha)
    streamed = await api.sse(alpha, last_event_id="0")
    assert [e["id"] for e in page.json()["events"]] == ["1-0", "3-0", "4-0"]
    assert {e["event"]["data"]["team_id"] for e in page.json()["events"]} == {"team-a"}
    assert other_runtime.json()["events"] == []
    assert [m.id for m in streamed] == ["1-0", "3-0", "4-0"]


async def test_bad_filters_and_positions_are_invalid_requests(api: EventsApi) -> None:
    admin = await api.key()
    answers = [
        await api.http.get("/v1/events", params={"type": "runtime.explode"}, headers=admin),
        await api.http.get("/v1/events", params={"type": "runtime.state.changed"}, headers=admin),
        await api.http.get("/v1/events", params={"after": "yesterday"}, headers=admin),
        await api.http.get("/v1/events", params={"limit": "1001"}, headers=admin),
        await api.http.get("/v1/events", params={"limit": "0"}, headers=admin),
        await api.http.get("/v1/events/stream", params={"types": "nope"}, headers=admin),
        await api.http.get("/v1/events/stream", headers=admin | {"Last-Event-ID": "x-1"}),
    ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_request"
    assert "transient" in answers[1].json()["error"]["message"]


async def test_event_routes_need_a_key_and_a_configured_reader(api: EventsApi) -> None:
    assert (await api.http.get("/v1/events")).status_code == 401
    assert (await api.http.get("/v1/events/stream")).status_code == 401
    api.app.state.context = dataclasses.replace(api.app.state.context, event_reader=None)
    admin = await api.key()
    for path in ("/v1/events", "/v1/events/stream"):
        answer = await api.http.get(path, headers=admin)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "service_unavailable"


async def test_the_stream_frames_each_event_with_entry_id_type_and_envelope(
    api: EventsApi,
) -> None:
    add_mixed(api.reader)
    messages = await api.sse(await api.key(), last_event_id="0")
    assert [m.id for m in messages] == ["1-0", "2-0", "3-0", "4-0", "5-0"]
    assert [m.event for m in messages][:3] == ["runtime.start", "runtime.start", "runtime.stop"]
    for message in messages:
        event = from_json(message.data)
        assert event["type"] == message.event
        assert event.data is not None
    assert json.loads(messages[0].data) == api.reader.entries[0].envelope


async def test_the_stream_resumes_after_last_event_id_from_header_or_query(
    api: EventsApi,
) -> None:
    add_mixed(api.reader)
    admin = await api.key()
    by_header = await api.sse(admin | {"Last-Event-ID": "2-0"})
    by_query = await api.sse(admin, last_event_id="2-0")
    filtered = await api.sse(admin, last_event_id="2-0", types="runtime.stop", runtime_id="rt-2")
    assert [m.id for m in by_header] == ["3-0", "4-0", "5-0"]
    assert [m.id for m in by_query] == ["3-0", "4-0", "5-0"]
    assert [m.id for m in filtered] == ["5-0"]


async def test_a_new_subscriber_starts_at_the_newest_event(api: EventsApi) -> None:
    add_mixed(api.reader)
    assert await api.sse(await api.key()) == []


async def test_a_client_resuming_past_trimmed_events_is_told_to_resync(api: EventsApi) -> None:
    for n in range(1, 11):
        api.reader.add(lifecycle_event(n))
    api.reader.trim("5-0")
    admin = await api.key()
    lost = await api.sse(admin | {"Last-Event-ID": "3-0"})
    kept = await api.sse(admin | {"Last-Event-ID": "5-0"})
    assert [(m.event, m.id) for m in lost] == [("resync", "10-0")]
    assert json.loads(lost[0].data)["last_event_id"] == "3-0"
    assert json.loads(lost[0].data)["resume_id"] == "10-0"
    assert [m.id for m in kept] == ["6-0", "7-0", "8-0", "9-0", "10-0"]


async def test_a_live_follower_gets_new_events_in_order(api: EventsApi) -> None:
    api.reader.add(lifecycle_event(1))
    frames = routes_events.event_frames(api.fanout, await api.reader.last_id(), EventFilter())
    for n in range(2, 5):
        api.reader.add(lifecycle_event(n))
    got = await frames_of(frames)  # the replay, in one write
    api.reader.add(lifecycle_event(5))
    got += await frames_of(frames)  # then live
    await frames.aclose()  # type: ignore[attr-defined]
    assert [f.id for f in got] == ["2-0", "3-0", "4-0", "5-0"]


async def test_a_follower_cut_by_trimming_past_the_live_events_resumes_or_resyncs(
    api: EventsApi,
) -> None:
    frames = routes_events.event_frames(api.fanout, "0", EventFilter())
    api.reader.add(lifecycle_event(1))
    api.reader.add(lifecycle_event(2))
    assert [m.id for m in await frames_of(frames)] == ["1-0", "2-0"]
    for n in range(3, 7):
        api.reader.add(lifecycle_event(n))
    api.reader.trim("4-0")  # 3 and 4 went before even the live reader read them
    cut = await frames_of(frames)
    assert [(m.event, m.id) for m in cut] == [("runplane.lagging", "2-0")]
    assert "Last-Event-ID" in json.loads(cut[0].data)["reason"]
    with pytest.raises(StopAsyncIteration):
        await anext(frames)
    resumed = routes_events.event_frames(api.fanout, "2-0", EventFilter())
    resync = await frames_of(resumed)
    assert [(m.event, m.id) for m in resync] == [("resync", "6-0")]
    assert json.loads(resync[0].data)["last_event_id"] == "2-0"


async def test_the_sse_clients_gauge_counts_open_streams(api: EventsApi) -> None:
    before = sample("runplane_sse_clients")
    api.reader.add(lifecycle_event(1))
    frames = routes_events.event_frames(api.fanout, "0", EventFilter())
    await anext(frames)
    assert sample("runplane_sse_clients") == before + 1
    await frames.aclose()  # type: ignore[attr-defined]
    assert sample("runplane_sse_clients") == before


class FailingReader(InMemoryEventReader):
    """Its replay hands out one page, then Redis is gone."""

    async def replay(self, *, after: str, limit: int, where: EventFilter) -> EventPage:
        if after == "0-0":
            return EventPage([StoredEvent("1-0", {"type": "runtime.start"})], "1-0")
        raise StoreUnavailable("redis unavailable during events.follow")


async def test_a_failing_reader_ends_the_stream_after_what_was_delivered(api: EventsApi) -> None:
    before = sample("runplane_sse_clients")
    fanout = EventFanout(FailingReader())
    frames = routes_events.event_frames(fanout, "0", EventFilter())
    got = [m for chunk in [c async for c in frames] for m in parse_sse(_text(chunk).splitlines())]
    await fanout.aclose()
    assert [m.id for m in got] == ["1-0"]
    assert sample("runplane_sse_clients") == before


def _text(chunk: bytes | ServerSentEvent) -> str:
    return (chunk.encode() if isinstance(chunk, ServerSentEvent) else chunk).decode()
