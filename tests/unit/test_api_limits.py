"""Request limits over the app (ASGI): JSON depth and Unicode, NUL anywhere, declared sizes,
per-key rate limits (on the in-memory limiter) and the per-key wait bound."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from runplane.api.app import create_app
from runplane.api.concurrency import KeySlots, SharedReads
from runplane.api.context import ApiContext
from runplane.api.limits import ApiLimits
from runplane.domain.errors import StoreUnavailable
from runplane.services.api_keys import ApiKeys
from runplane.testing.rate_limits import InMemoryRateLimiter
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.streams import wait_until
from tests.support.world import SPEC, World

LIMITS = ApiLimits(
    max_request_bytes=4096, rate_limit_per_s=1.0, rate_limit_burst=3, max_waits_per_key=2
)


@dataclass
class Api:
    app: FastAPI
    http: httpx.AsyncClient
    keys: ApiKeys
    world: World

    async def key(self, team: str | None = None) -> dict[str, str]:
        _, plaintext = await self.keys.issue(team_id=team, admin=team is None)
        return {"Authorization": f"Bearer {plaintext}"}

    def reconfigure(self, **changes: object) -> None:
        """Another context, before the first request builds the middleware stack."""
        assert self.app.middleware_stack is None
        self.app.state.context = _context(self.world, self.keys, **changes)


async def _ok() -> None:
    return None


def _context(world: World, keys: ApiKeys, **changes: object) -> ApiContext:
    fields: dict[str, object] = {
        "lifecycle": world.lifecycle,
        "runtimes": world.runtimes,
        "operations": world.log,
        "keys": keys,
        "readiness": {"fake": _ok},
        "limits": LIMITS,
        "rate_limiter": InMemoryRateLimiter(world.clock),
    }
    return ApiContext(**(fields | changes))  # type: ignore[arg-type]


@pytest.fixture
async def api(world: World) -> AsyncIterator[Api]:
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)
    app = create_app(_context(world, keys))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        yield Api(app, client, keys, world)


def _error(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def test_a_lone_surrogate_in_a_spec_is_refused_and_nothing_is_stored(api: Api) -> None:
    admin = await api.key()
    body = '{"runtime_id": "bad", "spec": {"command": ["echo", "\\ud800"]}}'
    response = await api.http.post(
        "/v1/runtimes", content=body, headers=admin | {"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert _error(response) == "invalid_request"
    assert "Unicode" in response.json()["error"]["message"]
    assert (await api.world.runtimes.get("bad")) is None
    # A body without Content-Type is parsed as JSON by the routes: checked the same way.
    bare = await api.http.post("/v1/runtimes", content=body.encode(), headers=admin)
    assert bare.status_code == 400
    assert (await api.world.runtimes.get("bad")) is None


async def test_deep_nesting_is_refused_before_it_is_parsed(api: Api) -> None:
    admin = await api.key()
    deep = "[" * 10_000 + "]" * 10_000
    api.reconfigure(limits=ApiLimits(max_request_bytes=1024 * 1024))
    response = await api.http.post(
        "/v1/runtimes",
        content=f'{{"runtime_id": "deep", "spec": {{"x": {deep}}}}}',
        headers=admin | {"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "nested deeper than 32" in response.json()["error"]["message"]
    assert (await api.world.runtimes.get("deep")) is None
    unclosed = await api.http.post(
        "/v1/runtimes", content=b"[" * 1_000_000, headers={"Content-Type": "application/json"}
    )
    assert unclosed.status_code == 400
    assert _error(unclosed) == "invalid_request"
    shallow_but_wide = {"runtime_id": "wide", "spec": SPEC | {"labels": [[[[1]]]] * 1000}}
    wide = await api.http.post("/v1/runtimes", json=shallow_but_wide, headers=admin)
    assert wide.status_code == 201, wide.text  # many brackets, none deeper than 32


async def test_a_surrogate_sent_as_raw_utf8_bytes_is_refused(api: Api) -> None:
    admin = await api.key()
    body = b'{"runtime_id": "raw", "spec": {"command": ["echo", "\xed\xa0\x80"]}}'
    response = await api.http.post(
        "/v1/runtimes", content=body, headers=admin | {"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert (await api.world.runtimes.get("raw")) is None


async def test_a_nul_in_the_path_query_or_body_is_refused_before_routing(api: Api) -> None:
    admin = await api.key()
    calls = [
        api.http.get("/v1/runtimes", params={"cursor": "a\x00b"}, headers=admin),
        api.http.get("/v1/runtimes/a%00b", headers=admin),
        api.http.delete("/v1/keys/a%00b"),  # before the key is even checked
        api.http.post(
            "/v1/runtimes",
            json={"runtime_id": "nul", "spec": SPEC | {"env": {"A": "x\x00y"}}},
            headers=admin,
        ),
        api.http.post("/v1/runtimes", json={"runtime_id": "nul", "spec": SPEC, "k\x00": 1}),
    ]
    for response in [await call for call in calls]:
        assert response.status_code == 400, response.text
        assert _error(response) == "invalid_request"
        assert "NUL" in response.json()["error"]["message"]
    assert (await api.world.runtimes.get("nul")) is None
    # A percent sign that is not a NUL passes on to the route.
    listed = await api.http.get("/v1/runtimes", params={"cursor": "%00"}, headers=admin)
    assert listed.status_code == 200, listed.text


async def test_a_body_that_is_not_json_is_a_400(api: Api) -> None:
    response = await api.http.post(
        "/v1/runtimes", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert _error(response) == "invalid_request"


async def test_a_declared_large_body_is_refused_before_the_key_is_checked(api: Api) -> None:
    response = await api.http.post("/v1/runtimes", content=b"x" * 5000)  # no key at all
    assert response.status_code == 413
    assert _error(response) == "payload_too_large"
    assert response.headers["connection"] == "close"


async def test_a_team_key_past_its_budget_gets_429_with_retry_after(api: Api) -> None:
    alpha, beta, admin = await api.key("alpha"), await api.key("beta"), await api.key()
    codes = [(await api.http.get("/v1/runtimes", headers=alpha)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = await api.http.get("/v1/runtimes", headers=alpha)
    assert _error(refused) == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await api.http.get("/v1/runtimes", headers=beta)).status_code == 200
    admin_codes = {
        (await api.http.get("/v1/runtimes", headers=admin)).status_code for _ in range(10)
    }
    assert admin_codes == {200}  # admin keys are not limited
    api.world.clock.advance(1.0)  # one token back
    assert (await api.http.get("/v1/runtimes", headers=alpha)).status_code == 200


async def test_unauthenticated_calls_charge_no_budget(api: Api) -> None:
    for _ in range(10):
        assert (await api.http.get("/v1/runtimes")).status_code == 401
    alpha = await api.key("alpha")
    assert (await api.http.get("/v1/runtimes", headers=alpha)).status_code == 200


class Unreachable:
    def __init__(self) -> None:
        self.calls = 0

    async def take(self, bucket: str, per_s: float, burst: int) -> float:
        self.calls += 1
        raise StoreUnavailable("redis is down")


async def test_an_unreachable_limiter_fails_open_with_a_warning(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = Unreachable()
    api.reconfigure(rate_limiter=limiter)
    alpha = await api.key("alpha")
    with caplog.at_level(logging.WARNING, logger="runplane.api.limits"):
        codes = {(await api.http.get("/v1/runtimes", headers=alpha)).status_code for _ in range(6)}
    assert codes == {200}
    assert any("rate limits not enforced" in r.getMessage() for r in caplog.records)
    assert limiter.calls == 1  # then skipped for a while: an outage adds no delay to each call


async def test_a_key_past_its_concurrent_waits_gets_429_and_the_others_proceed(api: Api) -> None:
    api.reconfigure(rate_limiter=None)  # only the wait bound answers 429 here
    alpha, beta = await api.key("alpha"), await api.key("beta")
    for key, name in ((alpha, "alpha:a1"), (beta, "beta:b1")):
        body = {"runtime_id": name, "spec": {"command": ["sleep", "1"]}}
        assert (await api.http.post("/v1/runtimes", json=body, headers=key)).status_code == 201
    slots: KeySlots = api.app.state.wait_slots
    params = {"status": "stopped", "timeout": "60"}
    waits = [
        asyncio.create_task(
            api.http.get("/v1/runtimes/alpha:a1/wait", params=params, headers=alpha)
        )
        for _ in range(2)
    ]
    alpha_key = await api.keys.authenticate(alpha["Authorization"].split()[1])
    assert alpha_key is not None
    alpha_id = alpha_key.key_id
    await wait_until(lambda: slots.held(alpha_id) == 2)
    third = await api.http.get("/v1/runtimes/alpha:a1/wait", params=params, headers=alpha)
    assert third.status_code == 429
    assert _error(third) == "rate_limited"
    assert third.headers["Retry-After"] == "1"
    assert "2 concurrent waits" in third.json()["error"]["message"]
    other = await api.http.get(
        "/v1/runtimes/beta:b1/wait", params={"status": "running"}, headers=beta
    )
    assert other.status_code == 200
    assert (await api.http.post("/v1/runtimes/alpha:a1/stop", headers=alpha)).status_code == 200
    answers = await asyncio.gather(*waits)
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.json()["status"] == "stopped" for a in answers)
    assert slots.held(alpha_id) == 0


async def test_concurrent_waits_share_one_store_read() -> None:
    reads = SharedReads[int](interval_s=60.0)
    calls = 0
    gate = asyncio.Event()

    async def read() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return calls

    waiters = [asyncio.create_task(reads.read("rt", read)) for _ in range(100)]
    await wait_until(lambda: calls == 1)
    gate.set()
    assert set(await asyncio.gather(*waiters)) == {1}
    assert calls == 1
    # A caller that began after that read started gets a read of its own.
    assert await reads.read("rt", read, since=time.monotonic()) == 2
    assert await reads.read("rt", read) == 2  # and later callers share that one
