"""The direct path for `POST /v1/runtimes/{id}/{op}` (api/fast_ops.py) answers
every call exactly as FastAPI's routing does: the same calls go to two apps over
two identical worlds, one with the direct path and one without, and their
answers (status, headers, body bytes) and what they did must be the same."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.api.fast_ops import FastOperations
from runplane.api.limits import ApiLimits
from runplane.domain.api_keys import ApiKey
from runplane.domain.errors import StoreUnavailable
from runplane.services.api_keys import ApiKeys
from runplane.testing.rate_limits import InMemoryRateLimiter
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.world import SPEC, World

LIMITS = ApiLimits(rate_limit_per_s=1.0, rate_limit_burst=40)


class FlakyKeys(InMemoryApiKeyStore):
    """A key store that fails on demand: unreachable, or crashing."""

    fault: Exception | None = None

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        if self.fault is not None:
            raise self.fault
        return await super().find_by_hash(key_hash)


@dataclass
class Side:
    world: World
    store: FlakyKeys
    http: httpx.AsyncClient
    taken: list[str]
    """The paths the direct path answered."""
    keys: dict[str, str]


async def _side(fast: bool, taken: list[str]) -> tuple[Side, httpx.AsyncClient]:
    world = World.build()
    store = FlakyKeys()
    keys = ApiKeys(store, world.clock, cache_s=0)
    plaintexts = {
        "admin": (await keys.issue(team_id=None, admin=True))[1],
        "a": (await keys.issue(team_id="team-a", admin=False))[1],
        "b": (await keys.issue(team_id="team-b", admin=False))[1],
        "brief": (
            await keys.issue(
                team_id="team-a", admin=False, expires_at=world.clock.now() + timedelta(seconds=5)
            )
        )[1],
        "limited": (await keys.issue(team_id="team-a", admin=False))[1],
    }
    await world.create("rt-1", team_id="team-a")
    await world.create("rt-2", team_id="team-a", start=False)
    await world.create("rt-b", team_id="team-b")
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=keys,
        readiness={},
        limits=LIMITS,
        rate_limiter=InMemoryRateLimiter(world.clock),
    )
    transport = httpx.ASGITransport(
        app=create_app(context, fast_operations=fast), raise_app_exceptions=False
    )
    client = httpx.AsyncClient(transport=transport, base_url="http://runplane")
    return Side(world, store, client, taken, plaintexts), client


@pytest.fixture
async def sides(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Side, Side]]:
    taken: list[str] = []
    operate = FastOperations._operate

    async def counted(self: FastOperations, scope: Any, *args: Any) -> Any:
        taken.append(scope["path"])
        return await operate(self, scope, *args)

    monkeypatch.setattr(FastOperations, "_operate", counted)
    fast, fast_client = await _side(True, taken)
    routed, routed_client = await _side(False, [])
    async with fast_client, routed_client:
        yield fast, routed


Call = Callable[[Side], Awaitable[httpx.Response]]


def post(path: str, key: str | None = "a", **options: Any) -> Call:
    async def call(side: Side) -> httpx.Response:
        headers = dict(options.get("headers", {}))
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {side.keys[key]}")
        rest = {k: v for k, v in options.items() if k != "headers"}
        return await side.http.post(path, headers=headers, **rest)

    return call


def _answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]
    return response.status_code, headers, response.content


async def _both(sides: tuple[Side, Side], call: Call) -> httpx.Response:
    fast, routed = sides
    answers = [await call(fast), await call(routed)]
    assert _answer(answers[0]) == _answer(answers[1])
    return answers[0]


async def test_operations_answer_as_the_routes_do(sides: tuple[Side, Side]) -> None:
    fast, routed = sides
    ok = [
        post("/v1/runtimes/rt-1/stop"),
        post("/v1/runtimes/rt-1/stop"),  # replay_no_op
        post("/v1/runtimes/rt-1/start", json={"reason": "back"}),
        post("/v1/runtimes/rt-1/pause", headers={"Idempotency-Key": "job-1"}),
        post("/v1/runtimes/rt-1/pause", headers={"Idempotency-Key": "job-1"}),
        post(
            "/v1/runtimes/rt-1/resume", content=b"{}", headers={"content-type": "application/json"}
        ),
        post("/v1/runtimes/rt-1/restart"),
        post("/v1/runtimes/rt-1/patch", json={"spec": SPEC | {"env": {"A": "1"}}}),
        post("/v1/runtimes/rt-b/stop", key="admin"),
        post("/v1/runtimes/rt-2/start"),
        post("/v1/runtimes/rt-2/stop"),
    ]
    for call in ok:
        response = await _both(sides, call)
        assert response.status_code == 200, response.text
    refused = {
        post("/v1/runtimes/rt-2/pause"): 409,  # invalid_state, from the lifecycle
        post("/v1/runtimes/rt-b/stop"): 404,  # another team's runtime
        post("/v1/runtimes/nope/stop"): 404,
        post("/v1/runtimes/rt-1/patch"): 400,  # patch needs a spec
        post("/v1/runtimes/rt-1/stop", key=None): 401,
        post("/v1/runtimes/rt-1/stop", key=None, headers={"Authorization": "Basic x"}): 401,
        post("/v1/runtimes/rt-1/stop", key=None, headers={"Authorization": "Bearer rp_x"}): 401,
    }
    for call, status in refused.items():
        response = await _both(sides, call)
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error"}
    assert len(fast.taken) == len(ok) + len(refused)
    assert routed.taken == []
    assert [e.op for e in await fast.world.entries()] == [
        e.op for e in await routed.world.entries()
    ]


async def test_what_fastapi_refuses_is_left_to_fastapi(sides: tuple[Side, Side]) -> None:
    fast, _ = sides
    left = [
        post("/v1/runtimes/rt-1/stop", headers={"Idempotency-Key": "has space"}),
        post("/v1/runtimes/rt-1/stop", headers={"Idempotency-Key": ""}),
        post("/v1/runtimes/rt-1/stop", json={"nope": 1}),
        post("/v1/runtimes/rt-1/stop", json={"reason": "x" * 65}),
        post("/v1/runtimes/rt-1/stop", json=[1]),
        post(
            "/v1/runtimes/rt-1/stop", content=b"null", headers={"content-type": "application/json"}
        ),
        post("/v1/runtimes/rt-1/stop", content=b"reason", headers={"content-type": "text/plain"}),
        post("/v1/runtimes/rt-1/stop", content=json.dumps({"reason": "bare"}).encode()),
        post("/v1/runtimes/rt-1/stop/", headers={}),
        post("/v1/runtimes/rt-1/remove"),
    ]
    statuses = [(await _both(sides, call)).status_code for call in left]
    assert fast.taken == []
    # FastAPI takes a JSON null as no body, and refuses JSON sent as another type or none.
    assert statuses == [400, 400, 400, 400, 400, 200, 400, 400, 307, 404]


async def test_key_faults_rate_limits_and_expiry_answer_alike(sides: tuple[Side, Side]) -> None:
    for side in sides:
        side.store.fault = StoreUnavailable("key store down")
    unavailable = await _both(sides, post("/v1/runtimes/rt-1/stop"))
    assert unavailable.status_code == 503
    assert unavailable.headers["retry-after"] == "1"
    for side in sides:
        side.store.fault = RuntimeError("boom")
    crashed = await _both(sides, post("/v1/runtimes/rt-1/stop"))
    assert crashed.status_code == 500
    assert crashed.json() == {"error": {"code": "internal", "message": "internal error"}}
    for side in sides:
        side.store.fault = None
    answers = [await _both(sides, post("/v1/runtimes/rt-1/stop", key="limited")) for _ in range(41)]
    assert answers[-1].status_code == 429
    assert answers[-1].headers["retry-after"] == "1"
    assert {a.status_code for a in answers[:-1]} == {200}
    for side in sides:
        side.world.clock.advance(6)
    expired = await _both(sides, post("/v1/runtimes/rt-1/stop", key="brief"))
    assert expired.status_code == 401
