"""Hosts on a real `runplane serve`: the machine registers itself as a host (its
drivers, CPUs, memory, labels), `runplane hosts` operates it, a team key is
refused; and a host whose serve is gone is marked down by the next serve, with
a `host.down` event that admin keys read and team keys never see."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.e2e.conftest import remove_everything
from tests.support.serve import RunplaneServer

HOST_SETTINGS = {
    "host_id": "e2e-host",
    "host_labels": "zone=a,gpu=false",
    "host_address": "10.1.2.3",
    "host_heartbeat_s": "0.3",
    "host_down_after_s": "2",
}


def eventually(read: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    """The first truthy answer of `read`, polled until a bound (then fail)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = read()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"nothing came within {timeout_s} s")


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    launched = RunplaneServer.launch(tmp_path / "data", redis_url=redis_url, **HOST_SETTINGS)
    try:
        yield launched
    finally:
        remove_everything(launched)
        launched.stop()


def test_serve_registers_its_machine_and_the_cli_operates_it(server: RunplaneServer) -> None:
    hosts = eventually(lambda: server.cli_json("hosts", "ls"))
    [host] = hosts
    assert (host["host_id"], host["status"], host["drivers"]) == ("e2e-host", "up", ["process"])
    assert host["labels"] == {"zone": "a", "gpu": "false"}
    assert host["address"] == "10.1.2.3"
    assert host["capacity"]["cpus"] == float(os.cpu_count() or 1)
    assert host["capacity"]["memory_mb"] == psutil.virtual_memory().total // (1024 * 1024)
    table = server.cli("hosts", "ls", "--label", "zone=a", check=True).stdout
    assert "e2e-host" in table
    assert "up" in table
    assert server.cli_json("hosts", "ls", "--status", "down") == []

    assert server.cli("hosts", "cordon", "e2e-host", check=True).stdout.strip() == (
        "e2e-host: cordoned"
    )
    # Heartbeats keep coming and leave a cordoned host cordoned.
    beat = server.cli_json("hosts", "get", "e2e-host")["last_heartbeat_at"]
    later = eventually(
        lambda: (
            (h := server.cli_json("hosts", "get", "e2e-host"))["last_heartbeat_at"] != beat and h
        )
    )
    assert later["status"] == "cordoned"
    assert server.cli_json("hosts", "drain", "e2e-host")["status"] == "draining"
    assert server.cli_json("hosts", "uncordon", "e2e-host")["status"] == "up"

    missing = server.cli("hosts", "get", "nobody")
    assert missing.returncode == 1
    assert "not_found" in missing.stderr
    team_key = server.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    with server.client(team_key) as http:
        assert http.get("/v1/hosts").status_code == 403


def test_a_host_whose_serve_is_gone_is_marked_down(
    server: RunplaneServer, tmp_path: Path, redis_url: str
) -> None:
    eventually(lambda: server.cli_json("hosts", "ls"))
    team_key = server.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    server.stop()
    # A second serve on the same data dir (database, admin key) and Redis, as
    # another machine: it marks the first host down once its heartbeats stop.
    other = RunplaneServer.launch(
        server.data_dir, redis_url=redis_url, **{**HOST_SETTINGS, "host_id": "other-host"}
    )
    try:
        down = eventually(lambda: other.cli_json("hosts", "ls", "--status", "down"))
        assert [h["host_id"] for h in down] == ["e2e-host"]
        assert other.cli_json("hosts", "get", "other-host")["status"] == "up"

        def host_events() -> list[dict[str, Any]]:
            with other.client() as http:
                page = http.get("/v1/events", params={"type": "host.up,host.down"}).json()
            return [e["event"] for e in page["events"]]

        events = eventually(
            lambda: (
                (found := host_events()) and any(e["type"] == "host.down" for e in found) and found
            )
        )
        subjects = [(e["type"], e["subject"]) for e in events]
        assert ("host.down", "e2e-host") in subjects
        assert ("host.up", "other-host") in subjects
        assert subjects.count(("host.down", "e2e-host")) == 1
        with other.client(team_key) as http:
            seen = http.get("/v1/events", params={"limit": 1000}).json()["events"]
        assert seen == []
    finally:
        other.stop()
    # Its first reconcile round asked the departed host for its containers before
    # it was marked down; the stop does not wait out that call's bound.
    assert "worker did not stop in time" not in other.log_path.read_text()
