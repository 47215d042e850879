"""Health end to end: a running `runplane serve`, real processes, raw Redis.

kill -9 of a runtime's process makes it engine_unreachable (summary exited)
within a probe period and a second, with one container_exited health event and
one snapshot, and on-failure brings it back (the operation log shows the
restart); a probe that fails three times then recovers fires once each way;
runplane killed in the middle of a stop finds the stop settled by its
reconciler after a restart."""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.conftest import remove_everything
from tests.support.e2e_backend import raw_redis
from tests.support.serve import RunplaneServer
from tests.support.streams import HANG_SLACK


@pytest.fixture
def fast_serve(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    """`serve` with a quick reconciler, short stop deadlines and leases."""
    server = RunplaneServer.launch(
        tmp_path / "data",
        redis_url=redis_url,
        reconcile_interval_s="1",
        reconcile_jitter_s="0.2",
        stop_timeout_s="2",
        lease_ttl_ms="1500",
        restart_backoff_base_s="0.2",
    )
    try:
        yield server
    finally:
        remove_everything(server)
        server.stop()


def redis_of(server: RunplaneServer) -> redis.Redis:
    return raw_redis(server.env["RUNPLANE_REDIS_URL"], decode_responses=True)


def wait_for(check: Callable[[], Any], timeout_s: float, step_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s * HANG_SLACK
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout_s} s")
        time.sleep(step_s)


def create(http: httpx.Client, runtime_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    made = http.post("/v1/runtimes", json={"runtime_id": runtime_id, "spec": spec})
    assert made.status_code == 201, made.text
    runtime: dict[str, Any] = made.json()
    return runtime


def pid_of(runtime: dict[str, Any]) -> int:
    return int(runtime["container_id"].split("-")[1])


def health_of(http: httpx.Client, runtime_id: str) -> dict[str, Any]:
    body: dict[str, Any] = http.get(f"/v1/runtimes/{runtime_id}/health").json()
    return body


def stream_of(client: redis.Redis, stream: str, runtime_id: str) -> list[dict[str, str]]:
    return [fields for _, fields in client.xrange(stream) if fields.get("runtime_id") == runtime_id]


def test_kill_9_then_on_failure_brings_it_back(fast_serve: RunplaneServer) -> None:
    spec = {
        "command": ["sleep", "600"],
        "health": {"type": "exec", "command": ["true"], "initial_delay_s": 0, "period_s": 1},
        "restart_policy": {"mode": "on-failure"},
    }
    client = redis_of(fast_serve)
    with fast_serve.client() as http:
        runtime = create(http, "phoenix", spec)
        wait_for(lambda: health_of(http, "phoenix")["engine_health"] == "healthy", 30)
        os.kill(pid_of(runtime), signal.SIGKILL)
        unreachable = wait_for(
            lambda: [
                s
                for s in stream_of(client, "runtime:snapshots", "phoenix")
                if s["status"] == "engine_unreachable"
            ],
            30,
        )
        assert [(s["status"], s["engine_health"]) for s in unreachable] == [
            ("engine_unreachable", "exited")
        ]
        back = wait_for(
            lambda: (
                (r := http.get("/v1/runtimes/phoenix").json())["status"] == "running"
                and r["container_id"] != runtime["container_id"]
                and r
            ),
            30,
        )
        exits = [
            e
            for e in stream_of(client, "runtime:health_events", "phoenix")
            if e["event_type"] == "container_exited"
        ]
        assert len(exits) == 1
        ops = http.get("/v1/runtimes/phoenix/operations").json()["operations"]
        restart = ops[0]
        assert (restart["op"], restart["op_source"], restart["outcome"]) == (
            "restart",
            "health",
            "success",
        )
        assert restart["status_from"] == "engine_unreachable"
        events = [e for _, e in client.xrange("runplane:events")]
        types = [e["event"] for e in events if '"subject":"phoenix"' in e["event"]]
        assert any('"type":"runtime.unreachable"' in e for e in types)
    shown = fast_serve.cli_json("runtime", "health", "phoenix")
    assert shown["status"] == "running"
    assert "container_exited" in [e["event_type"] for e in shown["events"]]
    assert back["container_id"] != runtime["container_id"]


class _Flaky(http.server.BaseHTTPRequestHandler):
    statuses: list[int] = []

    def do_GET(self) -> None:
        status = self.statuses.pop(0) if self.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_probe_failing_three_times_then_recovering(fast_serve: RunplaneServer) -> None:
    _Flaky.statuses = [500, 500, 500, 200]
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=target.serve_forever, daemon=True)
    thread.start()
    spec = {
        "command": ["sleep", "600"],
        "health": {
            "type": "http",
            "port": target.server_address[1],
            "initial_delay_s": 0,
            "period_s": 0.3,
        },
    }
    client = redis_of(fast_serve)
    try:
        with fast_serve.client() as http_client:
            create(http_client, "flaky", spec)

            def kinds() -> list[str]:
                events = stream_of(client, "runtime:health_events", "flaky")
                return [e["event_type"] for e in events]

            wait_for(lambda: "probe_recovered" in kinds(), 30)
            time.sleep(1.0)  # more healthy probes: no more events
            assert kinds() == ["container_started", "probe_failed", "probe_recovered"]
            wait_for(lambda: health_of(http_client, "flaky")["engine_health"] == "healthy", 30)
    finally:
        target.shutdown()
        target.server_close()


def test_a_stop_cut_short_by_a_crash_is_settled_after_the_restart(
    fast_serve: RunplaneServer,
) -> None:
    """The runtime ignores SIGTERM, so its stop waits out stop_timeout_s: runplane
    is killed (SIGKILL) meanwhile, between the stop's two writes."""
    spec = {
        "command": ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.2; done"],
        "stop_timeout_s": 3,
    }
    with fast_serve.client() as http:
        create(http, "halfway", spec)
        # A stop sent before the shell set its trap would end it at once.
        wait_for(lambda: http.get("/v1/runtimes/halfway/logs").json()["lines"], 10)
        stop = threading.Thread(target=_ignore_errors, args=(lambda: _stop(http, "halfway"),))
        stop.daemon = True
        stop.start()
        wait_for(lambda: http.get("/v1/runtimes/halfway").json()["status"] == "stopping", 30)
    fast_serve.stop(signal.SIGKILL)
    stop.join(5)
    fast_serve.start()
    with fast_serve.client() as http:
        settled = wait_for(
            lambda: (r := http.get("/v1/runtimes/halfway").json())["status"] == "stopped" and r,
            20,
            0.2,
        )
        ops = http.get("/v1/runtimes/halfway/operations").json()["operations"]
    entry = ops[0]
    assert (entry["op"], entry["op_source"], entry["status_from"], entry["status_to"]) == (
        "stop",
        "reconciler",
        "stopping",
        "stopped",
    )
    assert entry["details"]["inferred"] is True
    assert "interrupted" in entry["reason"]
    assert settled["stopped_at"] is not None


def _stop(http: httpx.Client, runtime_id: str) -> None:
    """Stop, again while another holder of the lease (a health event being
    applied, say) answers `conflict`, as a client would."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = http.post(f"/v1/runtimes/{runtime_id}/stop")
        if answer.status_code != 409 or answer.json()["error"]["code"] != "conflict":
            return
        time.sleep(0.1)


def _ignore_errors(call: Callable[[], object]) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
        call()
