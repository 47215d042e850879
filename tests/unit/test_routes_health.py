"""GET /v1/runtimes/{id}/health over the fakes world."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from runplane.api.app import create_app
from runplane.api.context import ApiContext, HealthSources
from runplane.api.routes.health import router as health_router
from runplane.services.api_keys import ApiKeys
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.health import HealthWorld


class HealthApi:
    def __init__(self, hw: HealthWorld, client: httpx.AsyncClient, keys: ApiKeys) -> None:
        self.hw = hw
        self.http = client
        self.keys = keys

    async def key(self, team: str | None = None) -> dict[str, str]:
        _, plaintext = await self.keys.issue(team_id=team, admin=team is None)
        return {"Authorization": f"Bearer {plaintext}"}


async def serve(hw: HealthWorld, *, configured: bool = True) -> AsyncIterator[HealthApi]:
    keys = ApiKeys(InMemoryApiKeyStore(), hw.world.clock)

    async def ok() -> None:
        return None

    context = ApiContext(
        lifecycle=hw.world.lifecycle,
        runtimes=hw.world.runtimes,
        operations=hw.world.log,
        keys=keys,
        readiness={"fake": ok},
        health=HealthSources(hw.rows, hw.reader) if configured else None,
    )
    app = create_app(context)
    app.include_router(health_router)  # what bootstrap's app adds
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        yield HealthApi(hw, client, keys)


@pytest.fixture
async def api() -> AsyncIterator[HealthApi]:
    async for served in serve(HealthWorld.build()):
        yield served


async def test_health_shows_summary_snapshot_and_recent_events(api: HealthApi) -> None:
    record = await api.hw.world.create()
    monitor = api.hw.monitor()
    await monitor.tick()
    api.hw.driver.exit(record.container_id or "", 137, 9)
    await monitor.tick()
    await api.hw.deliver(api.hw.applier())
    answer = await api.http.get("/v1/runtimes/rt-1/health", headers=await api.key())
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "engine_unreachable"
    assert body["engine_health"] == "exited"
    assert body["snapshot"]["event_type"] == "container_exited"
    assert body["snapshot"]["summary"] == "exited"
    assert body["snapshot"]["details"]["signal"] == 9
    assert [e["event_type"] for e in body["events"]] == ["container_exited", "container_started"]
    limited = await api.http.get(
        "/v1/runtimes/rt-1/health", params={"limit": 1}, headers=await api.key()
    )
    assert len(limited.json()["events"]) == 1


async def test_a_runtime_never_observed_has_no_snapshot(api: HealthApi) -> None:
    await api.hw.world.create()
    body = (await api.http.get("/v1/runtimes/rt-1/health", headers=await api.key())).json()
    assert (body["engine_health"], body["snapshot"], body["events"]) == (None, None, [])


async def test_another_teams_runtime_is_not_found(api: HealthApi) -> None:
    await api.hw.world.create(team_id="team-a")
    team_b = await api.key("team-b")
    answer = await api.http.get("/v1/runtimes/rt-1/health", headers=team_b)
    missing = await api.http.get("/v1/runtimes/rt-none/health", headers=team_b)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert answer.json() == missing.json()  # nothing tells a taken id from a free one


async def test_without_health_sources_the_route_is_unavailable() -> None:
    async for api in serve(HealthWorld.build(), configured=False):
        await api.hw.world.create()
        answer = await api.http.get("/v1/runtimes/rt-1/health", headers=await api.key())
        assert answer.status_code == 503
