"""`runplane agent` on a real `serve` without an embedded host: the agent's
beats reach the serve's host monitor through Redis, so the agent's host is
listed `up` within a few heartbeats (with its details), and `down` once the
agent is killed and its beat expires. A second serve with the same host id and
another data dir refuses to start."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_hosts import eventually
from tests.support.agent import RunplaneAgent
from tests.support.serve import RunplaneServer

FAST = {"host_heartbeat_s": "0.3", "host_down_after_s": "2"}


@pytest.fixture
def serve(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    server = RunplaneServer.launch(
        tmp_path / "serve", redis_url=redis_url, embedded_host="false", **FAST
    )
    try:
        yield server
    finally:
        server.stop()


def test_an_agent_registers_and_is_marked_down_when_killed(
    serve: RunplaneServer, tmp_path: Path, redis_url: str
) -> None:
    assert serve.cli_json("hosts", "ls") == []  # no embedded host
    agent = RunplaneAgent.launch(
        tmp_path / "agent", redis_url, "agent-1", host_labels="zone=b", **FAST
    )
    try:

        def agent_host(status: str) -> Any:
            with serve.client() as http:
                hosts = http.get("/v1/hosts", params={"status": status}).json()["hosts"]
            return [h for h in hosts if h["host_id"] == "agent-1"]

        [up] = eventually(lambda: agent_host("up"))
        assert (up["labels"], up["drivers"]) == ({"zone": "b"}, ["process"])
        agent.stop(signal.SIGKILL)
        [down] = eventually(lambda: agent_host("down"))
        assert down["status"] == "down"
        agent.start()  # same data dir: its seat at once, and the host back up
        eventually(lambda: agent_host("up"))
    finally:
        agent.stop()


def test_a_second_serve_for_one_host_id_refuses_to_start(tmp_path: Path, redis_url: str) -> None:
    # A seat lasts a lease TTL and at least three beats: 3 s here, not the default 10.
    first = RunplaneServer.launch(
        tmp_path / "one",
        redis_url=redis_url,
        host_id="shared",
        lease_ttl_ms="1000",
        host_heartbeat_s="1",
    )
    try:
        env = first.env | {
            "RUNPLANE_DATA_DIR": str(tmp_path / "two"),
            "RUNPLANE_PORT": "0",
        }
        done = subprocess.run(
            [sys.executable, "-m", "runplane", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert "host 'shared' is already served by another agent" in done.stderr
        assert "RUNPLANE_EMBEDDED_HOST=false" in done.stderr
    finally:
        first.stop()
