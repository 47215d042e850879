"""A runtime's logs and metrics through `runplane serve`, over REST and the CLI:
tail, since, a follow that ends when the runtime stops, stable 400s, another
team's runtime answering like a missing one, and a busy runtime's CPU and
memory. The remote host and docker cases are in test_runtime_output_hosts.py."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import remove_everything
from tests.e2e.test_hosts import eventually
from tests.support.serve import RunplaneServer

TICKER = (
    "import sys, time\n"
    "for i in range(5):\n"
    "    print('tick', i, flush=True)\n"
    "print('oops', file=sys.stderr, flush=True)\n"
    "while True:\n"
    "    time.sleep(0.2)\n"
    "    print('alive', flush=True)\n"
)
BUSY = "import time\nheld = bytearray(30 * 1024 * 1024)\nwhile True: pass\n"


def python(code: str) -> dict[str, Any]:
    return {"command": [sys.executable, "-c", code]}


def streams(lines: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Each stream's lines in order (how the two interleave is not fixed)."""
    return (
        [line["text"] for line in lines if line["stream"] == "stdout"],
        [line["text"] for line in lines if line["stream"] == "stderr"],
    )


def create(http: httpx.Client, runtime_id: str, code: str, **body: Any) -> dict[str, Any]:
    made = http.post("/v1/runtimes", json={"runtime_id": runtime_id, "spec": python(code), **body})
    assert made.status_code == 201, made.text
    return dict(made.json())


def follow(
    server: RunplaneServer, path: str, items: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Every NDJSON item of a follow, as it comes, to its end (keepalives skipped)."""
    items = [] if items is None else items
    with server.client() as http, http.stream("GET", path, params={"follow": "true"}) as got:
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("application/x-ndjson")
        for raw in got.iter_lines():
            if raw.strip():
                items.append(json.loads(raw))
    return items


def test_tail_since_and_a_follow_that_ends_when_the_runtime_stops(serve: RunplaneServer) -> None:
    with serve.client() as http:
        create(http, "talker", TICKER)
        path = "/v1/runtimes/talker/logs"

        def tail(count: int) -> list[dict[str, Any]]:
            got = http.get(path, params={"tail": str(count)})
            assert got.status_code == 200, got.text
            return list(got.json()["lines"])

        eventually(lambda: len(tail(100)) >= 7)
        first = tail(100)[:6]
        assert streams(first) == ([f"tick {i}" for i in range(5)], ["oops"])
        assert len(tail(2)) == 2
        [oops] = [line for line in first if line["stream"] == "stderr"]
        since = http.get(path, params={"since": str(oops["ts"]), "tail": "all"}).json()
        assert "oops" in [line["text"] for line in since["lines"]]
        assert all(line["ts"] >= oops["ts"] for line in since["lines"])
        # A cursor gives what came after a read, and only that.
        page = http.get(path, params={"tail": "1"}).json()
        later = eventually(
            lambda: http.get(path, params={"cursor": page["cursor"]}).json()["lines"]
        )
        assert all(line["ts"] >= page["lines"][0]["ts"] for line in later)

        items: list[dict[str, Any]] = []
        follower = threading.Thread(target=follow, args=(serve, path, items))
        follower.start()
        eventually(lambda: len(items) >= 3)
        assert http.post("/v1/runtimes/talker/stop").status_code == 200
        follower.join(60)
        assert not follower.is_alive()
        assert items[-1]["end"]["reason"] == "stopped"
        assert {item["text"] for item in items[:-1]} >= {"alive"}
        # A stopped runtime's output stays readable, and a follow of it ends at once.
        assert len(tail(3)) == 3
        again = follow(serve, path)
        assert again[-1]["end"]["reason"] == "stopped"
        assert [item["text"] for item in again[:-1]] == [line["text"] for line in tail(100)]


def test_the_cli_prints_and_follows_a_runtime_s_output(serve: RunplaneServer) -> None:
    with serve.client() as http:
        create(http, "cli-talker", TICKER)
        eventually(lambda: len(http.get("/v1/runtimes/cli-talker/logs").json()["lines"]) >= 6)
    done = serve.cli("runtime", "logs", "cli-talker", "--tail", "all", check=True)
    assert done.stdout.splitlines()[:5] == [f"tick {i}" for i in range(5)]
    assert done.stderr.splitlines() == ["oops"]  # the runtime's stderr on the CLI's
    jsonl = serve.cli("runtime", "logs", "cli-talker", "--tail", "1", "--json", check=True)
    assert json.loads(jsonl.stdout)["stream"] == "stdout"
    command = [sys.executable, "-m", "runplane", "runtime", "logs", "cli-talker", "-f", "-n", "0"]
    with subprocess.Popen(
        command, env=serve.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as follower:
        try:
            assert follower.stdout is not None
            assert follower.stdout.readline().strip() == "alive"  # live output, as it comes
            serve.cli("runtime", "stop", "cli-talker", check=True)
            assert follower.wait(60) == 0  # it ends with the runtime
        finally:
            if follower.poll() is None:
                follower.kill()


def test_bad_parameters_are_stable_400s(serve: RunplaneServer) -> None:
    with serve.client() as http:
        create(http, "quiet", "import time; time.sleep(300)")
        for params in (
            {"tail": "-1"},
            {"tail": "lots"},
            {"tail": "10001"},
            {"since": "yesterday"},
            {"since": "2026-01-02T03:04:05"},  # no zone
            {"cursor": "x" * 65},
            {"cursor": "not a cursor"},
            {"cursor": "99:abc"},
            {"follow": "maybe"},
        ):
            got = http.get("/v1/runtimes/quiet/logs", params=params)
            assert got.status_code == 400, (params, got.text)
            assert got.json()["error"]["code"] == "invalid_request"
        for window in ("0", "-5", "3601", "soon"):
            got = http.get("/v1/runtimes/quiet/metrics", params={"window": window})
            assert got.status_code == 400, (window, got.text)
            assert got.json()["error"]["code"] == "invalid_request"
        assert http.get("/v1/runtimes/nobody-here/logs").status_code == 404
        assert http.get("/v1/runtimes/nobody-here/metrics").status_code == 404


def test_a_team_key_cannot_read_another_team_s_runtime(serve: RunplaneServer) -> None:
    alpha = serve.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    beta = serve.cli("keys", "create", "--team", "beta", check=True).stdout.strip()
    with serve.client() as admin:
        create(admin, "alpha:web", TICKER, team_id="alpha")
    with serve.client(alpha) as http:
        assert eventually(lambda: http.get("/v1/runtimes/alpha:web/logs").json()["lines"])
        assert http.get("/v1/runtimes/alpha:web/metrics").status_code == 200
    with serve.client(beta) as http:
        for path in ("/v1/runtimes/alpha:web/logs", "/v1/runtimes/alpha:web/metrics"):
            refused = http.get(path)
            assert refused.status_code == 404
            assert refused.json()["error"] == {"code": "not_found", "message": "no such runtime"}
        refused = http.get("/v1/runtimes/alpha:web/logs", params={"follow": "true"})
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "not_found"


def test_metrics_of_a_busy_runtime(serve: RunplaneServer) -> None:
    with serve.client() as http:
        create(http, "busy", BUSY)

        def sampled() -> list[dict[str, Any]]:
            got = http.get("/v1/runtimes/busy/metrics", params={"window": "60"})
            assert got.status_code == 200, got.text
            return [s for s in got.json()["samples"] if s["memory_bytes"] > 30 * 1024 * 1024]

        samples = eventually(sampled)
        assert samples[-1]["cpu_percent"] > 0
        assert samples[-1]["processes"] == 1
    shown = serve.cli("runtime", "metrics", "busy", check=True).stdout
    assert "cpu %" in shown
    assert "MiB" in shown
    assert "running" in shown
    data = serve.cli_json("runtime", "metrics", "busy")
    assert data["samples"][-1]["cpu_percent"] > 0


def test_per_runtime_series_only_when_enabled(tmp_path: Path, redis_url: str) -> None:
    server = RunplaneServer.launch(
        tmp_path / "data", redis_url=redis_url, metrics_per_runtime="true", metrics_sample_s="0.5"
    )
    try:
        with server.client() as http:
            create(http, "counted", BUSY)
            series = 'runplane_runtime_memory_bytes{driver="process",runtime_id="counted"}'
            eventually(lambda: series in http.get("/metrics").text)  # nobody asked for it
            assert http.post("/v1/runtimes/counted/stop").status_code == 200
            eventually(lambda: series not in http.get("/metrics").text)  # gone with it
    finally:
        remove_everything(server)
        server.stop()


def test_no_per_runtime_series_by_default(serve: RunplaneServer) -> None:
    with serve.client() as http:
        create(http, "uncounted", BUSY)
        eventually(lambda: http.get("/v1/runtimes/uncounted/metrics").json()["samples"])
        assert "runplane_runtime_memory_bytes{" not in http.get("/metrics").text
