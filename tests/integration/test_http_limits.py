"""What a slow or hostile client can make runplane hold, over real HTTP: the app
under uvicorn as `serve` configures it, spoken to with raw sockets. No timing
assertions: each test waits (generously) for the answer and the close."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.api.limits import ApiLimits
from runplane.api.routes import events as routes_events
from runplane.bootstrap.serve import uvicorn_config
from runplane.config import Settings
from runplane.services.api_keys import ApiKeys
from runplane.services.event_fanout import EventFanout
from runplane.testing.event_stream import InMemoryEventReader
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.serve import free_port
from tests.support.streams import wait_until
from tests.support.world import World

MAX_BYTES = 64 * 1024
PATIENCE_S = 30.0
"""How long a test waits for an answer the server owes within a second or two."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave the test process's signal handlers alone


@dataclass
class Served:
    port: int
    keys: ApiKeys
    app: FastAPI

    async def key(self, team: str | None = None) -> dict[str, str]:
        _, plaintext = await self.keys.issue(team_id=team, admin=team is None)
        return {"Authorization": f"Bearer {plaintext}"}

    async def streams_held(self, headers: dict[str, str]) -> int:
        key = await self.keys.authenticate(headers["Authorization"].removeprefix("Bearer "))
        assert key is not None
        return self.app.state.stream_slots.held(key.key_id)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest_asyncio.fixture
async def served() -> AsyncIterator[Served]:
    world = World.build()
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)

    async def ok() -> None:
        return None

    fanout = EventFanout(InMemoryEventReader())
    limits = ApiLimits(
        max_request_bytes=MAX_BYTES, request_body_timeout_s=1.0, max_streams_per_key=2
    )
    app = create_app(
        ApiContext(
            lifecycle=world.lifecycle,
            runtimes=world.runtimes,
            operations=world.log,
            keys=keys,
            readiness={"fake": ok},
            event_reader=fanout,
            limits=limits,
        )
    )
    if not any(getattr(r, "path", "") == "/v1/events/stream" for r in app.routes):
        app.include_router(routes_events.router)
    port = free_port()
    settings = Settings(
        host="127.0.0.1",
        port=port,
        http_header_timeout_s=1.0,
        http_keep_alive_s=1,
        http_max_header_bytes=4096,
    )
    server = _Server(uvicorn_config(app, settings))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, timeout_s=PATIENCE_S)
    try:
        yield Served(port, keys, app)
    finally:
        fanout.close()
        server.should_exit = True
        async with asyncio.timeout(PATIENCE_S):
            await task
        await fanout.aclose()


async def _connect(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", served.port)


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    async with asyncio.timeout(PATIENCE_S):
        return await reader.read()


def _status_and_body(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body else {}


def _code(body: dict[str, object]) -> object:
    error = body["error"]
    assert isinstance(error, dict)
    return error["code"]


async def test_a_declared_large_body_is_refused_unread_without_a_key(served: Served) -> None:
    reader, writer = await _connect(served)
    writer.write(
        b"POST /v1/runtimes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 300000000\r\n\r\n"
    )
    await writer.drain()
    status, body = _status_and_body(await _until_closed(reader))  # not one body byte sent
    writer.close()
    assert status == 413
    assert _code(body) == "payload_too_large"


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(served: Served) -> None:
    reader, writer = await _connect(served)
    writer.write(
        b"POST /v1/runtimes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 16 * 1024
    for _ in range(MAX_BYTES // len(chunk) + 1):  # past the limit; never the last chunk
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    await writer.drain()
    status, body = _status_and_body(await _until_closed(reader))
    writer.close()
    assert status == 413
    assert _code(body) == "payload_too_large"


async def test_a_body_that_stops_arriving_gets_408_and_the_connection_closed(
    served: Served,
) -> None:
    reader, writer = await _connect(served)
    writer.write(
        b"POST /v1/runtimes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    status, body = _status_and_body(await _until_closed(reader))
    writer.close()
    assert status == 408
    assert _code(body) == "request_timeout"


async def test_headers_that_never_end_lose_the_connection(served: Served) -> None:
    reader, writer = await _connect(served)
    writer.write(b"GET /v1/runtimes HTTP/1.1\r\nHost: x\r\n")  # and nothing more
    await writer.drain()
    assert await _until_closed(reader) == b""
    writer.close()


async def test_headers_past_the_limit_are_refused(served: Served) -> None:
    reader, writer = await _connect(served)
    writer.write(b"GET /v1/runtimes HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 8192 + b"\r\n\r\n")
    await writer.drain()
    answer = await _until_closed(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 4")  # h11 refuses it: 400 or 431, then closes


async def test_an_idle_keep_alive_connection_is_closed(served: Served) -> None:
    reader, writer = await _connect(served)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await _until_closed(reader)  # answered, then closed once idle
    writer.close()
    assert answer.startswith(b"HTTP/1.1 ")


async def test_a_key_past_its_concurrent_streams_gets_429(served: Served) -> None:
    alpha, beta, admin = await served.key("alpha"), await served.key("beta"), await served.key()
    async with (
        contextlib.AsyncExitStack() as streams,
        httpx.AsyncClient(base_url=served.url, timeout=PATIENCE_S) as http,
    ):

        async def follow(headers: dict[str, str]) -> int:
            response = await streams.enter_async_context(
                http.stream("GET", "/v1/events/stream", headers=headers)
            )
            return response.status_code

        assert [await follow(alpha), await follow(alpha)] == [200, 200]
        refused = await http.get("/v1/events/stream", headers=alpha)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.headers["Retry-After"] == "1"
        assert await follow(beta) == 200  # another key has its own bound
        assert [await follow(admin) for _ in range(3)] == [200, 200, 200]  # admins: none
    # The streams closed: alpha's slots are back.
    async with httpx.AsyncClient(base_url=served.url, timeout=PATIENCE_S) as http:
        for _ in range(int(PATIENCE_S * 10)):
            if await served.streams_held(alpha) == 0:
                break
            await asyncio.sleep(0.1)
        assert await served.streams_held(alpha) == 0
        async with http.stream("GET", "/v1/events/stream", headers=alpha) as again:
            assert again.status_code == 200
