"""Per-key rate limits on a real redis-server: every instance charges one budget."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.rate_limits import RedisRateLimiter
from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.api.limits import ApiLimits
from runplane.services.api_keys import ApiKeys
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.redis import RedisServer, free_port
from tests.support.world import World

LIMITS = ApiLimits(rate_limit_per_s=0.2, rate_limit_burst=4)
"""Four calls, then one every five seconds: nothing refills during a test."""


async def _ok() -> None:
    return None


def _instance(world: World, keys: ApiKeys, client: redis.asyncio.Redis) -> httpx.AsyncClient:
    """One runplane instance: its own app and limiter, the shared Redis and keys."""
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=keys,
        readiness={"fake": _ok},
        limits=LIMITS,
        rate_limiter=RedisRateLimiter(client),
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(context)), base_url="http://runplane"
    )


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


async def _key(keys: ApiKeys, team: str | None) -> dict[str, str]:
    _, plaintext = await keys.issue(team_id=team, admin=team is None)
    return {"Authorization": f"Bearer {plaintext}"}


async def test_two_instances_share_one_budget_per_key(
    client: redis.asyncio.Redis, redis_server: RedisServer
) -> None:
    world = World.build()
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)
    team = f"t{uuid.uuid4().hex[:8]}"
    alpha, beta, admin = (
        await _key(keys, team),
        await _key(keys, team + "b"),
        await _key(keys, None),
    )
    other_client = connect(redis_server.url)
    try:
        async with (
            _instance(world, keys, client) as one,
            _instance(world, keys, other_client) as two,
        ):
            codes = [
                (await http.get("/v1/runtimes", headers=alpha)).status_code
                for http in (one, two, one, two, one, two)
            ]
            assert codes == [200, 200, 200, 200, 429, 429]
            refused = await two.get("/v1/runtimes", headers=alpha)
            assert refused.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(refused.headers["Retry-After"]) <= 5
            assert (await one.get("/v1/runtimes", headers=beta)).status_code == 200
            admin_codes = {
                (await two.get("/v1/runtimes", headers=admin)).status_code for _ in range(8)
            }
            assert admin_codes == {200}
    finally:
        await other_client.aclose()


async def test_with_redis_unreachable_requests_are_not_limited(
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World.build()
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)
    dead = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
    alpha = await _key(keys, "alpha")
    try:
        async with _instance(world, keys, dead) as http:
            codes = {(await http.get("/v1/runtimes", headers=alpha)).status_code for _ in range(6)}
    finally:
        await dead.aclose()
    assert codes == {200}  # fail-open: more than the burst of 4, all answered
    assert "rate limits not enforced" in caplog.text
