"""`/v1/webhooks` over the in-memory world: bodies, status codes, the secret shown
once, team scoping, test pings, deliveries and redeliveries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.api.routes import webhooks as routes_webhooks
from runplane.services.api_keys import ApiKeys
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.webhooks import WebhookWorld, make_delivery, status
from tests.support.world import World

URL = "https://hooks.example.com/in"


class Api:
    def __init__(self, client: httpx.AsyncClient, keys: ApiKeys, hooks: WebhookWorld) -> None:
        self.http = client
        self.keys = keys
        self.hooks = hooks

    async def key(self, team: str | None = None) -> dict[str, str]:
        _, plaintext = await self.keys.issue(team_id=team, admin=team is None)
        return {"Authorization": f"Bearer {plaintext}"}


async def _client(world: World, hooks: WebhookWorld | None) -> tuple[httpx.AsyncClient, ApiKeys]:
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)

    async def ok() -> None:
        return None

    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=keys,
        readiness={"fake": ok},
        webhooks=hooks.service if hooks is not None else None,
    )
    app = create_app(context)
    if not any(getattr(r, "path", "").startswith("/v1/webhooks") for r in app.routes):
        app.include_router(routes_webhooks.router)
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://runplane"), keys


@pytest.fixture
async def api(world: World) -> AsyncIterator[Api]:
    hooks = WebhookWorld.build()
    client, keys = await _client(world, hooks)
    async with client:
        yield Api(client, keys, hooks)


async def test_create_shows_the_secret_once(api: Api) -> None:
    team = await api.key("team-a")
    created = await api.http.post(
        "/v1/webhooks", json={"url": URL, "event_types": ["runtime.stop"]}, headers=team
    )
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert (body["team_id"], body["event_types"], body["enabled"]) == (
        "team-a",
        ["runtime.stop"],
        True,
    )
    got = await api.http.get(f"/v1/webhooks/{body['id']}", headers=team)
    listed = await api.http.get("/v1/webhooks", headers=team)
    assert got.json()["secret"] is None
    assert [w["id"] for w in listed.json()["webhooks"]] == [body["id"]]
    assert listed.json()["webhooks"][0]["secret"] is None


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({"url": "http://127.0.0.1:8000/in"}, "resolves to 127.0.0.1"),
        ({"url": "ftp://hooks.example.com/"}, "http"),
        ({"url": URL, "event_types": ["runtime.nope"]}, "unknown event types"),
        ({"url": URL, "secret": "mine"}, "secret"),
        ({}, "url"),
    ],
)
async def test_bad_webhooks_are_400(api: Api, payload: dict[str, object], complaint: str) -> None:
    answer = await api.http.post("/v1/webhooks", json=payload, headers=await api.key("team-a"))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
    assert complaint in answer.json()["error"]["message"]


async def test_teams_do_not_see_each_others_webhooks(api: Api) -> None:
    team_a, team_b, admin = await api.key("team-a"), await api.key("team-b"), await api.key()
    theirs = (await api.http.post("/v1/webhooks", json={"url": URL}, headers=team_b)).json()
    every = (await api.http.post("/v1/webhooks", json={"url": URL}, headers=admin)).json()
    assert every["team_id"] is None
    for method, path in [
        ("GET", f"/v1/webhooks/{theirs['id']}"),
        ("PATCH", f"/v1/webhooks/{theirs['id']}"),
        ("DELETE", f"/v1/webhooks/{theirs['id']}"),
        ("GET", f"/v1/webhooks/{theirs['id']}/deliveries"),
        ("POST", f"/v1/webhooks/{theirs['id']}/test"),
        ("GET", f"/v1/webhooks/{every['id']}"),
    ]:
        answer = await api.http.request(
            method, path, headers=team_a, json={} if method == "PATCH" else None
        )
        assert answer.status_code == 404, (method, path)
        assert answer.json()["error"]["code"] == "not_found"
    assert (await api.http.get("/v1/webhooks", headers=team_a)).json()["webhooks"] == []
    other = await api.http.get("/v1/webhooks", params={"team_id": "team-b"}, headers=team_a)
    assert other.json()["webhooks"] == []
    listed = await api.http.get("/v1/webhooks", headers=admin)
    assert {w["id"] for w in listed.json()["webhooks"]} == {theirs["id"], every["id"]}
    foreign = await api.http.post(
        "/v1/webhooks", json={"url": URL, "team_id": "team-b"}, headers=team_a
    )
    assert foreign.status_code == 400
    assert api.hooks.sender.requests == []


async def test_update_and_delete(api: Api) -> None:
    team = await api.key("team-a")
    created = (await api.http.post("/v1/webhooks", json={"url": URL}, headers=team)).json()
    path = f"/v1/webhooks/{created['id']}"
    disabled = await api.http.patch(path, json={"enabled": False}, headers=team)
    assert disabled.status_code == 200
    assert (disabled.json()["enabled"], disabled.json()["disabled_reason"]) == (
        False,
        "disabled by request",
    )
    enabled = await api.http.patch(
        path, json={"enabled": True, "event_types": ["runtime.start"]}, headers=team
    )
    assert (enabled.json()["enabled"], enabled.json()["event_types"]) == (True, ["runtime.start"])
    bad = await api.http.patch(path, json={"url": "http://10.0.0.1/"}, headers=team)
    assert bad.status_code == 400
    deleted = await api.http.delete(path, headers=team)
    assert deleted.status_code == 204
    assert (await api.http.get(path, headers=team)).status_code == 404
    assert (await api.http.delete(path, headers=team)).status_code == 404


async def test_test_ping_deliveries_and_redeliver(api: Api) -> None:
    team = await api.key("team-a")
    created = (await api.http.post("/v1/webhooks", json={"url": URL}, headers=team)).json()
    path = f"/v1/webhooks/{created['id']}"
    api.hooks.sender.answer(status(500))
    tested = await api.http.post(f"{path}/test", headers=team)
    assert tested.status_code == 200
    body = tested.json()
    assert body["attempt"]["status_code"] == 500
    assert body["attempt"]["succeeded"] is False
    assert body["delivery"]["status"] == "failed"
    api.hooks.sender.answer(status(200))
    redelivered = await api.http.post(
        f"{path}/deliveries/{body['delivery']['id']}/redeliver", headers=team
    )
    assert redelivered.status_code == 200
    assert redelivered.json()["delivery"]["status"] == "succeeded"
    listed = (await api.http.get(f"{path}/deliveries", headers=team)).json()["deliveries"]
    [delivery] = listed
    assert delivery["attempt_count"] == 2
    assert [(a["number"], a["status_code"], a["trigger"]) for a in delivery["attempts"]] == [
        (1, 500, "test"),
        (2, 200, "manual"),
    ]
    assert delivery["attempts"][0]["error"] == "HTTP 500"
    assert all(a["latency_ms"] == 7 for a in delivery["attempts"])
    one = await api.http.get(f"{path}/deliveries/{delivery['id']}", headers=team)
    assert one.json()["id"] == delivery["id"]
    missing = await api.http.post(f"{path}/deliveries/dlv-nope/redeliver", headers=team)
    assert missing.status_code == 404


async def test_deliveries_are_listed_newest_first_with_a_limit(api: Api) -> None:
    team = await api.key("team-a")
    created = (await api.http.post("/v1/webhooks", json={"url": URL}, headers=team)).json()
    for n in range(3):
        api.hooks.clock.advance(1)
        await api.hooks.store.add_deliveries(
            [make_delivery(f"dlv-{n}", created["id"], at=api.hooks.clock.now())]
        )
    answer = await api.http.get(
        f"/v1/webhooks/{created['id']}/deliveries", params={"limit": 2}, headers=team
    )
    assert [d["id"] for d in answer.json()["deliveries"]] == ["dlv-2", "dlv-1"]
    assert answer.json()["deliveries"][0]["status"] == "pending"


async def test_without_a_webhook_service_the_api_is_503(world: World) -> None:
    client, keys = await _client(world, None)
    async with client:
        _, plaintext = await keys.issue(team_id=None, admin=True)
        answer = await client.get("/v1/webhooks", headers={"Authorization": f"Bearer {plaintext}"})
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "service_unavailable"


async def test_webhooks_need_a_key(api: Api) -> None:
    assert (await api.http.get("/v1/webhooks")).status_code == 401
