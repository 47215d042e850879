"""Exits end to end with a running `runplane serve`: a runtime killed by hand is
told by its supervisor and folded in (with a sweep so long that only the notice
could have done it), on serve's embedded host and on an agent's; runtimes that
ended while serve was down, or killed -9, are found by the first round after it
starts again."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from runplane.domain.health.reactions import decode_health_event
from tests.e2e.conftest import remove_everything
from tests.e2e.test_health import create, pid_of, redis_of, stream_of, wait_for
from tests.e2e.test_hosts import eventually
from tests.support.agent import RunplaneAgent
from tests.support.serve import RunplaneServer

SLEEP = {"command": ["sleep", "600"]}


@pytest.fixture
def slow_sweep(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    """`serve` whose sweeps come every hour, and whose exit watcher, if it
    could not be told, would look every hour too: only a notice is prompt."""
    server = RunplaneServer.launch(
        tmp_path / "data",
        redis_url=redis_url,
        health_sweep_s="3600",
        exit_watch_s="3600",
        reconcile_interval_s="3600",
    )
    try:
        yield server
    finally:
        remove_everything(server)
        server.stop()


def exits_of(server: RunplaneServer, runtime_id: str) -> list[dict[str, str]]:
    events = stream_of(redis_of(server), "runtime:health_events", runtime_id)
    return [e for e in events if e["event_type"] == "container_exited"]


def status_of(server: RunplaneServer, runtime_id: str) -> str:
    with server.client() as http:
        status: str = http.get(f"/v1/runtimes/{runtime_id}").json()["status"]
    return status


def test_a_runtime_killed_by_hand_is_told_and_folded_in(slow_sweep: RunplaneServer) -> None:
    with slow_sweep.client() as http:
        runtime = create(http, "told", SLEEP)
    os.kill(pid_of(runtime), signal.SIGKILL)
    wait_for(lambda: status_of(slow_sweep, "told") == "engine_unreachable", 30)
    [exited] = exits_of(slow_sweep, "told")
    assert exited["container_id"] == runtime["container_id"]
    assert decode_health_event(exited).details["signal"] == signal.SIGKILL


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_runtimes_that_ended_while_serve_was_down_are_found_on_its_return(
    slow_sweep: RunplaneServer, sig: signal.Signals
) -> None:
    with slow_sweep.client() as http:
        ended = create(http, "ended", SLEEP)
        kept = create(http, "kept", SLEEP)
    slow_sweep.stop(sig)
    os.kill(pid_of(ended), signal.SIGKILL)  # nobody listens: its notice is lost
    slow_sweep.start()
    wait_for(lambda: status_of(slow_sweep, "ended") == "engine_unreachable", 30)
    [exited] = exits_of(slow_sweep, "ended")
    assert exited["container_id"] == ended["container_id"]
    assert status_of(slow_sweep, "kept") == "running"
    assert exits_of(slow_sweep, "kept") == []
    with slow_sweep.client() as http:
        assert (
            http.get(f"/v1/runtimes/{kept['runtime_id']}").json()["container_id"]
            == (kept["container_id"])
        )


def test_an_agent_tells_the_end_of_its_runtime(tmp_path: Path, redis_url: str) -> None:
    """On an agent's host (serve has none): the agent's exit watcher is told,
    with sweeps and exit watching every hour on both sides."""
    hourly = {"health_sweep_s": "3600", "exit_watch_s": "3600", "host_heartbeat_s": "0.3"}
    serve = RunplaneServer.launch(
        tmp_path / "serve",
        redis_url=redis_url,
        embedded_host="false",
        reconcile_interval_s="3600",
        **hourly,
    )
    agent = None
    try:
        agent = RunplaneAgent.launch(tmp_path / "agent", redis_url, "told-agent", **hourly)
        with serve.client() as http:
            eventually(lambda: http.get("/v1/hosts", params={"status": "up"}).json()["hosts"])
            runtime = create(http, "remote", SLEEP)
        assert runtime["host_id"] == "told-agent"
        os.kill(pid_of(runtime), signal.SIGKILL)
        wait_for(lambda: status_of(serve, "remote") == "engine_unreachable", 30)
        [exited] = exits_of(serve, "remote")
        assert exited["container_id"] == runtime["container_id"]
    finally:
        if agent is not None:
            remove_everything(serve)
            agent.stop()
        serve.stop()
