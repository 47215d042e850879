"""runplane as a new user meets it: `runplane serve`, the CLI and plain HTTP."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.e2e.conftest import remove_everything
from tests.support.serve import RunplaneServer, free_port


def wait_http(url: str, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(url, timeout=1).status_code
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return not psutil.pid_exists(pid)


def runtime_pid(server: RunplaneServer, runtime_id: str) -> int:
    runtime = server.cli_json("runtime", "get", runtime_id)
    return int(runtime["container_id"].split("-")[1])


def test_demo_flow_through_the_cli(serve: RunplaneServer) -> None:
    port = free_port()
    created = serve.cli_json(
        "runtime",
        "create",
        "demo",
        "--command",
        f"python3 -m http.server {port}",
        "--port",
        str(port),
    )
    assert created["status"] == "running"
    assert created["engine_endpoint"] == f"127.0.0.1:{port}"
    assert wait_http(f"http://127.0.0.1:{port}/") == 200

    stopped = serve.cli("runtime", "stop", "demo", check=True)
    assert "demo is stopped" in stopped.stdout
    again = serve.cli("runtime", "stop", "demo", check=True)
    assert "replay_no_op" in again.stdout

    serve.cli("runtime", "start", "demo", check=True)
    pid = runtime_pid(serve, "demo")
    assert wait_http(f"http://127.0.0.1:{port}/") == 200
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    vanished = stop_despite_a_health_write(serve, "demo")
    assert vanished["outcome"] == "success"
    assert vanished["runtime"]["status"] == "removed"

    ops = serve.cli_json("runtime", "ops", "demo")["operations"]
    # A stop retried on `conflict` (the health write held the lease) logs that
    # refusal too; with two instances it happens more often. The rest is exact.
    refused = [o for o in ops if o["outcome"] != "success"]
    assert all(o["error_code"] == "conflict" for o in refused), refused
    assert [(o["op"], o["status_to"]) for o in ops if o["outcome"] == "success"] == [
        ("stop", "removed"),
        ("start", "running"),
        ("stop", "stopped"),
        ("stop", "stopped"),
        ("start", "running"),
    ]
    table = serve.cli("runtime", "ops", "demo", check=True).stdout
    assert "replay_no_op" in table


def stop_despite_a_health_write(serve: RunplaneServer, runtime_id: str) -> Any:
    """Stop, as a client would: again while the answer is `conflict`. A killed
    runtime's exit is being noticed meanwhile, and the health write that moves
    it to engine_unreachable holds its lease for a moment."""
    deadline = time.monotonic() + 30
    while True:
        done = serve.cli("runtime", "stop", runtime_id, "--json")
        if done.returncode == 0 or "conflict" not in done.stderr or time.monotonic() > deadline:
            assert done.returncode == 0, done.stdout + done.stderr
            return json.loads(done.stdout)
        time.sleep(0.2)


def test_failed_operation_exits_non_zero_with_its_code(serve: RunplaneServer) -> None:
    serve.cli("runtime", "create", "idle", "--command", "sleep 300", check=True)
    serve.cli("runtime", "stop", "idle", check=True)
    paused = serve.cli("runtime", "pause", "idle")
    assert paused.returncode == 1
    assert "invalid_state" in paused.stderr
    with serve.client() as http:
        response = http.post("/v1/runtimes/idle/pause")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"


def test_concurrent_stops_have_one_effect(serve: RunplaneServer) -> None:
    serve.cli("runtime", "create", "twice", "--command", "sleep 300", check=True)
    pid = runtime_pid(serve, "twice")
    with serve.client() as http, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: http.post("/v1/runtimes/twice/stop"), range(4)))
    outcomes = [
        (r.status_code, r.json().get("error_code") or r.json().get("error", {}).get("code"))
        for r in answers
    ]
    fresh = [o for o in outcomes if o == (200, None)]
    assert len(fresh) == 1, outcomes
    assert all(o in {(200, None), (200, "replay_no_op"), (409, "conflict")} for o in outcomes)
    assert wait_gone(pid)
    ops = serve.cli_json("runtime", "ops", "twice")["operations"]
    effective = [
        o
        for o in ops
        if o["op"] == "stop"
        and o["status_from"] == "running"
        and o["outcome"] == "success"
        and o["error_code"] is None
    ]
    assert len(effective) == 1


def test_a_create_sent_twice_with_an_idempotency_key_creates_once(serve: RunplaneServer) -> None:
    spec = {"command": ["sleep", "300"]}
    with serve.client() as http:
        answers = [
            http.post("/v1/runtimes", json=body, headers={"Idempotency-Key": key})
            for body, key in [
                ({"spec": spec}, "create-once"),
                ({"spec": spec}, "create-once"),
                ({"runtime_id": "once", "spec": spec}, "create-once-named"),
                ({"runtime_id": "once", "spec": spec}, "create-once-named"),
            ]
        ]
        listed = http.get("/v1/runtimes").json()["runtimes"]
    assert [a.status_code for a in answers] == [201, 200, 201, 200]
    assert answers[1].headers["Idempotent-Replayed"] == "true"
    assert answers[1].json()["runtime_id"] == answers[0].json()["runtime_id"]
    assert answers[3].json()["container_id"] == answers[2].json()["container_id"]
    assert sorted(r["runtime_id"] for r in listed) == sorted(
        [answers[0].json()["runtime_id"], "once"]
    )


def test_runtimes_survive_a_runplane_restart(serve: RunplaneServer) -> None:
    serve.cli("runtime", "create", "survivor", "--command", "sleep 300", check=True)
    pid = runtime_pid(serve, "survivor")
    serve.stop(signal.SIGKILL)
    assert psutil.Process(pid).is_running()
    serve.start()
    assert serve.cli_json("runtime", "get", "survivor")["status"] == "running"
    paused = serve.cli_json("runtime", "pause", "survivor")
    assert paused["runtime"]["status"] == "paused"
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    serve.cli("runtime", "resume", "survivor", check=True)
    stopped = serve.cli_json("runtime", "stop", "survivor")
    assert stopped["runtime"]["status"] == "stopped"
    assert wait_gone(pid)


def test_team_keys_are_isolated_and_keys_are_required(serve: RunplaneServer) -> None:
    alpha = serve.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    beta = serve.cli("keys", "create", "--team", "beta", check=True).stdout.strip()
    spec = {"command": ["sleep", "300"]}
    with serve.client(alpha) as a, serve.client(beta) as b, serve.client("") as anonymous:
        # Made by an admin key in alpha's team: a team key runs only what its policy
        # allows (test_team_keys_run_only_what_a_policy_allows).
        with serve.client() as admin:
            body = {"runtime_id": "alpha:mine", "team_id": "alpha", "spec": spec}
            assert admin.post("/v1/runtimes", json=body).status_code == 201
        assert b.get("/v1/runtimes/alpha:mine").status_code == 404
        assert b.post("/v1/runtimes/alpha:mine/stop").status_code == 404
        assert b.get("/v1/runtimes").json()["runtimes"] == []
        assert anonymous.get("/v1/runtimes").status_code == 401
        assert anonymous.post("/v1/runtimes/alpha:mine/stop").status_code == 401
        assert a.get("/v1/runtimes/alpha:mine").json()["status"] == "running"


def test_team_keys_run_only_what_a_policy_allows(serve: RunplaneServer) -> None:
    alpha = serve.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    steal = {"command": ["/bin/cat", str(serve.data_dir / "admin.key")]}
    with serve.client(alpha) as a:
        unset = a.post("/v1/runtimes", json={"runtime_id": "alpha:steal", "spec": steal})
        assert unset.status_code == 403
        assert unset.json()["error"]["code"] == "forbidden"
        serve.cli("teams", "policy", "set", "alpha", "--command", "/bin/sleep *", check=True)
        shown = json.loads(serve.cli("teams", "policy", "get", "alpha", check=True).stdout)
        assert shown["commands"] == [["/bin/sleep", "*"]]
        assert a.get("/v1/teams/alpha/policy").json() == shown
        assert a.get("/v1/teams/beta/policy").status_code == 404
        refused = a.post("/v1/runtimes", json={"runtime_id": "alpha:steal", "spec": steal})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        assert a.get("/v1/runtimes/alpha:steal").status_code == 404
    serve.cli("teams", "policy", "rm", "alpha", check=True)
    assert serve.cli("teams", "policy", "get", "alpha").returncode == 1


def test_a_team_quota_holds_for_every_key(serve: RunplaneServer) -> None:
    serve.cli("teams", "policy", "set", "gamma", "--max-runtimes", "1", check=True)
    spec = {"command": ["sleep", "300"]}
    with serve.client() as admin:
        first = admin.post(
            "/v1/runtimes", json={"runtime_id": "g1", "team_id": "gamma", "spec": spec}
        )
        second = admin.post(
            "/v1/runtimes", json={"runtime_id": "g2", "team_id": "gamma", "spec": spec}
        )
        assert first.status_code == 201
        assert second.status_code == 403
        assert second.json()["error"]["code"] == "quota_exceeded"
        assert admin.get("/v1/runtimes/g2").status_code == 404
        assert admin.delete("/v1/runtimes/g1").status_code == 200
        third = admin.post(
            "/v1/runtimes", json={"runtime_id": "g2", "team_id": "gamma", "spec": spec}
        )
        assert third.status_code == 201


def test_embedded_defaults_serve_and_clean_up(tmp_path: Path) -> None:
    """`make run`'s configuration: no Redis URL (embedded Redis), SQLite."""
    server = RunplaneServer.launch(tmp_path / "embedded")
    try:
        created = server.cli_json("runtime", "create", "emb", "--command", "sleep 300")
        assert created["status"] == "running"
        assert server.cli_json("runtime", "stop", "emb")["runtime"]["status"] == "stopped"
        assert (tmp_path / "embedded" / "runplane.db").exists()
        assert oct((tmp_path / "embedded" / "admin.key").stat().st_mode & 0o777) == "0o600"
    finally:
        remove_everything(server)
        server.stop()
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path / "embedded") in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []
