"""Issue 16's timeouts and idle rules against a real `runplane serve` and real
process runtimes: a timeout fires as a stop with reason `ttl_expired` (from the
CLI and over REST), one extended is not fired at its first deadline and a
shorter one is refused, a deadline survives a restart of serve, and an idle
runtime is paused with reason `idle` while one with a connection open is not."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx

from tests.support.serve import RunplaneServer, free_port

SLEEP = {"command": ["sleep", "300"]}


def wait_status(http: httpx.Client, runtime_id: str, status: str, within_s: float = 60) -> dict:
    answer = http.get(
        f"/v1/runtimes/{runtime_id}/wait", params={"status": status, "timeout": within_s}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def last_op(http: httpx.Client, runtime_id: str) -> dict[str, Any]:
    operations = http.get(f"/v1/runtimes/{runtime_id}/operations").json()["operations"]
    return operations[0]


def test_a_timeout_stops_one_runtime_and_another_is_extended(serve: RunplaneServer) -> None:
    with serve.client() as http:
        extended = http.post(
            "/v1/runtimes", json={"runtime_id": "kept", "spec": SLEEP, "timeout_s": 2}
        ).json()
        first_deadline = extended["timeout"]["at"]
        longer = http.post("/v1/runtimes/kept/timeout", json={"timeout_s": 600})
        assert longer.status_code == 200, longer.text
        assert longer.json()["timeout"]["at"] > first_deadline
        shorter = http.post("/v1/runtimes/kept/timeout", json={"timeout_s": 5})
        assert shorter.status_code == 409
        assert shorter.json()["error"]["code"] == "timeout_would_shorten"

        # Created after `kept`: its deadline is later than kept's first one.
        created = serve.cli_json(
            "runtime", "create", "short", "--command", "sleep 300", "--timeout", "2"
        )
        assert created["timeout"]["on_timeout"] == "stop"
        serve.cli("runtime", "wait", "short", "--status", "stopped", "--timeout", "60", check=True)

        op = last_op(http, "short")
        assert (op["op"], op["reason"], op["outcome"]) == ("stop", "ttl_expired", "success")
        assert op["actor"] == "system:timeout"
        assert http.get("/v1/runtimes/short").json()["timeout"] is None  # fired once
        kept = http.get("/v1/runtimes/kept").json()
        assert kept["status"] == "running"
        assert kept["timeout"]["at"] == longer.json()["timeout"]["at"]

        # Shortening when asked in so many words; pausing instead of stopping.
        cli = serve.cli(
            "runtime", "timeout", "kept", "1", "--shorten", "--on-timeout", "pause", check=True
        )
        assert "pause" in cli.stdout
        wait_status(http, "kept", "paused")
        op = last_op(http, "kept")
        assert (op["op"], op["reason"]) == ("pause", "ttl_expired")


def test_a_deadline_survives_a_restart_of_serve(serve: RunplaneServer) -> None:
    with serve.client() as http:
        body = {"runtime_id": "durable", "spec": SLEEP, "timeout_s": 3, "on_timeout": "remove"}
        assert http.post("/v1/runtimes", json=body).status_code == 201
    serve.stop()
    serve.start()
    with serve.client() as http:
        wait_status(http, "durable", "removed")
        op = last_op(http, "durable")
        assert (op["op"], op["reason"]) == ("remove", "ttl_expired")


def http_server(port: int) -> dict[str, Any]:
    return {"command": ["python3", "-m", "http.server", str(port)], "port": port}


def connect(port: int, within_s: float = 30) -> socket.socket:
    deadline = time.monotonic() + within_s
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_an_idle_runtime_is_paused_and_a_busy_one_is_not(serve: RunplaneServer) -> None:
    busy_port, idle_port = free_port(), free_port()
    idle_rule = {"after_s": 3, "action": "pause"}
    with serve.client() as http:
        body = {"runtime_id": "busy", "spec": http_server(busy_port), "idle": idle_rule}
        assert http.post("/v1/runtimes", json=body).status_code == 201
        with connect(busy_port):  # held open: the runtime is busy all along
            # Created after `busy` with the same rule: were connections not seen,
            # `busy` would be paused first.
            created = serve.cli_json(
                "runtime",
                "create",
                "idler",
                "--spec",
                f'{{"command": ["python3", "-m", "http.server", "{idle_port}"]}}',
                "--port",
                str(idle_port),
                "--idle-after",
                "3",
                "--idle-action",
                "pause",
            )
            assert created["idle"]["after_s"] == 3
            wait_status(http, "idler", "paused")
            busy = http.get("/v1/runtimes/busy").json()
            assert busy["status"] == "running"
            assert busy["idle"]["active_at"] is not None
        op = last_op(http, "idler")
        assert (op["op"], op["reason"], op["actor"]) == ("pause", "idle", "system:idle")


def test_activity_and_idle_rules_are_set_over_rest_and_the_cli(serve: RunplaneServer) -> None:
    with serve.client() as http:
        body = {"runtime_id": "quiet", "spec": SLEEP, "start": False}
        assert http.post("/v1/runtimes", json=body).status_code == 201
        set_rule = serve.cli_json("runtime", "idle", "quiet", "--after", "600")
        assert set_rule["idle"]["action"] == "stop"
        first = set_rule["idle"]["active_at"]
        assert first is not None  # a new rule counts from when it is set

        serve.cli("runtime", "activity", "quiet", check=True)
        assert http.get("/v1/runtimes/quiet").json()["idle"]["active_at"] > first
        assert http.post("/v1/runtimes/quiet/activity").status_code == 204

        off = http.patch("/v1/runtimes/quiet", json={"idle": None})
        assert off.status_code == 200
        assert off.json()["idle"] is None
        bad = http.patch("/v1/runtimes/quiet", json={"idle": {"after_s": 0}})
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_request"
