"""`/v1/keys` and `/metrics` over the in-memory world: listing, revoking (never the
last admin key), expiry, and who may read the metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.services.api_keys import ApiKeys
from runplane.testing.api_keys import InMemoryApiKeyStore
from tests.support.world import World

METRICS_TOKEN = "m" * 24


class Api:
    def __init__(self, world: World, client: httpx.AsyncClient, keys: ApiKeys) -> None:
        self.world = world
        self.http = client
        self.keys = keys

    async def key(self, team: str | None = None) -> dict[str, str]:
        _, plaintext = await self.keys.issue(team_id=team, admin=team is None)
        return bearer(plaintext)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _api(world: World, metrics_token: str | None) -> AsyncIterator[Api]:
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=keys,
        readiness={},
        metrics_token=metrics_token,
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        yield Api(world, client, keys)


@pytest.fixture
async def api(world: World) -> AsyncIterator[Api]:
    async for api in _api(world, None):
        yield api


@pytest.fixture
async def api_with_token(world: World) -> AsyncIterator[Api]:
    async for api in _api(world, METRICS_TOKEN):
        yield api


async def test_keys_are_listed_by_team_without_their_hash(api: Api) -> None:
    admin = await api.key()
    for team in ("alpha", "beta", "alpha"):
        assert (await api.http.post("/v1/keys", json={"team_id": team}, headers=admin)).is_success
    everything = (await api.http.get("/v1/keys", headers=admin)).json()
    alpha = (await api.http.get("/v1/keys", params={"team_id": "alpha"}, headers=admin)).json()
    assert len(everything["keys"]) == 4  # the admin key too
    assert [k["team_id"] for k in alpha["keys"]] == ["alpha", "alpha"]
    assert all("key_hash" not in k and k["key"] is None for k in everything["keys"])
    assert {k["state"] for k in everything["keys"]} == {"active"}
    page = (await api.http.get("/v1/keys", params={"limit": 3}, headers=admin)).json()
    rest = await api.http.get(
        "/v1/keys", params={"limit": 3, "cursor": page["next_cursor"]}, headers=admin
    )
    listed = [k["key_id"] for k in page["keys"] + rest.json()["keys"]]
    assert listed == [k["key_id"] for k in everything["keys"]]


async def test_a_team_key_cannot_list_or_revoke(api: Api) -> None:
    team = await api.key("alpha")
    assert (await api.http.get("/v1/keys", headers=team)).status_code == 403
    assert (await api.http.delete("/v1/keys/key_x", headers=team)).status_code == 403


async def test_a_revoked_key_answers_401_at_once_and_stays_listed(api: Api) -> None:
    admin = await api.key()
    made = (await api.http.post("/v1/keys", json={"team_id": "alpha"}, headers=admin)).json()
    alpha = bearer(made["key"])
    assert (await api.http.get("/v1/runtimes", headers=alpha)).status_code == 200
    revoked = await api.http.delete(f"/v1/keys/{made['key_id']}", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked"
    refused = await api.http.get("/v1/runtimes", headers=alpha)
    assert refused.status_code == 401
    assert refused.json()["error"] == {"code": "unauthorized", "message": "API key revoked"}
    again = await api.http.delete(f"/v1/keys/{made['key_id']}", headers=admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    missing = await api.http.delete("/v1/keys/key_nope", headers=admin)
    assert missing.status_code == 404


async def test_the_last_active_admin_key_is_not_revoked(api: Api) -> None:
    admin = await api.key()
    own = (await api.http.get("/v1/keys", headers=admin)).json()["keys"][0]["key_id"]
    refused = await api.http.delete(f"/v1/keys/{own}", headers=admin)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"
    second = (await api.http.post("/v1/keys", json={"admin": True}, headers=admin)).json()
    assert (await api.http.delete(f"/v1/keys/{own}", headers=admin)).status_code == 200
    other = bearer(second["key"])
    assert (await api.http.delete(f"/v1/keys/{second['key_id']}", headers=other)).status_code == 409


async def test_a_key_expires(api: Api) -> None:
    admin = await api.key()
    body = {"team_id": "alpha", "expires_in_s": 60}
    made = (await api.http.post("/v1/keys", json=body, headers=admin)).json()
    assert made["expires_at"] is not None
    alpha = bearer(made["key"])
    assert (await api.http.get("/v1/runtimes", headers=alpha)).status_code == 200
    api.world.clock.advance(60)
    expired = await api.http.get("/v1/runtimes", headers=alpha)
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "API key expired"
    listed = (await api.http.get("/v1/keys", params={"team_id": "alpha"}, headers=admin)).json()
    assert listed["keys"][0]["state"] == "expired"


@pytest.mark.parametrize(
    "body",
    [
        {"team_id": "alpha", "expires_in_s": 0},
        {"team_id": "alpha", "expires_at": "2020-01-01T00:00:00Z"},
        {"team_id": "alpha", "expires_at": "2031-01-01T00:00:00"},
        {"team_id": "alpha", "expires_at": "2099-01-01T00:00:00Z"},
        {"team_id": "alpha", "expires_in_s": 60, "expires_at": "2025-06-01T00:00:00Z"},
        {"team_id": "alpha", "admin": True},
        {"team_id": "not a team"},
        {},
    ],
)
async def test_a_bad_key_request_is_400(api: Api, body: dict[str, object]) -> None:
    answer = await api.http.post("/v1/keys", json=body, headers=await api.key())
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"


async def test_metrics_need_an_admin_key_when_no_token_is_set(api: Api) -> None:
    assert (await api.http.get("/metrics")).status_code == 401
    assert (await api.http.get("/metrics", headers=await api.key("alpha"))).status_code == 403
    assert (await api.http.get("/metrics", headers=bearer(METRICS_TOKEN))).status_code == 401
    scraped = await api.http.get("/metrics", headers=await api.key())
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")


async def test_metrics_take_the_token_when_one_is_set(api_with_token: Api) -> None:
    api = api_with_token
    assert (await api.http.get("/metrics", headers=bearer(METRICS_TOKEN))).status_code == 200
    assert (await api.http.get("/metrics", headers=bearer("x" * 24))).status_code == 401
    assert (await api.http.get("/metrics", headers=await api.key())).status_code == 200
    assert (await api.http.get("/healthz")).status_code == 200
