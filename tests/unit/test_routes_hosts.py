"""/v1/hosts through the real app on fakes: admin keys only, filters, 404, 409."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.domain.hosts import Capacity
from runplane.services.api_keys import ApiKeys
from runplane.services.hosts.registry import HostDetails, HostRegistry
from runplane.testing.hosts import InMemoryHostStore
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.clock import FakeClock
from tests.support.world import World

Headers = dict[str, str]


class Api:
    def __init__(
        self, http: httpx.AsyncClient, registry: HostRegistry, admin: Headers, team: Headers
    ) -> None:
        self.http = http
        self.registry = registry
        self.admin = admin
        self.team = team


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    world = World.build()
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)
    registry = HostRegistry(InMemoryHostStore(), world.clock, world.deps.tokens, down_after_s=10)
    for host_id, zone in (("h-b", "b"), ("h-a", "a"), ("h-c", "a")):
        await registry.register(
            HostDetails(
                host_id,
                address=f"{host_id}.lan",
                labels={"zone": zone},
                capacity=Capacity(cpus=2.0, memory_mb=2048),
                drivers=("process",),
            )
        )
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=keys,
        readiness={},
        hosts=registry,
    )
    _, admin = await keys.issue(team_id=None, admin=True)
    _, team = await keys.issue(team_id="alpha", admin=False)
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        yield Api(
            client,
            registry,
            {"Authorization": f"Bearer {admin}"},
            {"Authorization": f"Bearer {team}"},
        )


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_an_admin_lists_every_host(api: Api) -> None:
    answer = await api.http.get("/v1/hosts", headers=api.admin)
    assert answer.status_code == 200
    hosts = answer.json()["hosts"]
    assert [h["host_id"] for h in hosts] == ["h-a", "h-b", "h-c"]
    first = hosts[0]
    assert (first["status"], first["admin_status"], first["drivers"]) == ("up", "up", ["process"])
    assert first["capacity"] == {"cpus": 2.0, "memory_mb": 2048, "max_runtimes": None}
    assert first["labels"] == {"zone": "a"}


async def test_filters_by_status_and_label(api: Api) -> None:
    await api.http.post("/v1/hosts/h-c/cordon", headers=api.admin)
    zone_a = await api.http.get("/v1/hosts", params={"label": "zone=a"}, headers=api.admin)
    assert [h["host_id"] for h in zone_a.json()["hosts"]] == ["h-a", "h-c"]
    up_in_a = await api.http.get(
        "/v1/hosts", params={"label": "zone=a", "status": "up"}, headers=api.admin
    )
    assert [h["host_id"] for h in up_in_a.json()["hosts"]] == ["h-a"]
    bad = await api.http.get("/v1/hosts", params={"label": "zone"}, headers=api.admin)
    assert error_of(bad) == (400, "invalid_request")
    bad_status = await api.http.get("/v1/hosts", params={"status": "gone"}, headers=api.admin)
    assert error_of(bad_status) == (400, "invalid_request")


async def test_a_team_key_is_forbidden_every_host_call(api: Api) -> None:
    calls = [
        ("GET", "/v1/hosts"),
        ("GET", "/v1/hosts/h-a"),
        ("GET", "/v1/hosts/nobody"),
        ("POST", "/v1/hosts/h-a/drain"),
        ("POST", "/v1/hosts/h-a/cordon"),
        ("POST", "/v1/hosts/h-a/uncordon"),
    ]
    for method, path in calls:
        answer = await api.http.request(method, path, headers=api.team)
        assert error_of(answer) == (403, "forbidden"), path
    unchanged = await api.http.get("/v1/hosts/h-a", headers=api.admin)
    assert unchanged.json()["status"] == "up"
    assert error_of(await api.http.get("/v1/hosts")) == (401, "unauthorized")


async def test_get_answers_the_host_or_404(api: Api) -> None:
    found = await api.http.get("/v1/hosts/h-b", headers=api.admin)
    assert found.status_code == 200
    assert found.json()["address"] == "h-b.lan"
    for host_id in ("nobody", "..", "a%20b"):
        missing = await api.http.get(f"/v1/hosts/{host_id}", headers=api.admin)
        assert error_of(missing) == (404, "not_found"), host_id
        action = await api.http.post(f"/v1/hosts/{host_id}/drain", headers=api.admin)
        assert error_of(action) == (404, "not_found"), host_id


async def test_drain_cordon_uncordon_answer_the_host(api: Api) -> None:
    for action, status in (("drain", "draining"), ("cordon", "cordoned"), ("uncordon", "up")):
        answer = await api.http.post(f"/v1/hosts/h-a/{action}", headers=api.admin)
        assert answer.status_code == 200
        assert (answer.json()["status"], answer.json()["admin_status"]) == (status, status)
    again = await api.http.post("/v1/hosts/h-a/uncordon", headers=api.admin)
    assert again.status_code == 200
    assert again.json()["status"] == "up"


async def test_a_down_host_refuses_admin_moves_with_409(api: Api) -> None:
    clock = api.registry.clock
    assert isinstance(clock, FakeClock)
    clock.advance(11)
    await api.registry.heartbeat("h-a")
    await api.registry.mark_missed()
    for action in ("drain", "cordon", "uncordon"):
        answer = await api.http.post(f"/v1/hosts/h-b/{action}", headers=api.admin)
        assert error_of(answer) == (409, "invalid_state"), action
    down = await api.http.get("/v1/hosts", params={"status": "down"}, headers=api.admin)
    assert [h["host_id"] for h in down.json()["hosts"]] == ["h-b", "h-c"]
