"""The REST API over the in-memory world: status codes, error bodies, auth, scoping."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.domain.api_keys import ApiKey
from runplane.domain.errors import DriverError, StoreUnavailable
from runplane.logs import CorrelationFilter
from runplane.ports.lifecycle import RuntimePage
from runplane.services.api_keys import ApiKeys
from runplane.testing.stores import InMemoryApiKeyStore, InMemoryRuntimeStore
from tests.support.world import SPEC, World


class Api:
    def __init__(self, world: World, client: httpx.AsyncClient, keys: ApiKeys) -> None:
        self.world = world
        self.http = client
        self.keys = keys

    async def key(self, team: str | None = None) -> dict[str, str]:
        _, plaintext = await self.keys.issue(team_id=team, admin=team is None)
        return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture
async def api(world: World) -> AsyncIterator[Api]:
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)

    async def ok() -> None:
        return None

    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=keys,
        readiness={"fake": ok},
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        yield Api(world, client, keys)


async def test_requests_without_a_valid_key_get_401(api: Api) -> None:
    missing = await api.http.get("/v1/runtimes")
    wrong = await api.http.get("/v1/runtimes", headers={"Authorization": "Bearer rp_nope"})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert wrong.status_code == 401


async def test_create_stop_replay_over_rest(api: Api) -> None:
    admin = await api.key()
    created = await api.http.post(
        "/v1/runtimes", json={"runtime_id": "demo", "spec": SPEC}, headers=admin
    )
    assert created.status_code == 201
    assert created.json()["status"] == "running"
    stopped = await api.http.post("/v1/runtimes/demo/stop", headers=admin)
    assert stopped.status_code == 200
    assert stopped.json()["outcome"] == "success"
    assert stopped.json()["runtime"]["status"] == "stopped"
    again = await api.http.post("/v1/runtimes/demo/stop", headers=admin)
    assert again.status_code == 200
    assert again.json()["error_code"] == "replay_no_op"
    ops = await api.http.get("/v1/runtimes/demo/operations", headers=admin)
    assert [o["op"] for o in ops.json()["operations"]] == ["stop", "stop", "start"]
    one = await api.http.get(
        f"/v1/operations/{ops.json()['operations'][0]['operation_id']}", headers=admin
    )
    assert one.json()["error_code"] == "replay_no_op"


async def test_pausing_a_stopped_runtime_is_409_invalid_state(api: Api) -> None:
    admin = await api.key()
    await api.http.post("/v1/runtimes", json={"runtime_id": "d", "spec": SPEC}, headers=admin)
    await api.http.post("/v1/runtimes/d/stop", headers=admin)
    paused = await api.http.post("/v1/runtimes/d/pause", headers=admin)
    assert paused.status_code == 409
    assert paused.json()["error"]["code"] == "invalid_state"


async def test_an_unreachable_driver_is_503_with_retry_after(api: Api) -> None:
    admin = await api.key()
    await api.http.post("/v1/runtimes", json={"runtime_id": "d", "spec": SPEC}, headers=admin)
    api.world.driver.fail_next("stop", DriverError("engine down"))
    stopped = await api.http.post("/v1/runtimes/d/stop", headers=admin)
    assert stopped.status_code == 503
    assert stopped.headers["Retry-After"] == "1"
    assert stopped.json()["error"]["code"] == "service_unavailable"


class UnreachableRuntimes(InMemoryRuntimeStore):
    async def list(self, **_: Any) -> RuntimePage:
        raise StoreUnavailable("database unavailable: the database system is shutting down")


async def test_a_store_fault_in_a_route_is_503_with_retry_after(world: World) -> None:
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=UnreachableRuntimes(world.log),
        operations=world.log,
        keys=keys,
        readiness={},
    )
    _, plaintext = await keys.issue(team_id=None, admin=True)
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        listed = await client.get("/v1/runtimes", headers={"Authorization": f"Bearer {plaintext}"})
    assert listed.status_code == 503
    assert listed.headers["Retry-After"] == "1"
    assert listed.json()["error"]["code"] == "service_unavailable"
    assert "shutting down" in listed.json()["error"]["message"]


async def test_bad_input_gets_400_with_the_error_body(api: Api) -> None:
    admin = await api.key()
    no_spec = await api.http.post("/v1/runtimes", json={"runtime_id": "x"}, headers=admin)
    bad_id = await api.http.post(
        "/v1/runtimes", json={"runtime_id": "a b", "spec": SPEC}, headers=admin
    )
    bad_reason = await api.http.post("/v1/runtimes/x/stop", json={"reason": "whim"}, headers=admin)
    not_json = await api.http.post(
        "/v1/runtimes", content=b"\xff\xfe", headers=admin | {"Content-Type": "application/json"}
    )
    for response in (no_spec, bad_id, bad_reason, not_json):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_request"
        assert response.json()["error"]["message"]


async def test_team_keys_see_only_their_team(api: Api) -> None:
    alpha, beta = await api.key("alpha"), await api.key("beta")
    made = await api.http.post(
        "/v1/runtimes", json={"runtime_id": "alpha:a1", "spec": SPEC}, headers=alpha
    )
    assert made.json()["team_id"] == "alpha"
    assert (await api.http.get("/v1/runtimes/alpha:a1", headers=beta)).status_code == 404
    assert (await api.http.post("/v1/runtimes/alpha:a1/stop", headers=beta)).status_code == 404
    assert (await api.http.delete("/v1/runtimes/alpha:a1", headers=beta)).status_code == 404
    assert (await api.http.get("/v1/runtimes/alpha:a1/operations", headers=beta)).status_code == 404
    listed = await api.http.get("/v1/runtimes", headers=beta)
    assert listed.json()["runtimes"] == []
    assert (await api.world.record("alpha:a1")).status.value == "running"
    mine = await api.http.get("/v1/runtimes", headers=alpha)
    assert [r["runtime_id"] for r in mine.json()["runtimes"]] == ["alpha:a1"]


async def test_idempotency_key_replays_the_first_result(api: Api) -> None:
    admin = await api.key()
    await api.http.post("/v1/runtimes", json={"runtime_id": "i", "spec": SPEC}, headers=admin)
    key = admin | {"Idempotency-Key": "abc"}
    first = await api.http.post("/v1/runtimes/i/stop", headers=key)
    await api.http.post("/v1/runtimes/i/start", headers=admin)
    second = await api.http.post("/v1/runtimes/i/stop", headers=key)
    assert first.json()["error_code"] is None
    assert second.json()["error_code"] == "replay_no_op"
    assert second.json()["operation_id"] == first.json()["operation_id"]
    assert second.json()["runtime"]["status"] == "running"


@pytest.mark.parametrize("runtime_id", [None, "idem-1"])
async def test_a_create_sent_twice_with_an_idempotency_key_creates_once(
    api: Api, runtime_id: str | None
) -> None:
    key = await api.key() | {"Idempotency-Key": "create-1"}
    body = {"spec": SPEC} | ({"runtime_id": runtime_id} if runtime_id else {})
    first = await api.http.post("/v1/runtimes", json=body, headers=key)
    second = await api.http.post("/v1/runtimes", json=body, headers=key)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["runtime_id"] == first.json()["runtime_id"]
    listed = await api.http.get("/v1/runtimes", headers=key)
    assert [r["runtime_id"] for r in listed.json()["runtimes"]] == [first.json()["runtime_id"]]


async def test_wait_returns_at_once_or_408(api: Api) -> None:
    admin = await api.key()
    await api.http.post("/v1/runtimes", json={"runtime_id": "w", "spec": SPEC}, headers=admin)
    reached = await api.http.get(
        "/v1/runtimes/w/wait", params={"status": "stopped,running", "timeout": 1}, headers=admin
    )
    assert reached.status_code == 200
    late = await api.http.get(
        "/v1/runtimes/w/wait", params={"status": "stopped", "timeout": 0.2}, headers=admin
    )
    assert late.status_code == 408
    assert late.json()["error"]["code"] == "timeout"
    bad = await api.http.get("/v1/runtimes/w/wait", params={"status": "sideways"}, headers=admin)
    assert bad.status_code == 400


async def test_a_wait_whose_client_left_ends_with_499(api: Api) -> None:
    """A client gone mid-wait (a Ctrl-C'd `runtime wait`) ends the wait at its
    next look: kept going, it would hold serve's graceful shutdown too."""
    admin = await api.key()
    await api.http.post("/v1/runtimes", json={"runtime_id": "left", "spec": SPEC}, headers=admin)
    app = api.http._transport.app  # type: ignore[attr-defined]
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/runtimes/left/wait",
        "raw_path": b"/v1/runtimes/left/wait",
        "query_string": b"status=stopped&timeout=600",
        "root_path": "",
        "headers": [(b"host", b"runplane"), (b"authorization", admin["Authorization"].encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("runplane", 80),
    }
    async with asyncio.timeout(60):  # a deadline, not a measure: the wait asked for 600 s
        await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 499


async def test_list_pages_by_cursor(api: Api) -> None:
    admin = await api.key()
    for i in range(5):
        await api.http.post(
            "/v1/runtimes",
            json={"runtime_id": f"p{i}", "spec": SPEC, "start": False},
            headers=admin,
        )
    first = (await api.http.get("/v1/runtimes", params={"limit": 3}, headers=admin)).json()
    rest = (
        await api.http.get(
            "/v1/runtimes", params={"limit": 3, "cursor": first["next_cursor"]}, headers=admin
        )
    ).json()
    ids = [r["runtime_id"] for r in first["runtimes"] + rest["runtimes"]]
    assert ids == [f"p{i}" for i in range(5)]
    assert rest["next_cursor"] is None
    pending = await api.http.get("/v1/runtimes", params={"status": "pending"}, headers=admin)
    assert len(pending.json()["runtimes"]) == 5
    running = await api.http.get("/v1/runtimes", params={"status": "running"}, headers=admin)
    assert running.json()["runtimes"] == []


async def test_keys_are_created_by_admins_only(api: Api) -> None:
    admin, team = await api.key(), await api.key("alpha")
    denied = await api.http.post("/v1/keys", json={"team_id": "beta"}, headers=team)
    made = await api.http.post("/v1/keys", json={"team_id": "beta"}, headers=admin)
    assert denied.status_code == 403
    assert made.status_code == 201
    beta = {"Authorization": f"Bearer {made.json()['key']}"}
    assert (await api.http.get("/v1/runtimes", headers=beta)).status_code == 200


async def test_health_readiness_and_openapi(api: Api) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"fake": "ok"}
    spec = (await api.http.get("/openapi.json")).json()
    assert "/v1/runtimes/{runtime_id}/stop" in spec["paths"]
    assert (await api.http.get("/metrics", headers=await api.key())).status_code == 200


async def test_a_request_id_is_echoed_and_stored_as_the_operation_source_ref(api: Api) -> None:
    admin = await api.key()
    created = await api.http.post(
        "/v1/runtimes",
        json={"runtime_id": "demo", "spec": SPEC},
        headers=admin | {"X-Request-ID": "req-create"},
    )
    stopped = await api.http.post(
        "/v1/runtimes/demo/stop", headers=admin | {"X-Request-ID": "req-abc"}
    )
    assert created.headers["X-Request-ID"] == "req-create"
    assert stopped.headers["X-Request-ID"] == "req-abc"
    start, stop = await api.world.entries("demo")
    assert (start.source_ref, stop.source_ref) == ("req-create", "req-abc")


async def test_a_missing_or_invalid_request_id_is_replaced_by_a_new_one(api: Api) -> None:
    admin = await api.key()
    plain = await api.http.get("/v1/runtimes", headers=admin)
    too_long = await api.http.get("/v1/runtimes", headers=admin | {"X-Request-ID": "x" * 129})
    refused = await api.http.get("/v1/runtimes")  # 401: answered with an id too
    ids = [r.headers["X-Request-ID"] for r in (plain, too_long, refused)]
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == 3


class CrashingKeyStore(InMemoryApiKeyStore):
    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        raise RuntimeError("a bug")


async def test_a_crashed_request_answers_and_logs_with_its_request_id(world: World) -> None:
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=ApiKeys(CrashingKeyStore(), world.clock),
        readiness={},
    )
    transport = httpx.ASGITransport(app=create_app(context), raise_app_exceptions=False)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.addFilter(CorrelationFilter())
    handler.emit = seen.append  # type: ignore[method-assign]
    errors = logging.getLogger("runplane.api.errors")
    errors.addHandler(handler)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
            answer = await client.get(
                "/v1/runtimes", headers={"Authorization": "Bearer rp_k", "X-Request-ID": "req-500"}
            )
    finally:
        errors.removeHandler(handler)
    assert (answer.status_code, answer.headers["X-Request-ID"]) == (500, "req-500")
    [crashed] = seen
    assert crashed.getMessage() == "request crashed"
    assert crashed.__dict__["correlation_id"] == "req-500"
    assert crashed.exc_info is not None
