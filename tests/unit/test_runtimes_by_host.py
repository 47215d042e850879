"""Runtimes by host: `GET /v1/runtimes?host_id=` (admins and teams alike) and
`runplane runtime ls --host`, which shows each runtime's host."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.cli.main import app
from runplane.services.api_keys import ApiKeys
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.store_backends import make_record
from tests.support.world import SPEC, World


class Api:
    def __init__(self, http: httpx.AsyncClient, keys: ApiKeys) -> None:
        self.http = http
        self.keys = keys

    async def key(self, team: str | None = None) -> dict[str, str]:
        _, plaintext = await self.keys.issue(team_id=team, admin=team is None)
        return {"Authorization": f"Bearer {plaintext}"}

    async def ids(self, headers: dict[str, str], **params: str) -> list[str]:
        answer = await self.http.get("/v1/runtimes", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return [r["runtime_id"] for r in answer.json()["runtimes"]]


@pytest.fixture
async def api(world: World) -> AsyncIterator[Api]:
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=keys,
        readiness={},
    )
    await world.runtimes.create(make_record("alpha:a", team_id="alpha", host_id="h1"))
    await world.runtimes.create(make_record("alpha:b", team_id="alpha", host_id="h2"))
    await world.runtimes.create(make_record("beta:c", team_id="beta", host_id="h1"))
    await world.runtimes.create(make_record("beta:d", team_id="beta", host_id=None))
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        yield Api(client, keys)


async def test_an_admin_lists_the_runtimes_of_a_host(api: Api) -> None:
    admin = await api.key()
    assert await api.ids(admin, host_id="h1") == ["alpha:a", "beta:c"]
    assert await api.ids(admin, host_id="h1", team_id="beta") == ["beta:c"]
    assert await api.ids(admin, host_id="h3") == []
    assert len(await api.ids(admin)) == 4


async def test_a_team_sees_only_its_own_runtimes_on_a_host(api: Api) -> None:
    alpha = await api.key("alpha")
    assert await api.ids(alpha, host_id="h1") == ["alpha:a"]
    assert await api.ids(alpha, host_id="h2") == ["alpha:b"]
    assert await api.ids(alpha, host_id="h1", team_id="beta") == []


async def test_the_runtime_shows_its_host(api: Api) -> None:
    answer = await api.http.get("/v1/runtimes/alpha:b", headers=await api.key())
    assert answer.json()["host_id"] == "h2"


@pytest.mark.parametrize("host_id", ["", "-h", "a:b", "x" * 129, "h 1"])
async def test_a_malformed_host_id_is_400(api: Api, host_id: str) -> None:
    answer = await api.http.get(
        "/v1/runtimes", params={"host_id": host_id}, headers=await api.key("alpha")
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
    assert answer.json()["error"]["message"].startswith("host_id must be 1-128 characters")


def test_runtime_ls_host_asks_for_the_host_and_shows_it() -> None:
    asked: list[dict[str, list[str]]] = []
    runtime = {
        "runtime_id": "alpha:a",
        "team_id": "alpha",
        "status": "running",
        "driver": "process",
        "host_id": "box-7",
        "container_id": "p-1",
        "engine_endpoint": None,
        "updated_at": "2030-01-02T00:00:00Z",
    }

    class Runtimes(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(parse_qs(urlsplit(self.path).query))
            body = json.dumps({"runtimes": [runtime], "next_cursor": None}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runtimes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = CliRunner().invoke(
            app,
            ["runtime", "ls", "--host", "box-7", "--url", url, "--api-key", "k"],
            catch_exceptions=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.exit_code == 0, done.stdout
    assert asked == [{"host_id": ["box-7"]}]
    assert "HOST" in done.stdout
    assert "box-7" in done.stdout


async def test_create_keeps_a_placement_and_refuses_a_bad_one(api: Api) -> None:
    admin = await api.key()
    spec = {**SPEC, "placement": {"host_labels": {"zone": "a"}}}
    made = await api.http.post(
        "/v1/runtimes", json={"runtime_id": "p", "spec": spec}, headers=admin
    )
    assert made.status_code == 201, made.text
    assert made.json()["spec"]["placement"] == {"host_labels": {"zone": "a"}}
    bad = {**SPEC, "placement": {"host_labels": {"zone": ["a"]}}}
    refused = await api.http.post(
        "/v1/runtimes", json={"runtime_id": "q", "spec": bad}, headers=admin
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "invalid_request",
        "message": "placement.host_labels['zone'] must be a string, not a list",
    }
