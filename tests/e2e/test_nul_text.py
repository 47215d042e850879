"""A NUL character (U+0000) in any input is a clear 400, or a failure result,
on every backend: PostgreSQL can neither store nor compare text holding one,
and before it was refused at the edge a list cursor, a path id or a key's
name holding one answered 500 there (and the connection was dropped). Runs
on SQLite (plain) and on PostgreSQL (`RUNPLANE_E2E_BACKEND=cluster`)."""

from __future__ import annotations

from tests.e2e.test_jobs import redis_of, wait_results
from tests.support.serve import RunplaneServer

NUL = "a\x00b"


def test_a_nul_anywhere_is_a_400_and_the_serve_goes_on(serve: RunplaneServer) -> None:
    with serve.client() as http:
        spec = {"command": ["sleep", "600"], "stop_timeout_s": 5}
        made = http.post("/v1/runtimes", json={"runtime_id": "nul-1", "spec": spec})
        assert made.status_code == 201, made.text
        answers = [
            http.get("/v1/runtimes", params={"cursor": NUL}),
            http.get("/v1/runtimes", params={"team_id": NUL}),
            http.get("/v1/snapshots", params={"cursor": NUL}),
            http.get("/v1/keys", params={"cursor": NUL}),
            http.get("/v1/runtimes/a%00b"),
            http.delete("/v1/webhooks/a%00b"),
            http.post("/v1/keys", json={"team_id": "alpha", "name": NUL}),
            http.post("/v1/runtimes/nul-1/stop", json={"reason": "requested", "job_id": NUL}),
            http.post("/v1/runtimes", json={"runtime_id": "nul-2", "spec": {"command": [NUL]}}),
        ]
        for answer in answers:
            assert answer.status_code == 400, (answer.request.url, answer.text)
            assert answer.json()["error"]["code"] == "invalid_request"
            assert "NUL" in answer.json()["error"]["message"]
        # Nothing was made, and the same client's next calls are answered.
        assert http.get("/v1/runtimes/nul-2").status_code == 404
        listed = http.get("/v1/runtimes")
        assert listed.status_code == 200
        assert [r["runtime_id"] for r in listed.json()["runtimes"]] == ["nul-1"]


def test_a_nul_in_a_stream_job_is_a_failure_result(serve: RunplaneServer, redis_url: str) -> None:
    with serve.client() as http:
        spec = {"command": ["sleep", "600"], "stop_timeout_s": 5}
        made = http.post("/v1/runtimes", json={"runtime_id": "nul-3", "spec": spec})
        assert made.status_code == 201, made.text
    client = redis_of(redis_url)
    client.xadd("runtime:stop_jobs", {"runtime_id": "nul-3", "reason": NUL, "job_id": "j-nul"})
    client.xadd(
        "runtime:stop_jobs", {"runtime_id": "nul-3", "reason": "requested", "job_id": "j-ok"}
    )
    results = {r["job_id"]: r for r in wait_results(redis_url, 2, job_ids={"j-nul", "j-ok"})}
    assert results["j-nul"]["outcome"] == "failure", results
    assert results["j-nul"]["error_code"] == "invalid_request"
    assert "NUL" in results["j-nul"]["error_message"]
    assert results["j-ok"]["outcome"] == "success", results  # the consumer moved on
