"""`runplane jobs submit --wait` prints a job's result and exits by its outcome;
`GET /v1/jobs/{job_id}` reads a result, and a team reads only its own."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.support.serve import RunplaneServer

SLEEPER = {"command": ["sleep", "300"], "stop_timeout_s": 5}


def test_submit_wait_prints_the_result_and_exits_by_outcome(serve: RunplaneServer) -> None:
    serve.cli("runtime", "create", "demo", "--command", "sleep 300", check=True)

    stopped = serve.cli("jobs", "submit", "stop", "demo", "--reason", "idle", "--wait")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith("job runtime:stop_jobs/")
    assert stopped.stdout.rstrip().endswith(": stop demo: success; demo is stopped")

    again = serve.cli_json(
        "jobs", "submit", "stop", "demo", "--reason", "idle", "--wait", "--job-id", "j-again"
    )
    assert {k: again[k] for k in ("job_id", "outcome", "error_code", "status")} == {
        "job_id": "j-again",
        "outcome": "success",
        "error_code": "replay_no_op",
        "status": "stopped",
    }
    assert json.loads(serve.cli("jobs", "result", "j-again", "--json").stdout) == again

    missing = serve.cli("jobs", "submit", "start", "ghost", "--wait")
    assert missing.returncode == 1
    assert missing.stdout.rstrip().endswith(": start ghost: failure (not_found: no such runtime)")
    assert missing.stderr == ""


def test_a_team_reads_only_its_own_job_results(serve: RunplaneServer) -> None:
    alpha = serve.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    beta = serve.cli("keys", "create", "--team", "beta", check=True).stdout.strip()
    with serve.client() as admin:
        made = admin.post(
            "/v1/runtimes", json={"runtime_id": "teamweb", "team_id": "alpha", "spec": SLEEPER}
        )
        assert made.status_code == 201, made.text
        submit(admin, {"op": "stop", "runtime_id": "teamweb", "reason": "requested"}, "web-stop")
    with serve.client(alpha) as http:
        submit(http, {"op": "start", "runtime_id": "alpha:ghost"}, "shared")
        alphas_own = submit(http, {"op": "start", "runtime_id": "alpha:ghost"}, None)
    with serve.client(beta) as http:
        submit(http, {"op": "start", "runtime_id": "beta:ghost"}, "shared")
    with serve.client() as admin:
        for job_id in ("web-stop", "shared", alphas_own):
            wait_for_result(admin, job_id)
        assert read(admin, alphas_own)["runtime_id"] == "alpha:ghost"

    with serve.client(alpha) as http:
        assert read(http, "shared")["runtime_id"] == "alpha:ghost"
        assert read(http, "web-stop")["status"] == "stopped"  # its team's runtime
    with serve.client(beta) as http:
        assert read(http, "shared")["runtime_id"] == "beta:ghost"
        never = http.get("/v1/jobs/never-submitted")
        for job_id in ("web-stop", alphas_own):
            other = http.get(f"/v1/jobs/{job_id}")
            # As absent as a job never submitted: nothing tells the two apart.
            assert (other.status_code, other.json()) == (404, never.json())
        assert never.json()["error"]["code"] == "not_found"

    assert (
        serve.cli("jobs", "result", "shared", "--api-key", beta)
        .stdout.rstrip()
        .endswith(": start beta:ghost: failure (not_found: no such runtime)")
    )
    with serve.client() as admin:
        assert admin.get("/v1/jobs/has space").json()["error"]["code"] == "invalid_request"
        assert admin.get("/v1/jobs/x", params={"after": "nope"}).status_code == 400


def submit(http: httpx.Client, body: dict[str, Any], job_id: str | None) -> str:
    answer = http.post("/v1/jobs", json=body | {"job_id": job_id})
    assert answer.status_code == 202, answer.text
    submitted: str = answer.json()["job_id"]
    return submitted


def read(http: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = http.get(f"/v1/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def wait_for_result(http: httpx.Client, job_id: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while http.get(f"/v1/jobs/{job_id}").status_code == 404:
        assert time.monotonic() < deadline, f"no result for {job_id}"
        time.sleep(0.1)
