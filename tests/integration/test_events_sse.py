"""The SSE event stream over real HTTP (uvicorn) on a real redis-server: a
client that disconnects, misses 100 events and reconnects with Last-Event-ID
gets exactly those 100, in order, then live ones; team keys see only their team;
closing the reader ends open streams; `runplane events tail` follows it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
import redis.asyncio
import uvicorn
from cloudevents.v1.http import from_json

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.event_reader import RedisEventReader
from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.api.routes import events as routes_events
from runplane.cli.events import SseMessage, parse_sse
from runplane.domain.lifecycle_events import EVENT_FIELD
from runplane.services.api_keys import ApiKeys
from runplane.services.event_fanout import EventFanout
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.events import lifecycle_event
from tests.support.redis import RedisServer
from tests.support.serve import free_port
from tests.support.streams import sample, unique, wait_until
from tests.support.world import World


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave the test process's signal handlers alone


@dataclass
class Served:
    url: str
    redis: redis.asyncio.Redis
    stream: str
    reader: EventFanout
    keys: ApiKeys

    async def key(self, team: str | None = None) -> dict[str, str]:
        _, plaintext = await self.keys.issue(team_id=team, admin=team is None)
        return {"Authorization": f"Bearer {plaintext}"}

    async def add(self, first: int, count: int, **changes: Any) -> list[str]:
        ids = []
        for n in range(first, first + count):
            event = lifecycle_event(n, **changes).to_json()
            raw = await self.redis.xadd(self.stream, {EVENT_FIELD: event})
            ids.append(raw.decode() if isinstance(raw, bytes) else raw)
        return ids


@pytest_asyncio.fixture(loop_scope="session")
async def served(redis_server: RedisServer) -> AsyncIterator[Served]:
    """create_app as bootstrap builds it, with the event reader in its context."""
    world = World.build()
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)

    async def ok() -> None:
        return None

    client = connect(redis_server.url, decode_responses=False)
    stream = unique("events")
    reader = EventFanout(RedisEventReader(client, stream=stream, block_ms=200))
    app = create_app(
        ApiContext(
            lifecycle=world.lifecycle,
            runtimes=world.runtimes,
            operations=world.log,
            keys=keys,
            readiness={"fake": ok},
            event_reader=reader,
        )
    )
    if not any(getattr(r, "path", "") == "/v1/events/stream" for r in app.routes):
        app.include_router(routes_events.router)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started)
    try:
        yield Served(f"http://127.0.0.1:{port}", client, stream, reader, keys)
    finally:
        reader.close()  # as bootstrap does on shutdown: open streams end
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
        await reader.aclose()
        await client.aclose()


async def messages(lines: AsyncIterator[str], count: int) -> list[SseMessage]:
    found: list[SseMessage] = []
    block: list[str] = []
    async with asyncio.timeout(10):
        while len(found) < count:
            line = await anext(lines)
            block.append(line)
            if line == "":
                found += parse_sse(block)
                block = []
    return found


@contextlib.asynccontextmanager
async def subscribed(
    served: Served, headers: dict[str, str], **params: str
) -> AsyncIterator[AsyncIterator[str]]:
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=10) as http,
        http.stream("GET", "/v1/events/stream", headers=headers, params=params) as response,
    ):
        assert response.status_code == 200
        yield response.aiter_lines()


async def test_a_client_that_missed_100_events_gets_exactly_those_then_live_ones(
    served: Served,
) -> None:
    admin = await served.key()
    before = await served.add(1, 3)
    async with subscribed(served, admin) as lines:
        first = await served.add(4, 5)
        seen = await messages(lines, 5)
    assert [m.id for m in seen] == first  # nothing from before it subscribed
    assert before[-1] < first[0]
    missed = await served.add(9, 100)  # while it is away
    async with subscribed(served, admin | {"Last-Event-ID": seen[-1].id or ""}) as lines:
        replayed = await messages(lines, 100)
        live = await served.add(109, 5)
        then = await messages(lines, 5)
    assert [m.id for m in replayed] == missed
    assert [from_json(m.data)["id"] for m in replayed] == [f"evt-{n}" for n in range(9, 109)]
    assert [m.event for m in replayed] == ["runtime.start"] * 100
    assert [m.id for m in then] == live


async def test_a_team_keys_stream_never_shows_another_teams_runtimes(served: Served) -> None:
    alpha = await served.key("team-a")
    async with subscribed(served, alpha) as lines:
        await served.add(1, 3, team_id="team-b", runtime_id="rt-b")
        mine = await served.add(4, 2, team_id="team-a", runtime_id="rt-a")
        got = await messages(lines, 2)
    assert [m.id for m in got] == mine
    assert {json.loads(m.data)["subject"] for m in got} == {"rt-a"}


async def test_the_sse_clients_gauge_follows_connections(served: Served) -> None:
    admin = await served.key()
    base = sample("runplane_sse_clients")
    async with subscribed(served, admin) as lines:
        await served.add(1, 1)
        await messages(lines, 1)
        assert sample("runplane_sse_clients") == base + 1
    await wait_until(lambda: sample("runplane_sse_clients") == base)


async def test_events_tail_prints_events_and_stops_cleanly_on_ctrl_c(served: Served) -> None:
    _, key = await served.keys.issue(team_id=None, admin=True)
    ids = await served.add(1, 3, type="runtime.stop", status_from="stopping", status_to="stopped")
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import runplane.cli.events; from runplane.cli.main import main; main()",
        *("events", "tail", "--since", "0", "--type", "runtime.stop"),
        *("--url", served.url, "--api-key", key),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # A runner started in the background (CI) hands its children SIGINT
        # ignored; Ctrl-C is what is tested here, so give the CLI the default.
        preexec_fn=_default_sigint,
    )
    assert tail.stdout is not None
    try:
        async with asyncio.timeout(20):
            lines = [(await tail.stdout.readline()).decode().split() for _ in ids]
    finally:
        tail.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            _, stderr = await tail.communicate()
    assert [line[1:] for line in lines] == [
        ["runtime.stop", "rt-1", "stopping->stopped", "success"]
    ] * 3
    assert tail.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


async def test_closing_the_reader_ends_open_streams_and_tail_says_where_to_resume(
    served: Served,
) -> None:
    """What shutdown does: without it, uvicorn would wait on open streams forever."""
    _, key = await served.keys.issue(team_id=None, admin=True)
    ids = await served.add(1, 2)
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import runplane.cli.events; from runplane.cli.main import main; main()",
        *("events", "tail", "--since", "0", "--json", "--url", served.url, "--api-key", key),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # A runner started in the background (CI) hands its children SIGINT
        # ignored; Ctrl-C is what is tested here, so give the CLI the default.
        preexec_fn=_default_sigint,
    )
    assert tail.stdout is not None
    try:
        async with asyncio.timeout(20):
            printed = [json.loads(await tail.stdout.readline()) for _ in ids]
            served.reader.close()
            _, stderr = await tail.communicate()
    finally:
        if tail.returncode is None:
            tail.kill()
            await tail.wait()
    assert [event["id"] for event in printed] == ["evt-1", "evt-2"]
    assert tail.returncode == 1
    assert f"--since {ids[-1]}" in " ".join(stderr.decode().split())


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
