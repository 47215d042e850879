"""Team policies over REST (the real app on fakes): who may set and read them,
and what a team key may then create; quotas over REST and on the job streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind, Outcome
from runplane.services.api_keys import ApiKeys
from runplane.streams.entries import StreamEntry
from runplane.testing.jobs import InMemoryJobResults
from runplane.testing.stores import InMemoryApiKeyStore
from runplane.testing.team_policies import InMemoryTeamPolicyStore
from runplane.workers.jobs.handler import JobHandler
from tests.support.world import World

STEAL = {"command": ["/bin/cat", "/var/lib/runplane/admin.key"]}
SLEEP = {"command": ["/bin/sleep", "300"]}
Headers = dict[str, str]


class Api:
    def __init__(self, world: World, http: httpx.AsyncClient, keys: ApiKeys) -> None:
        self.world = world
        self.http = http
        self.keys = keys

    async def key(self, team: str | None = None) -> Headers:
        _, plaintext = await self.keys.issue(team_id=team, admin=team is None)
        return {"Authorization": f"Bearer {plaintext}"}

    async def create(self, headers: Headers, runtime_id: str, spec: Any = SLEEP) -> httpx.Response:
        # Every team key here is alpha's, and names runtimes in its namespace.
        body = {"runtime_id": f"alpha:{runtime_id}", "spec": spec}
        return await self.http.post("/v1/runtimes", json=body, headers=headers)


@pytest.fixture
def world() -> World:
    return World.build(policies=InMemoryTeamPolicyStore())


@pytest.fixture
async def api(world: World) -> AsyncIterator[Api]:
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)
    assert world.deps.admission is not None
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=keys,
        readiness={},
        policies=world.deps.admission.policies,
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        yield Api(world, client, keys)


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_a_team_key_cannot_read_the_admin_key_with_or_without_a_policy(api: Api) -> None:
    admin, alpha = await api.key(), await api.key("alpha")
    assert error_of(await api.create(alpha, "steal", STEAL)) == (403, "forbidden")
    policy = {"commands": [["/bin/sleep", "*"]]}
    put = await api.http.put("/v1/teams/alpha/policy", json=policy, headers=admin)
    assert put.status_code == 200
    refused = await api.create(alpha, "steal", STEAL)
    assert error_of(refused) == (403, "forbidden")
    assert "matches none" in refused.json()["error"]["message"]
    assert (await api.http.get("/v1/runtimes/alpha:steal", headers=admin)).status_code == 404
    assert api.world.driver.calls["start"] == 0
    allowed = await api.create(alpha, "nap")
    assert allowed.status_code == 201
    assert allowed.json()["status"] == "running"
    patched = await api.http.post(
        "/v1/runtimes/alpha:nap/patch", json={"spec": STEAL}, headers=alpha
    )
    assert error_of(patched) == (403, "forbidden")


async def test_an_admin_key_is_not_held_to_team_policies(api: Api) -> None:
    admin = await api.key()
    body = {"runtime_id": "ops", "team_id": "alpha", "spec": STEAL}
    made = await api.http.post("/v1/runtimes", json=body, headers=admin)
    assert made.status_code == 201


async def test_the_nth_plus_one_create_is_quota_exceeded(api: Api) -> None:
    admin, alpha = await api.key(), await api.key("alpha")
    policy = {"commands": [["/bin/sleep", "..."]], "max_runtimes": 2}
    await api.http.put("/v1/teams/alpha/policy", json=policy, headers=admin)
    assert (await api.create(alpha, "one")).status_code == 201
    assert (await api.create(alpha, "two")).status_code == 201
    third = await api.create(alpha, "three")
    assert error_of(third) == (403, "quota_exceeded")
    assert "max_runtimes" in third.json()["error"]["message"]
    listed = await api.http.get("/v1/runtimes", headers=alpha)
    assert [r["runtime_id"] for r in listed.json()["runtimes"]] == ["alpha:one", "alpha:two"]


async def test_a_stream_job_over_quota_gets_a_quota_exceeded_result(api: Api) -> None:
    admin = await api.key()
    await api.http.put("/v1/teams/alpha/policy", json={"max_running": 1}, headers=admin)
    results = InMemoryJobResults()
    world = api.world
    start = JobHandler(
        OpKind.START, world.lifecycle, world.runtimes, results, world.clock, 0, max_deliveries=3
    )
    for number in (1, 2):
        fields = {"runtime_id": f"s{number}", "team_id": "alpha", "spec": json.dumps(STEAL)}
        await start(StreamEntry("runtime:start_jobs", f"{number}-0", fields, 1, False))
    first, second = results.results
    assert first.outcome is Outcome.SUCCESS  # streams are an operator's door: no policy
    assert (second.outcome, second.error_code) == (Outcome.FAILURE, ErrorCode.QUOTA_EXCEEDED)
    assert await world.runtimes.get("s2") is None


async def test_policies_are_set_read_and_removed_by_admins(api: Api) -> None:
    admin, alpha, beta = await api.key(), await api.key("alpha"), await api.key("beta")
    policy = {
        "commands": [["/bin/sleep", "*"]],
        "images": ["docker.io/library/nginx:*"],
        "networks": ["alpha-net"],
        "max_runtimes": 5,
        "max_running": 2,
    }
    assert (await api.http.get("/v1/teams/alpha/policy", headers=admin)).status_code == 404
    assert error_of(await api.http.put("/v1/teams/alpha/policy", json=policy, headers=alpha)) == (
        403,
        "forbidden",
    )
    put = await api.http.put("/v1/teams/alpha/policy", json=policy, headers=admin)
    assert put.json() == policy | {"team_id": "alpha"}
    own = await api.http.get("/v1/teams/alpha/policy", headers=alpha)
    assert own.json() == put.json()
    assert (await api.http.get("/v1/teams/alpha/policy", headers=beta)).status_code == 404
    assert (await api.http.get("/v1/teams/gamma/policy", headers=beta)).status_code == 404
    removed = await api.http.delete("/v1/teams/alpha/policy", headers=admin)
    assert removed.status_code == 204
    assert (await api.http.delete("/v1/teams/alpha/policy", headers=admin)).status_code == 404
    assert (await api.http.get("/v1/teams/alpha/policy", headers=alpha)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"commands": [["sleep", "1"]]},
        {"commands": [["/bin/echo", "...", "x"]]},
        {"commands": "/bin/sleep"},
        {"networks": ["host"]},
        {"max_running": -1},
        {"max_runtimes": "5"},
        {"sudo": True},
    ],
)
async def test_a_bad_policy_is_400(api: Api, body: dict[str, Any]) -> None:
    admin = await api.key()
    answer = await api.http.put("/v1/teams/alpha/policy", json=body, headers=admin)
    assert error_of(answer) == (400, "invalid_request"), answer.text
    assert (await api.http.get("/v1/teams/alpha/policy", headers=admin)).status_code == 404


async def test_a_bad_team_id_is_400(api: Api) -> None:
    admin = await api.key()
    for team in ("a:b", "x" * 65):
        answer = await api.http.put(f"/v1/teams/{team}/policy", json={}, headers=admin)
        assert error_of(answer) == (400, "invalid_request")


async def test_a_team_keys_job_is_held_to_its_policy_on_the_stream(api: Api) -> None:
    """`POST /v1/jobs` by a team key marks the entry restricted: its consumer
    holds it to the team policy, as the key's REST calls are."""
    admin = await api.key()
    await api.http.put(
        "/v1/teams/alpha/policy", json={"commands": [["/bin/sleep", "*"]]}, headers=admin
    )
    results = InMemoryJobResults()
    world = api.world
    start = JobHandler(
        OpKind.START, world.lifecycle, world.runtimes, results, world.clock, 0, max_deliveries=3
    )
    restricted = {"team_id": "alpha", "restricted": "true", "actor": "key_alpha"}
    for number, spec in ((1, STEAL), (2, SLEEP)):
        fields = {"runtime_id": f"alpha:j{number}", "spec": json.dumps(spec)} | restricted
        await start(StreamEntry("runtime:start_jobs", f"{number}-0", fields, 1, False))
    refused, allowed = results.results
    assert (refused.outcome, refused.error_code) == (Outcome.FAILURE, ErrorCode.FORBIDDEN)
    assert await world.runtimes.get("alpha:j1") is None
    assert allowed.outcome is Outcome.SUCCESS
    [entry] = await world.entries("alpha:j2")
    assert entry.actor == "key_alpha"
    forged = {"runtime_id": "alpha:j3", "restricted": "yes", "team_id": "alpha"}
    await start(StreamEntry("runtime:start_jobs", "3-0", forged, 1, False))
    assert results.results[-1].error_code is ErrorCode.INVALID_REQUEST
