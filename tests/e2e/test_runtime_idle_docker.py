"""The idle rule on containers (Podman's Docker socket): the connections are
counted in the container's own network namespace (`/proc/<State.Pid>/net/tcp`),
so a container with a connection open stays up and an idle one is paused."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import remove_everything
from tests.e2e.test_runtime_timers import connect, last_op, wait_status
from tests.support.podman import PodmanService
from tests.support.serve import RunplaneServer, free_port


def httpd(port: int) -> dict[str, object]:
    return {
        "image": "local/tiny",
        "command": ["httpd", "-f", "-p", str(port), "-h", "/tmp"],
        "network_mode": "bridge",
        "ports": [{"container_port": port, "host_port": port}],
    }


def test_an_idle_container_is_paused_and_a_busy_one_is_not(
    tmp_path: Path, redis_url: str, podman: PodmanService
) -> None:
    server = RunplaneServer.launch(
        tmp_path / "data", redis_url=redis_url, driver="docker", docker_host=podman.url
    )
    busy_port, idle_port = free_port(), free_port()
    rule = {"after_s": 3, "action": "pause"}
    try:
        with server.client() as http:
            body = {"runtime_id": "busy", "spec": httpd(busy_port), "idle": rule}
            assert http.post("/v1/runtimes", json=body).status_code == 201, body
            with connect(busy_port):
                body = {"runtime_id": "idler", "spec": httpd(idle_port), "idle": rule}
                assert http.post("/v1/runtimes", json=body).status_code == 201
                wait_status(http, "idler", "paused")
                busy = http.get("/v1/runtimes/busy").json()
                assert busy["status"] == "running"
                assert busy["idle"]["active_at"] is not None
            op = last_op(http, "idler")
            assert (op["op"], op["reason"]) == ("pause", "idle")
    finally:
        remove_everything(server)
        server.stop()
