"""Teams over REST, through the app on SQLite and Postgres with Redis leases
(and on the in-memory stores): idempotency keys per team, checked; team keys
name runtimes `<team>:<name>`; another team's runtime answers exactly like a
missing one; a refused call is logged for its caller only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.jobs import RedisJobQueue
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.sql.api_key_store import SqlApiKeyStore
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.migrate import upgrade_database
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.system import SecretTokenGenerator, SystemClock
from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.ports.api_keys import ApiKeyStore
from runplane.ports.leases import LeaseStore
from runplane.ports.lifecycle import OperationLog, RuntimeStore
from runplane.ports.streams import JobQueue
from runplane.services.api_keys import ApiKeys
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.service import Lifecycle
from runplane.testing.driver import InMemoryDriver
from runplane.testing.job_streams import InMemoryJobQueue, InMemoryStreams
from runplane.testing.leases import InMemoryLeaseStore
from runplane.testing.stores import InMemoryApiKeyStore, InMemoryOperationLog, InMemoryRuntimeStore
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer

SPEC: dict[str, Any] = {"command": ["sleep", "300"]}
Headers = dict[str, str]


@dataclass
class Tenants:
    http: httpx.AsyncClient
    leases: LeaseStore
    admin: Headers
    alpha: Headers
    beta: Headers

    async def runtime(self, runtime_id: str, team: str) -> None:
        """An admin makes a running runtime for `team` (admins name any id), with
        a secret of the team's in its spec."""
        spec = SPEC | {"env": {"TOKEN": f"{team}-secret"}}
        body = {"runtime_id": runtime_id, "team_id": team, "spec": spec}
        made = await self.http.post("/v1/runtimes", json=body, headers=self.admin)
        assert made.status_code == 201, made.text

    async def status(self, runtime_id: str) -> str:
        got = await self.http.get(f"/v1/runtimes/{runtime_id}", headers=self.admin)
        status: str = got.json()["status"]
        return status

    async def operation_ids(self, runtime_id: str, key: Headers) -> set[str]:
        listed = await self.http.get(f"/v1/runtimes/{runtime_id}/operations", headers=key)
        assert listed.status_code == 200, listed.text
        return {o["operation_id"] for o in listed.json()["operations"]}


def stores_on(database: SqlDatabase) -> tuple[RuntimeStore, OperationLog, ApiKeyStore]:
    return SqlRuntimeStore(database), SqlOperationLog(database), SqlApiKeyStore(database)


@pytest_asyncio.fixture(loop_scope="session", params=["memory", "sqlite", "postgres"])
async def tenants(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    redis_server: RedisServer,
) -> AsyncIterator[Tenants]:
    database: SqlDatabase | None = None
    client: redis.asyncio.Redis | None = None
    leases: LeaseStore
    jobs: JobQueue
    if request.param == "memory":
        log = InMemoryOperationLog()
        runtimes: RuntimeStore = InMemoryRuntimeStore(log)
        operations: OperationLog = log
        key_store: ApiKeyStore = InMemoryApiKeyStore()
        leases = InMemoryLeaseStore(SystemClock())
        jobs = InMemoryJobQueue(InMemoryStreams())
    else:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'runplane.db'}"
        else:
            server: PostgresServer = request.getfixturevalue("postgres_server")
            url = server.create_database(f"tn_{uuid.uuid4().hex[:10]}")
        database = SqlDatabase.from_url(url)
        await upgrade_database(database)
        runtimes, operations, key_store = stores_on(database)
        client = connect(redis_server.url)
        leases = RedisLeaseStore(client)
        jobs = RedisJobQueue(client)
    deps = Dependencies(
        runtimes=runtimes,
        operations=operations,
        leases=leases,
        drivers={"memory": InMemoryDriver()},
        clock=SystemClock(),
        tokens=SecretTokenGenerator(),
        lease_ttl_ms=30_000,
    )
    keys = ApiKeys(key_store, SystemClock())
    context = ApiContext(
        lifecycle=Lifecycle.build(deps, "memory"),
        runtimes=runtimes,
        operations=operations,
        keys=keys,
        readiness={},
        jobs=jobs,
    )

    async def key(team: str | None) -> Headers:
        _, plaintext = await keys.issue(team_id=team, admin=team is None)
        return {"Authorization": f"Bearer {plaintext}"}

    transport = httpx.ASGITransport(app=create_app(context))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as http:
            yield Tenants(http, leases, await key(None), await key("alpha"), await key("beta"))
    finally:
        if client is not None:
            await client.aclose()
        if database is not None:
            await database.dispose()


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


async def test_another_teams_idempotency_key_is_a_fresh_operation(tenants: Tenants) -> None:
    """Alpha sends beta's Idempotency-Key on its own runtime: alpha's call
    applies on alpha's runtime (nothing of beta's comes back), and beta's later
    call with it applies too."""
    t = tenants
    await t.runtime("alpha:web", "alpha")
    await t.runtime("beta:web", "beta")
    k = {"Idempotency-Key": "beta-key-1"}
    alpha = await t.http.post("/v1/runtimes/alpha:web/stop", headers=t.alpha | k)
    assert alpha.status_code == 200, alpha.text
    assert alpha.json()["runtime"]["runtime_id"] == "alpha:web"
    assert "beta-secret" not in alpha.text
    beta = await t.http.post("/v1/runtimes/beta:web/stop", headers=t.beta | k)
    assert beta.status_code == 200, beta.text
    assert (beta.json()["error_code"], beta.json()["runtime"]["status"]) == (None, "stopped")
    assert beta.json()["operation_id"] != alpha.json()["operation_id"]
    assert await t.status("beta:web") == "stopped"
    # Each repeat answers its own team's first result.
    beta_again = await t.http.post("/v1/runtimes/beta:web/stop", headers=t.beta | k)
    alpha_again = await t.http.post("/v1/runtimes/alpha:web/stop", headers=t.alpha | k)
    assert beta_again.json()["operation_id"] == beta.json()["operation_id"]
    assert alpha_again.json()["operation_id"] == alpha.json()["operation_id"]
    assert alpha_again.json()["runtime"]["runtime_id"] == "alpha:web"


async def test_the_same_create_key_in_two_teams_makes_two_runtimes(tenants: Tenants) -> None:
    t = tenants
    k = {"Idempotency-Key": "create-1"}
    spec = {"command": ["sleep", "300"]}
    alpha = await t.http.post("/v1/runtimes", json={"spec": spec}, headers=t.alpha | k)
    beta = await t.http.post("/v1/runtimes", json={"spec": spec}, headers=t.beta | k)
    assert (alpha.status_code, beta.status_code) == (201, 201), (alpha.text, beta.text)
    assert alpha.json()["runtime_id"].startswith("alpha:rt-")
    assert beta.json()["runtime_id"].startswith("beta:rt-")
    again = await t.http.post("/v1/runtimes", json={"spec": spec}, headers=t.beta | k)
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert again.json()["runtime_id"] == beta.json()["runtime_id"]


@pytest.mark.parametrize(
    "bad", ["", " ", "a b", "tab\there", "x" * 257, "caf\xe9".encode("latin-1")]
)
async def test_an_empty_or_bad_idempotency_key_is_400_and_breaks_nothing(
    tenants: Tenants, bad: str | bytes
) -> None:
    t = tenants
    await t.runtime("alpha:web", "alpha")
    await t.runtime("beta:web", "beta")
    before = await t.operation_ids("alpha:web", t.admin)
    k: dict[str, str | bytes] = {"Idempotency-Key": bad}
    answers = [
        await t.http.post("/v1/runtimes/alpha:web/stop", headers=t.alpha | k),
        await t.http.post("/v1/runtimes/alpha:web/pause", headers=t.alpha | k),
        await t.http.delete("/v1/runtimes/alpha:web", headers=t.alpha | k),
        await t.http.post("/v1/runtimes", json={"spec": SPEC}, headers=t.alpha | k),
    ]
    for answer in answers:
        assert error_of(answer) == (
            400,
            "invalid_request",
            "Idempotency-Key must be 1-256 printable ASCII characters, no spaces",
        )
    assert await t.operation_ids("alpha:web", t.admin) == before  # nothing happened
    assert await t.status("alpha:web") == "running"
    # Everyone's calls go on working, with or without a key.
    for key, runtime_id in ((t.alpha, "alpha:web"), (t.beta, "beta:web")):
        paused = await t.http.post(f"/v1/runtimes/{runtime_id}/pause", headers=key)
        assert paused.status_code == 200, paused.text
        resumed = await t.http.post(
            f"/v1/runtimes/{runtime_id}/resume", headers=key | {"Idempotency-Key": "ok-1"}
        )
        assert resumed.status_code == 200, resumed.text
        assert await t.status(runtime_id) == "running"


async def test_a_team_key_names_runtimes_in_its_own_namespace(tenants: Tenants) -> None:
    t = tenants
    spec = {"command": ["sleep", "300"]}
    outside = "a team key names runtimes alpha:<name> (or leaves runtime_id out)"
    for runtime_id in ("beta:x", "x", "alpha:", "alphax:y", "ALPHA:x"):
        body = {"runtime_id": runtime_id, "spec": spec}
        answer = await t.http.post("/v1/runtimes", json=body, headers=t.alpha)
        assert error_of(answer) == (400, "invalid_request", outside), runtime_id
    other_team = await t.http.post(
        "/v1/runtimes", json={"team_id": "beta", "spec": spec}, headers=t.alpha
    )
    assert error_of(other_team)[:2] == (400, "invalid_request")
    for team in ("", "a:b", "a b"):
        for key in (t.alpha, t.admin):
            body = {"team_id": team, "spec": spec}
            answer = await t.http.post("/v1/runtimes", json=body, headers=key)
            assert error_of(answer)[:2] == (400, "invalid_request"), (team, answer.text)
    listed = await t.http.get("/v1/runtimes", headers=t.admin)
    assert listed.json()["runtimes"] == []
    made = await t.http.post(
        "/v1/runtimes", json={"runtime_id": "alpha:x", "spec": spec}, headers=t.alpha
    )
    assert (made.status_code, made.json()["team_id"]) == (201, "alpha")


async def test_a_taken_id_of_another_team_cannot_even_be_tried(tenants: Tenants) -> None:
    """Beta's `beta:web` exists: alpha's create of it is refused exactly as the
    create of `beta:nothing`, by the namespace, before any lookup."""
    t = tenants
    await t.runtime("beta:web", "beta")
    taken = await t.http.post(
        "/v1/runtimes", json={"runtime_id": "beta:web", "spec": SPEC}, headers=t.alpha
    )
    free = await t.http.post(
        "/v1/runtimes", json={"runtime_id": "beta:nothing", "spec": SPEC}, headers=t.alpha
    )
    assert error_of(taken) == error_of(free)
    assert taken.status_code == 400


async def test_another_teams_runtime_answers_exactly_like_a_missing_one(
    tenants: Tenants,
) -> None:
    t = tenants
    await t.runtime("beta:web", "beta")
    # An operation of beta's in flight holds the lease: still not_found for alpha.
    assert await t.leases.try_acquire("beta:web", "beta-token", 30_000)
    calls = [
        ("GET", "", None),
        ("GET", "/operations", None),
        ("GET", "/wait?status=stopped&timeout=0.1", None),
        ("DELETE", "", None),
        ("POST", "/stop", None),
        ("POST", "/start", None),
        ("POST", "/restart", None),
        ("POST", "/pause", None),
        ("POST", "/resume", None),
        ("POST", "/patch", {"spec": SPEC}),
    ]
    for method, tail, body in calls:
        answers = [
            await t.http.request(method, f"/v1/runtimes/{rid}{tail}", json=body, headers=t.alpha)
            for rid in ("beta:web", "beta:nothing")
        ]
        theirs, missing = answers
        assert error_of(theirs) == error_of(missing), (method, tail)
        assert error_of(theirs)[:2] == (404, "not_found")
        assert theirs.json()["error"].keys() == missing.json()["error"].keys()
        assert theirs.headers.keys() == missing.headers.keys()
    assert await t.leases.release("beta:web", "beta-token")  # alpha never touched it
    assert await t.status("beta:web") == "running"


async def test_a_refused_call_is_logged_for_its_caller_only(tenants: Tenants) -> None:
    t = tenants
    await t.runtime("beta:web", "beta")
    refused = await t.http.post("/v1/runtimes/beta:web/stop", headers=t.alpha)
    assert error_of(refused)[:2] == (404, "not_found")
    operation_id = refused.json()["error"]["operation_id"]
    assert operation_id not in await t.operation_ids("beta:web", t.beta)
    assert operation_id in await t.operation_ids("beta:web", t.admin)
    hidden = await t.http.get(f"/v1/operations/{operation_id}", headers=t.beta)
    nothing = await t.http.get("/v1/operations/no-such-operation", headers=t.beta)
    assert error_of(hidden) == error_of(nothing)
    own = await t.http.get(f"/v1/operations/{operation_id}", headers=t.alpha)
    assert own.status_code == 200
    assert (own.json()["error_code"], own.json()["status_from"]) == ("not_found", None)
    # Beta's own calls, and an admin's on beta's runtime, are in beta's list.
    stopped = await t.http.post("/v1/runtimes/beta:web/stop", headers=t.admin)
    assert stopped.json()["operation_id"] in await t.operation_ids("beta:web", t.beta)


async def test_a_team_key_submits_jobs_in_its_namespace_or_for_its_runtimes(
    tenants: Tenants,
) -> None:
    """A start job with a spec creates the runtime it does not find: a team key
    may name only its namespace, or a runtime it already has; another team's
    id is refused exactly like a free one."""
    t = tenants
    await t.runtime("beta:web", "beta")
    await t.runtime("legacy", "alpha")  # an admin named it outside the namespace
    start = {"op": "start", "spec": SPEC}
    answers = {
        runtime_id: await t.http.post(
            "/v1/jobs", json=start | {"runtime_id": runtime_id}, headers=t.alpha
        )
        for runtime_id in ("beta:web", "beta:nothing", "web", "alpha:new", "legacy")
    }
    assert error_of(answers["beta:web"]) == error_of(answers["beta:nothing"])
    assert error_of(answers["beta:web"]) == error_of(answers["web"])
    assert error_of(answers["web"]) == (
        400,
        "invalid_request",
        "a team key names runtimes alpha:<name> (or leaves runtime_id out)",
    )
    assert answers["alpha:new"].status_code == 202, answers["alpha:new"].text
    assert answers["legacy"].status_code == 202, answers["legacy"].text
    bad = await t.http.post(
        "/v1/jobs", json=start | {"runtime_id": "alpha:new", "job_id": ""}, headers=t.alpha
    )
    assert error_of(bad)[:2] == (400, "invalid_request")
