"""The SSE event stream over real HTTP (uvicorn) on a real redis-server: a
client that disconnects, misses 100 events and reconnects with Last-Event-ID
gets exactly those 100, in order, then live ones; 200 clients each get every
event; a client that stops reading is cut with a `runplane.lagging` frame and
resumes losing nothing; team keys see only their team; a lone event is not
held for the coalescing window; closing the reader ends open streams, after
what they hold; `runplane events tail` follows it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
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
from tests.support.events import envelope
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

    async def add(self, first: int, count: int, *, pad: str = "", **changes: Any) -> list[str]:
        ids = []
        for n in range(first, first + count):
            event = json.dumps(envelope(n, **changes) | ({"pad": pad} if pad else {}))
            raw = await self.redis.xadd(self.stream, {EVENT_FIELD: event})
            ids.append(raw.decode() if isinstance(raw, bytes) else raw)
        return ids


@pytest_asyncio.fixture(loop_scope="session")
async def served(redis_server: RedisServer) -> AsyncIterator[Served]:
    async with serving(redis_server) as served:
        yield served


@contextlib.asynccontextmanager
async def serving(redis_server: RedisServer, **fanout: Any) -> AsyncIterator[Served]:
    """create_app as bootstrap builds it, with the event fan-out in its context."""
    world = World.build()
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)

    async def ok() -> None:
        return None

    client = connect(redis_server.url, decode_responses=False)
    stream = unique("events")
    reader = EventFanout(RedisEventReader(client, stream=stream, block_ms=200), **fanout)
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


async def messages(
    lines: AsyncIterator[str], count: int, *, timeout_s: float = 10
) -> list[SseMessage]:
    found: list[SseMessage] = []
    block: list[str] = []
    async with asyncio.timeout(timeout_s):
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
            header = (await tail.stdout.readline()).decode().split()
            lines = [(await tail.stdout.readline()).decode() for _ in ids]
    finally:
        tail.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            _, stderr = await tail.communicate()
    assert header == ["TIME", "TYPE", "SUBJECT", "CHANGE", "OUTCOME", "ACTOR"]
    assert [re.split(r"\s{2,}", line.strip())[1:5] for line in lines] == [
        ["runtime.stop", "rt-1", "stopping -> stopped", "success"]
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


async def test_200_followers_each_receive_every_event(served: Served) -> None:
    admin = await served.key()
    count = 100
    async with httpx.AsyncClient(
        base_url=served.url, timeout=30, limits=httpx.Limits(max_connections=250)
    ) as http:

        async def follow(ready: asyncio.Event) -> list[str]:
            async with http.stream("GET", "/v1/events/stream", headers=admin) as response:
                assert response.status_code == 200
                ready.set()
                got = await messages(response.aiter_lines(), count, timeout_s=60)
                return [m.id or "" for m in got]

        joined = [asyncio.Event() for _ in range(200)]
        followers = [asyncio.ensure_future(follow(ready)) for ready in joined]
        async with asyncio.timeout(30):
            await asyncio.gather(*(ready.wait() for ready in joined))
        await wait_until(lambda: served.reader.followers == 200)
        ids = await served.add(1, count)
        received = await asyncio.gather(*followers)
    assert received == [ids] * 200


async def test_a_lone_event_is_not_held_for_the_window_and_what_is_held_goes_out_at_close(
    redis_server: RedisServer,
) -> None:
    async with serving(redis_server, coalesce_s=3600.0) as served:  # a window never waited out
        admin = await served.key()
        async with (
            subscribed(served, admin) as lines,
            subscribed(served, admin, types="runtime.stop") as stops,
        ):
            await wait_until(lambda: served.reader.followers == 2)
            lone = await served.add(1, 1)
            assert [m.id for m in await messages(lines, 1)] == lone
            held = await served.add(2, 3)
            # The stops filter is quiet, so its event goes out at once: once it is
            # in, the fan-out has read the three before it too.
            held += await served.add(5, 1, type="runtime.stop")
            assert [m.id for m in await messages(stops, 1)] == held[-1:]
            served.reader.close()  # shutdown: what was read goes out, then the stream ends
            rest = [m.id for m in await messages(lines, 4)]
            assert [line async for line in lines] == []
    assert rest == held


async def test_a_follower_that_stops_reading_is_cut_alone_and_resumes_losing_nothing(
    redis_server: RedisServer,
) -> None:
    async with serving(redis_server, buffer_events=16) as served:
        admin = await served.key()
        slow = await _stalled_follower(served.url, admin)
        ids: list[str] = []
        async with subscribed(served, admin) as fast:
            await wait_until(lambda: served.reader.followers == 2)
            while not served.reader.lagging:  # rounds the reading follower keeps up with
                ids += await served.add(len(ids) + 1, 4, pad=PAD)
                assert [m.id for m in await messages(fast, 4)] == ids[-4:]
        got = list(parse_sse(await _drain(slow)))
        delivered = [m.id for m in got[:-1]]
        assert delivered == ids[: len(delivered)]
        assert (got[-1].event, got[-1].id) == ("runplane.lagging", delivered[-1])
        headers = admin | {"Last-Event-ID": got[-1].id or ""}
        async with subscribed(served, headers) as resumed:
            rest = await messages(resumed, len(ids) - len(delivered))
        assert delivered + [m.id for m in rest] == ids


PAD = "x" * 32_768
"""Padding in each event: the stalled client's socket and the server's buffers
fill up after a few hundred of them."""


async def _stalled_follower(url: str, headers: dict[str, str]) -> socket.socket:
    """An SSE request on a socket with a small receive buffer that nobody reads."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)  # before connect: no autotuning
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, int(port)))
    lines = ["GET /v1/events/stream HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


async def _drain(sock: socket.socket) -> list[str]:
    """Everything the server sent until it closed, as the lines of the SSE body."""
    loop = asyncio.get_running_loop()
    raw = bytearray()
    async with asyncio.timeout(60):
        while chunk := await loop.sock_recv(sock, 1 << 20):
            raw += chunk
    sock.close()
    head, _, body = bytes(raw).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    text = bytearray()
    while body:  # chunked transfer encoding
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        text += body[:size]
        body = body[size + 2 :]
    return text.decode().splitlines()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
