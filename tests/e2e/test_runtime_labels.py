"""Issue 16's labels against a real `runplane serve`: set on create (CLI and
REST) and replaced by PATCH, selected with `?label=` and `runtime ls -l`,
stopped in bulk by `runtime stop -l` (asking first), carried in lifecycle
events; and a hostile team key reaches no other team's labels, timeouts or
activity."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from tests.support.serve import RunplaneServer

SLEEP = {"command": ["sleep", "300"]}


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["runtime_id"] for r in response.json()["runtimes"]]


def error_code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_runtimes_are_listed_and_stopped_by_label(serve: RunplaneServer) -> None:
    for name, labels in (("web-1", ["app=web", "env=dev"]), ("web-2", ["app=web"])):
        flags = [part for label in labels for part in ("-l", label)]
        serve.cli("runtime", "create", name, "--command", "sleep 300", *flags, check=True)
    with serve.client() as http:
        body = {"runtime_id": "db-1", "spec": SLEEP, "labels": {"app": "db", "team.io/owner": ""}}
        assert http.post("/v1/runtimes", json=body).status_code == 201

        assert ids(http.get("/v1/runtimes", params={"label": "app=web"})) == ["web-1", "web-2"]
        both = http.get("/v1/runtimes", params=[("label", "app"), ("label", "!env")])
        assert ids(both) == ["db-1", "web-2"]
        assert ids(http.get("/v1/runtimes", params={"label": "app!=web"})) == ["db-1"]
        assert ids(http.get("/v1/runtimes", params={"label": "team.io/owner"})) == ["db-1"]
        bad = http.get("/v1/runtimes", params={"label": "app=we b"})
        assert error_code(bad) == (400, "invalid_selector")
        refused = http.post(
            "/v1/runtimes", json={"runtime_id": "x", "spec": SLEEP, "labels": {"-bad": "1"}}
        )
        assert error_code(refused) == (400, "invalid_labels")
        assert http.get("/v1/runtimes/x").status_code == 404

        listed = serve.cli_json("runtime", "ls", "-l", "app=web")
        assert [r["runtime_id"] for r in listed] == ["web-1", "web-2"]

        # Asked first: "no" stops nothing.
        declined = subprocess.run(
            [sys.executable, "-m", "runplane", "runtime", "stop", "-l", "app=web"],
            env=serve.env | {"COLUMNS": "200"},
            input="n\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert declined.returncode == 1
        assert "Stop these 2 runtime(s)?" in declined.stdout
        assert ids(http.get("/v1/runtimes", params={"status": "running"})) == [
            "db-1",
            "web-1",
            "web-2",
        ]

        results = serve.cli_json("runtime", "stop", "-l", "app=web", "--yes")
        assert [(r["runtime_id"], r["outcome"], r["status"]) for r in results] == [
            ("web-1", "success", "stopped"),
            ("web-2", "success", "stopped"),
        ]
        assert ids(http.get("/v1/runtimes", params={"status": "running"})) == ["db-1"]

        relabelled = http.patch("/v1/runtimes/db-1", json={"labels": {"app": "web"}})
        assert relabelled.json()["labels"] == {"app": "web"}
        assert ids(http.get("/v1/runtimes", params={"label": "app=web"})) == [
            "db-1",
            "web-1",
            "web-2",
        ]
        removed = serve.cli_json("runtime", "rm", "-l", "app=web", "-y")
        assert {r["status"] for r in removed} == {"removed"}


def test_lifecycle_events_carry_the_labels(serve: RunplaneServer) -> None:
    with serve.client() as http:
        body = {"runtime_id": "evt", "spec": SLEEP, "labels": {"app": "web"}}
        assert http.post("/v1/runtimes", json=body).status_code == 201
        deadline = time.monotonic() + 30
        while True:  # the relay publishes within its poll interval
            events = http.get("/v1/events", params={"runtime_id": "evt"}).json()["events"]
            if len(events) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert [e["event"]["type"] for e in events] == ["runtime.create", "runtime.start"]
        assert all(e["event"]["data"]["labels"] == {"app": "web"} for e in events)


def test_a_team_key_reaches_no_other_teams_settings(serve: RunplaneServer) -> None:
    alpha_key = serve.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    beta_key = serve.cli("keys", "create", "--team", "beta", check=True).stdout.strip()
    with serve.client() as admin, serve.client(alpha_key) as alpha, serve.client(beta_key) as beta:
        for team in ("alpha", "beta"):
            body = {
                "runtime_id": f"{team}:web",
                "team_id": team,
                "spec": SLEEP,
                "start": False,
                "labels": {"app": "web"},
                "timeout_s": 600,
            }
            assert admin.post("/v1/runtimes", json=body).status_code == 201
        before = admin.get("/v1/runtimes/alpha:web").json()

        target = "/v1/runtimes/alpha:web"
        attempts = {
            "timeout": beta.post(f"{target}/timeout", json={"timeout_s": 1, "allow_shorten": True}),
            "activity": beta.post(f"{target}/activity"),
            "labels": beta.patch(target, json={"labels": {"app": "mine"}}),
            "idle": beta.patch(target, json={"idle": {"after_s": 1}}),
        }
        assert {name: error_code(r) for name, r in attempts.items()} == dict.fromkeys(
            attempts, (404, "not_found")
        )
        assert ids(beta.get("/v1/runtimes", params={"label": "app=web"})) == ["beta:web"]
        named = beta.get("/v1/runtimes", params={"label": "app", "team_id": "alpha"})
        assert ids(named) == []
        assert ids(alpha.get("/v1/runtimes", params={"label": "app=web"})) == ["alpha:web"]
        assert admin.get("/v1/runtimes/alpha:web").json() == before

        # Its own: allowed, and a shorter deadline only when asked.
        own = beta.post("/v1/runtimes/beta:web/timeout", json={"timeout_s": 60})
        assert error_code(own) == (409, "timeout_would_shorten")
        assert beta.post("/v1/runtimes/beta:web/activity").status_code == 204
