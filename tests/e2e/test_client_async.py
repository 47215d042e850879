"""runplane.client's AsyncClient against a real serve, and both clients'
webhook calls with verify_webhook on real deliveries."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runplane.client import (
    AsyncClient,
    Client,
    Conflict,
    Event,
    NotFound,
    WaitTimeout,
    WebhookVerificationFailed,
    verify_webhook,
)
from tests.e2e.conftest import remove_everything
from tests.e2e.test_client import admin_key_for_team, refused
from tests.e2e.test_webhooks import Receiver
from tests.support.serve import RunplaneServer, free_port

SLEEP = {"command": ["sleep", "600"]}


async def test_every_call_of_the_async_client(serve: RunplaneServer) -> None:
    async with AsyncClient(serve.url, serve.admin_key) as api:
        created = await api.create_runtime(SLEEP, runtime_id="as-1", idempotency_key="as-create")
        again = await api.create_runtime(SLEEP, runtime_id="as-1", idempotency_key="as-create")
        assert (created.replayed, again.replayed) == (False, True)
        assert (await api.get_runtime("as-1")).status == "running"
        assert [r.runtime_id for r in (await api.list_runtimes()).runtimes] == ["as-1"]
        for operate, status in [
            (api.pause, "paused"),
            (api.resume, "running"),
            (api.restart, "running"),
            (api.stop, "stopped"),
            (api.start, "running"),
        ]:
            result = await operate("as-1")
            assert result.runtime is not None
            assert result.runtime.status == status
        patched = await api.patch("as-1", {"command": ["sleep", "602"]}, idempotency_key="p-1")
        replay = await api.patch("as-1", {"command": ["sleep", "602"]}, idempotency_key="p-1")
        assert (patched.replayed, replay.replayed) == (False, True)
        log = await api.list_operations("as-1")
        effective = [e.op for e in log if e.error_code is None]
        assert effective.count("patch") == 1  # the replay is logged as replay_no_op
        first = next(e for e in log if e.op == "patch" and e.error_code is None)
        assert (await api.get_operation(first.operation_id)).job_id == "p-1"
        assert log[0].details.get("replay_of") == first.operation_id
        page = await api.list_events(runtime_id="as-1", types=["runtime.pause"])
        assert [e.type for e in page.events] in ([], ["runtime.pause"])  # the relay may lag
        with pytest.raises(NotFound) as missing:
            await api.get_runtime("as-missing")
        assert missing.value.status == 404
        removed = await api.remove("as-1")
        assert removed.runtime is not None
        assert removed.runtime.status == "removed"


async def test_async_events_resume_across_a_serve_restart(serve: RunplaneServer) -> None:
    async with AsyncClient(serve.url, serve.admin_key) as api:
        await api.create_runtime(SLEEP, runtime_id="as-ev")
        received: asyncio.Queue[Event] = asyncio.Queue()
        deadline = time.monotonic() + 30
        while not (page := await api.list_events(runtime_id="as-ev")).events:
            assert time.monotonic() < deadline, "the create's event was never published"
            await asyncio.sleep(0.1)
        position = page.events[-1].stream_id  # a pause before the follower connects still counts

        async def follow() -> None:
            types = ["runtime.pause", "runtime.resume"]
            async for event in api.events(runtime_id="as-ev", types=types, last_event_id=position):
                await received.put(event)

        follower = asyncio.create_task(follow())
        try:
            await api.pause("as-ev")
            paused = await asyncio.wait_for(received.get(), 30)
            await asyncio.to_thread(serve.stop, signal.SIGKILL)
            await asyncio.to_thread(serve.start)
            await api.resume("as-ev")
            resumed = await asyncio.wait_for(received.get(), 60)
        finally:
            follower.cancel()
    assert [paused.type, resumed.type] == ["runtime.pause", "runtime.resume"]
    assert received.empty()


async def test_async_wait_for_by_events_and_by_polling(tmp_path: Path, redis_url: str) -> None:
    server = RunplaneServer.launch(tmp_path / "data", redis_url=redis_url, max_streams_per_key="1")
    paths: list[tuple[str, int]] = []

    async def record(response: httpx.Response) -> None:
        paths.append((response.request.url.path, response.status_code))

    try:
        with Client(server.url, server.admin_key) as admin:
            team_key = admin_key_for_team(admin, "acme")
            admin.create_runtime(SLEEP, runtime_id="acme:w", team_id="acme")
        async with AsyncClient(server.url, team_key) as api:
            api._http.event_hooks["response"].append(record)
            later = asyncio.get_running_loop().call_later(
                1.0, asyncio.ensure_future, api.pause("acme:w")
            )
            assert (await api.wait_for("acme:w", "paused", timeout=60)).status == "paused"
            later.cancel()
            assert ("/v1/events/stream", 200) in paths
            assert not any(path.endswith("/wait") for path, _ in paths)

            paths.clear()
            with (
                Client(server.url, team_key) as sync_api,
                sync_api._http.stream("GET", "/v1/events/stream") as held,
            ):
                assert held.status_code == 200
                assert refused(sync_api)
                asyncio.get_running_loop().call_later(
                    1.0, asyncio.ensure_future, api.resume("acme:w")
                )
                assert (await api.wait_for("acme:w", "running", timeout=60)).status == "running"
            assert ("/v1/events/stream", 429) in paths
            assert ("/v1/runtimes/acme:w/wait", 200) in paths

            with pytest.raises(WaitTimeout):
                await api.wait_for("acme:w", "stopped", timeout=1)
    finally:
        remove_everything(server)
        server.stop()


@pytest.fixture
def webhook_serve(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    server = RunplaneServer.launch(
        tmp_path / "data", redis_url=redis_url, webhook_allow_private="true"
    )
    try:
        yield server
    finally:
        remove_everything(server)
        server.stop()


def delivered(receiver: Receiver, count: int) -> list[tuple[dict[str, str], bytes]]:
    deadline = time.monotonic() + 30
    while len(receiver.requests) < count:
        assert time.monotonic() < deadline, receiver.requests
        time.sleep(0.1)
    return receiver.requests


def delivered_types(receiver: Receiver, secret: str, wanted: set[str]) -> set[str]:
    """The event types delivered once all of `wanted` are among them: a
    count would not do, as the test event (sent at once) may overtake the
    runtime's, and a delivery may come twice (at least once)."""
    deadline = time.monotonic() + 30
    while True:
        types = {verify_webhook(secret, h, b).type for h, b in list(receiver.requests)}
        if wanted <= types:
            return types
        assert time.monotonic() < deadline, types
        time.sleep(0.1)


def test_webhook_calls_and_verification(webhook_serve: RunplaneServer) -> None:
    receiver = Receiver(free_port())
    receiver.up()
    try:
        with Client(webhook_serve.url, webhook_serve.admin_key) as api:
            hook = api.create_webhook(
                f"http://127.0.0.1:{receiver.port}/hook", event_types=["runtime.stop"]
            )
            assert hook.secret is not None
            assert hook.secret.startswith("whsec_")
            assert [w.id for w in api.list_webhooks()] == [hook.id]
            sent = api.test_webhook(hook.id)
            assert sent.attempt is not None
            assert sent.attempt.succeeded
            headers, body = delivered(receiver, 1)[0]
            event = verify_webhook(hook.secret, headers, body)
            assert (event.type, event.subject) == ("runplane.webhook.test", hook.id)
            with pytest.raises(WebhookVerificationFailed):
                verify_webhook(hook.secret, headers, body + b" ")
            api.delete_webhook(hook.id)
            assert api.list_webhooks() == []
            with pytest.raises(NotFound):
                api.delete_webhook(hook.id)
    finally:
        receiver.down()


async def test_async_webhook_calls(webhook_serve: RunplaneServer) -> None:
    receiver = Receiver(free_port())
    receiver.up()
    try:
        async with AsyncClient(webhook_serve.url, webhook_serve.admin_key) as api:
            hook = await api.create_webhook(f"http://127.0.0.1:{receiver.port}/hook")
            assert hook.secret is not None
            assert [w.id for w in await api.list_webhooks()] == [hook.id]
            await api.create_runtime(SLEEP, runtime_id="as-wh")
            await api.stop("as-wh")
            with pytest.raises(Conflict):  # stopped already: invalid_state, a kind of conflict
                await api.pause("as-wh")
            tested = await api.test_webhook(hook.id)
            assert tested.delivery.event_type == "runplane.webhook.test"
            wanted = {"runtime.create", "runtime.stop", "runplane.webhook.test"}
            types = await asyncio.to_thread(delivered_types, receiver, hook.secret, wanted)
            assert wanted <= types
            await api.delete_webhook(hook.id)
            assert await api.list_webhooks() == []
    finally:
        receiver.down()
