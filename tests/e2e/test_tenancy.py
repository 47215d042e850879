"""The tenancy attacks of issue 12, tried again against `runplane serve` (SQLite,
Redis, the process driver): idempotency keys are per team and checked, team
keys name runtimes `<team>:<name>`, another team's runtime answers like a
missing one, and a refused call stays out of the runtime's team's log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import remove_everything
from tests.support.isolation import work_root
from tests.support.serve import RunplaneServer

SLEEP = {"command": ["/bin/sleep", "300"]}


@pytest.fixture
def serve(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    """serve as deployed: team runtimes run as `nobody` (never as root), and both
    teams' policies allow the sleep these tests run."""
    with work_root() as work:
        server = RunplaneServer.launch(
            tmp_path / "data", redis_url=redis_url, runtime_user="nobody", work_dir=str(work)
        )
        try:
            for team in ("alpha", "beta"):
                server.cli("teams", "policy", "set", team, "--command", "/bin/sleep *", check=True)
            yield server
        finally:
            remove_everything(server)
            server.stop()


def operation_ids(http: httpx.Client, runtime_id: str) -> set[str]:
    listed = http.get(f"/v1/runtimes/{runtime_id}/operations")
    assert listed.status_code == 200, listed.text
    return {o["operation_id"] for o in listed.json()["operations"]}


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def test_a_hostile_team_reaches_nothing_of_another(serve: RunplaneServer) -> None:
    alpha_key = serve.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    beta_key = serve.cli("keys", "create", "--team", "beta", check=True).stdout.strip()
    with serve.client() as admin, serve.client(alpha_key) as alpha, serve.client(beta_key) as beta:
        for team in ("alpha", "beta"):
            spec = SLEEP | {"env": {"TOKEN": f"{team}-secret"}}
            body = {"runtime_id": f"{team}:web", "team_id": team, "spec": spec}
            assert admin.post("/v1/runtimes", json=body).status_code == 201

        # Alpha sends beta's Idempotency-Key on its own runtime: its own fresh call.
        k = {"Idempotency-Key": "beta-stop-1"}
        mine = alpha.post("/v1/runtimes/alpha:web/stop", headers=k)
        assert mine.status_code == 200, mine.text
        assert mine.json()["runtime"]["runtime_id"] == "alpha:web"
        assert "beta-secret" not in mine.text
        # ... and beta's later call with it applies.
        theirs = beta.post("/v1/runtimes/beta:web/stop", headers=k)
        assert theirs.status_code == 200, theirs.text
        assert (theirs.json()["error_code"], theirs.json()["runtime"]["status"]) == (
            None,
            "stopped",
        )

        # An empty key is a 400 for everyone, and breaks nobody's next call.
        for http, runtime_id in ((alpha, "alpha:web"), (beta, "beta:web")):
            empty = http.post(f"/v1/runtimes/{runtime_id}/start", headers={"Idempotency-Key": ""})
            assert error_of(empty)[:2] == (400, "invalid_request")
        for http, runtime_id in ((alpha, "alpha:web"), (beta, "beta:web")):
            started = http.post(f"/v1/runtimes/{runtime_id}/start")
            assert started.status_code == 200, started.text
            assert started.json()["runtime"]["status"] == "running"

        # Alpha cannot even try an id of beta's namespace.
        taken = alpha.post("/v1/runtimes", json={"runtime_id": "beta:web", "spec": SLEEP})
        assert error_of(taken)[:2] == (400, "invalid_request")

        # Alpha's stop on beta's runtime: exactly the 404 of a missing id ...
        refused = alpha.post("/v1/runtimes/beta:web/stop")
        missing = alpha.post("/v1/runtimes/beta:nothing/stop")
        assert error_of(refused) == error_of(missing)
        assert error_of(refused)[:2] == (404, "not_found")
        # ... logged for alpha, never in beta's log; beta's runtime untouched.
        refused_id = refused.json()["error"]["operation_id"]
        assert refused_id not in operation_ids(beta, "beta:web")
        assert alpha.get(f"/v1/operations/{refused_id}").status_code == 200
        assert beta.get(f"/v1/operations/{refused_id}").status_code == 404
        assert beta.get("/v1/runtimes/beta:web").json()["status"] == "running"
