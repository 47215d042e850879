"""Logs and metrics of runtimes serve does not run itself: a process runtime on
an agent's host, read through the agent over the host-call stream, and a
docker runtime on Podman (the engine's logs and stats APIs)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import remove_everything
from tests.e2e.test_hosts import eventually
from tests.e2e.test_runtime_output import TICKER, follow, python, streams
from tests.support.agent import RunplaneAgent
from tests.support.podman import IMAGE, PodmanService
from tests.support.serve import RunplaneServer

FAST = {"host_heartbeat_s": "0.3", "host_down_after_s": "5", "logs_follow_poll_s": "0.2"}
SH_TICKER = "i=0; while [ $i -lt 5 ]; do echo tick $i; i=$((i+1)); done; echo oops >&2; " + (
    "while true; do sleep 0.2; echo alive; done"
)


def read_follow_and_stop(server: RunplaneServer, http: httpx.Client, runtime_id: str) -> None:
    """The last lines, then a follow that ends once the runtime is stopped."""
    path = f"/v1/runtimes/{runtime_id}/logs"

    def lines() -> list[dict[str, Any]]:
        got = http.get(path, params={"tail": "all"})
        assert got.status_code == 200, got.text
        return list(got.json()["lines"])

    eventually(lambda: len(lines()) >= 7)
    assert streams(lines()[:6]) == (
        [f"tick {i}" for i in range(5)],
        ["oops"],
    )
    assert [line["text"] for line in http.get(path, params={"tail": "1"}).json()["lines"]] == [
        "alive"
    ]
    items: list[dict[str, Any]] = []
    follower = threading.Thread(target=follow, args=(server, path, items))
    follower.start()
    eventually(lambda: len([i for i in items if i.get("text") == "alive"]) >= 3)
    assert http.post(f"/v1/runtimes/{runtime_id}/stop").status_code == 200
    follower.join(90)
    assert not follower.is_alive()
    assert items[-1]["end"]["reason"] == "stopped"
    texts = [item["text"] for item in items[:-1]]
    assert len(texts) == len(set(range(len(texts))))  # every item a line
    assert texts[-1] == "alive"


def _last_text(http: httpx.Client, runtime_id: str) -> str | None:
    lines = http.get(f"/v1/runtimes/{runtime_id}/logs", params={"tail": "1"}).json()["lines"]
    return lines[0]["text"] if lines else None


@pytest.fixture
def remote(tmp_path: Path, redis_url: str) -> Iterator[tuple[RunplaneServer, RunplaneAgent]]:
    server = RunplaneServer.launch(
        tmp_path / "serve", redis_url=redis_url, embedded_host="false", **FAST
    )
    agent = RunplaneAgent.launch(
        tmp_path / "agent", redis_url, "far", metrics_sample_s="0.5", **FAST
    )
    try:
        with server.client() as http:
            eventually(lambda: http.get("/v1/hosts", params={"status": "up"}).json()["hosts"])
        yield server, agent
    finally:
        remove_everything(server)
        agent.stop()
        server.stop()


def test_a_runtime_on_an_agent_s_host_is_read_through_its_agent(
    remote: tuple[RunplaneServer, RunplaneAgent],
) -> None:
    server, _agent = remote
    with server.client() as http:
        made = http.post(
            "/v1/runtimes", json={"runtime_id": "far-talker", "spec": python(TICKER)}
        ).json()
        assert made["host_id"] == "far"
        busy = http.post(
            "/v1/runtimes",
            json={"runtime_id": "far-busy", "spec": python("while True: pass")},
        ).json()
        assert busy["host_id"] == "far"
        read_follow_and_stop(server, http, "far-talker")

        def busy_samples() -> list[dict[str, Any]]:
            got = http.get("/v1/runtimes/far-busy/metrics", params={"window": "60"})
            assert got.status_code == 200, got.text
            return [s for s in got.json()["samples"] if s["cpu_percent"] > 0]

        samples = eventually(busy_samples)
        assert samples[-1]["memory_bytes"] > 0
        assert (
            http.get("/v1/runtimes/far-talker/logs", params={"cursor": "x:y"}).status_code == 400
        )  # refused before it is sent


def test_a_docker_runtime_s_logs_and_stats(
    tmp_path: Path, redis_url: str, podman: PodmanService
) -> None:
    server = RunplaneServer.launch(
        tmp_path / "data",
        redis_url=redis_url,
        driver="docker",
        docker_host=podman.url,
        metrics_sample_s="0.5",
        logs_follow_poll_s="0.2",
        runtime_log_max_bytes="65536",
    )
    try:
        with server.client() as http:
            spec = {"image": IMAGE, "command": ["sh", "-c", SH_TICKER]}
            made = http.post("/v1/runtimes", json={"runtime_id": "boxed", "spec": spec})
            assert made.status_code == 201, made.text
            read_follow_and_stop(server, http, "boxed")
            # The engine keeps a container's log within the cap runplane set.
            flood = (
                "i=0; while [ $i -lt 3000 ]; do echo line $i " + "x" * 40 + "; i=$((i+1)); done; "
                "echo done; sleep 300"
            )
            spec = {"image": IMAGE, "command": ["sh", "-c", flood]}
            made = http.post("/v1/runtimes", json={"runtime_id": "flood", "spec": spec})
            assert made.status_code == 201, made.text
            eventually(lambda: _last_text(http, "flood") == "done")
            log = json.loads(
                podman.cli(
                    "inspect",
                    "--format",
                    "{{json .HostConfig.LogConfig}}",
                    made.json()["container_id"],
                )
            )
            assert log["Size"] == "65.54kB"
            assert Path(log["Path"]).stat().st_size <= 65536
            spec = {"image": IMAGE, "command": ["sh", "-c", "while true; do :; done"]}
            made = http.post("/v1/runtimes", json={"runtime_id": "spinner", "spec": spec})
            assert made.status_code == 201, made.text

            def busy_samples() -> list[dict[str, Any]]:
                got = http.get("/v1/runtimes/spinner/metrics", params={"window": "60"})
                assert got.status_code == 200, got.text
                return [s for s in got.json()["samples"] if s["cpu_percent"] > 0]

            samples = eventually(busy_samples)
            assert samples[-1]["memory_bytes"] > 0
            assert samples[-1]["processes"] >= 1
    finally:
        remove_everything(server)
        server.stop()
