"""`RUNPLANE_DRIVER=docker runplane serve` against Podman's Docker-compatible socket."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import remove_everything
from tests.support.podman import PodmanService
from tests.support.serve import RunplaneServer, free_port


def container_state(podman: PodmanService, container_id: str) -> str:
    out = podman.cli("inspect", "--format", "{{json .State}}", container_id, check=False)
    return str(json.loads(out)["Status"]) if out.strip().startswith("{") else "gone"


def wait_http(url: str, timeout_s: float = 15.0) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(url, timeout=1).status_code
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_busybox_httpd_runtime_through_every_operation(
    tmp_path: Path, redis_url: str, podman: PodmanService
) -> None:
    server = RunplaneServer.launch(
        tmp_path / "data", redis_url=redis_url, driver="docker", docker_host=podman.url
    )
    port = free_port()
    spec = {
        "image": "local/tiny",
        "command": ["httpd", "-f", "-p", str(port), "-h", "/tmp"],
        "network_mode": "host",
        "ports": [port],
    }
    try:
        with server.client() as http:
            made = http.post("/v1/runtimes", json={"runtime_id": "web", "spec": spec})
            assert made.status_code == 201, made.text
            runtime = made.json()
            assert runtime["engine_endpoint"] == f"127.0.0.1:{port}"
            assert container_state(podman, runtime["container_id"]) == "running"
            assert wait_http(f"http://127.0.0.1:{port}/") in {200, 403, 404}

            stopped = http.post("/v1/runtimes/web/stop").json()["runtime"]
            assert stopped["status"] == "stopped"
            assert container_state(podman, stopped["container_id"]) == "exited"

            started = http.post("/v1/runtimes/web/start").json()["runtime"]
            assert container_state(podman, started["container_id"]) == "running"
            restarted = http.post("/v1/runtimes/web/restart").json()["runtime"]
            assert container_state(podman, restarted["container_id"]) == "running"

            http.post("/v1/runtimes/web/pause")
            assert container_state(podman, restarted["container_id"]) == "paused"
            http.post("/v1/runtimes/web/resume")
            assert container_state(podman, restarted["container_id"]) == "running"

            removed = http.delete("/v1/runtimes/web").json()["runtime"]
            assert removed["status"] == "removed"
            assert container_state(podman, restarted["container_id"]) == "gone"
            assert container_state(podman, stopped["container_id"]) == "gone"
    finally:
        remove_everything(server)
        server.stop()
