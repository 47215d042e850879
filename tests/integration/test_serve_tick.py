"""serve's uvicorn loop wakes once a tick (a second), not ten times a second:
asked to exit, it ends at once all the same, and each tick still renews the
Date header. Over real HTTP, with serve's own server class."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from starlette.types import Receive, Scope, Send

from runplane.bootstrap.serve import _Server, uvicorn_config
from runplane.config import Settings
from tests.support.serve import free_port
from tests.support.streams import wait_until

PATIENCE_S = 30.0


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest_asyncio.fixture
async def serving(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[_Server, str, asyncio.Task[None]]]:
    port = free_port()
    server = _Server(uvicorn_config(_ok, Settings(host="127.0.0.1", port=port)))
    server.TICK_S = request.param
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or task.done(), timeout_s=PATIENCE_S)
    try:
        yield server, f"http://127.0.0.1:{port}", task
    finally:
        server.should_exit = True
        async with asyncio.timeout(PATIENCE_S):
            await task


@pytest.mark.parametrize("serving", [3600.0], indirect=True)
async def test_asked_to_exit_the_server_ends_without_waiting_for_its_tick(
    serving: tuple[_Server, str, asyncio.Task[None]],
) -> None:
    server, url, task = serving
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200
    server.should_exit = True
    # An hour's tick: only the wake on `should_exit` can end it within the patience.
    async with asyncio.timeout(PATIENCE_S):
        await task
    assert task.result() is None


@pytest.mark.parametrize("serving", [0.05], indirect=True)
async def test_each_tick_renews_the_date_header(
    serving: tuple[_Server, str, asyncio.Task[None]],
) -> None:
    _, url, _ = serving
    async with httpx.AsyncClient() as http:
        seen = {(await http.get(url)).headers["date"]}
        for _ in range(int(PATIENCE_S / 0.2)):  # the header has a second's resolution
            await asyncio.sleep(0.2)
            seen.add((await http.get(url)).headers["date"])
            if len(seen) > 1:
                break
    assert len(seen) > 1
