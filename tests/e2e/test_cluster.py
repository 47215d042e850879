"""`runplane serve` on a 3-node Redis Cluster (RUNPLANE_REDIS_CLUSTER=true): the
API, the job streams, the relay's events, the live channel, SSE and /readyz."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis.cluster import RedisCluster

from tests.e2e.conftest import remove_everything
from tests.support.agent import RunplaneAgent
from tests.support.redis_cluster import RedisClusterServer
from tests.support.serve import RunplaneServer

WAIT_S = 60.0


@pytest.fixture
def cluster_serve(tmp_path: Path, redis_cluster: RedisClusterServer) -> Iterator[RunplaneServer]:
    for port in redis_cluster.ports:
        with redis.Redis(port=port) as node:
            node.flushall()
    server = RunplaneServer.launch(
        tmp_path / "data", redis_url=redis_cluster.url, redis_cluster="true"
    )
    try:
        yield server
    finally:
        remove_everything(server)
        server.stop()


def _until(what: str, check: object) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def _stop_of(runtime_id: str, line: str) -> bool:
    """An SSE data line carrying `runtime_id`'s runtime.stop event."""
    return line.startswith("data:") and '"type":"runtime.stop"' in line and runtime_id in line


def test_serve_runs_jobs_and_events_on_a_cluster(
    cluster_serve: RunplaneServer, redis_cluster: RedisClusterServer
) -> None:
    cluster = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    # Pub/Sub on the node that holds none of the events stream's keys' slot
    # is enough: classic PUBLISH is broadcast to every node.
    last_port = redis_cluster.ports[-1]
    node = redis.Redis(port=last_port, decode_responses=True)
    listener = node.pubsub()
    listener.subscribe("runplane:events:live")
    try:
        _run_jobs_and_events(cluster_serve, cluster, listener)
    finally:
        listener.close()
        node.close()
        cluster.close()
    log = cluster_serve.log_path.read_text()
    assert "MOVED" not in log
    assert "CROSSSLOT" not in log


def _run_jobs_and_events(
    cluster_serve: RunplaneServer, cluster: RedisCluster, listener: redis.client.PubSub
) -> None:
    sse_lines: list[str] = []
    opened = threading.Event()

    def follow() -> None:
        with (
            cluster_serve.client() as http,
            http.stream("GET", "/v1/events/stream", timeout=WAIT_S) as live,
        ):
            opened.set()
            for line in live.iter_lines():
                sse_lines.append(line)
                if _stop_of("clu-1", line):
                    return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert opened.wait(10)
    with cluster_serve.client() as http:
        spec = {"command": ["sleep", "600"], "stop_timeout_s": 5}
        made = http.post("/v1/runtimes", json={"runtime_id": "clu-1", "spec": spec})
        assert made.status_code == 201, made.text
        assert made.json()["status"] == "running"

    cluster.xadd(
        "runtime:stop_jobs", {"runtime_id": "clu-1", "reason": "requested", "job_id": "stop-clu-1"}
    )

    def result() -> dict[str, str] | None:
        found = [f for _, f in cluster.xrange("runtime:job_results") if f["job_id"] == "stop-clu-1"]
        return found[0] if found else None

    _until("the stop job's result", result)
    assert (result() or {}).get("outcome") == "success", result()
    _until("runtime.stop in runplane:events", lambda: any(
        "runtime.stop" in f["event"] for _, f in cluster.xrange("runplane:events")
    ))  # fmt: skip
    follower.join(WAIT_S)
    assert any(_stop_of("clu-1", line) for line in sse_lines), sse_lines
    heard: list[str] = []

    def hear() -> bool:
        message = listener.get_message(timeout=0.5)
        if message and message["type"] == "message":
            heard.append(message["data"])
        return any("clu-1" in data for data in heard)

    _until("an event on the live channel, heard on another node", hear)


def test_readyz_answers_503_while_a_node_is_down(
    cluster_serve: RunplaneServer, redis_cluster: RedisClusterServer
) -> None:
    def readyz(http: httpx.Client) -> httpx.Response:
        return http.get("/readyz")

    with cluster_serve.client() as http:
        assert readyz(http).status_code == 200
        redis_cluster.stop_node(2)
        try:
            _until("/readyz 503", lambda: readyz(http).status_code == 503)
            detail = readyz(http).json()["checks"]["redis"]
            assert detail.startswith("failed: cluster"), detail
        finally:
            redis_cluster.start_node(2)
        _until("/readyz 200 again", lambda: readyz(http).status_code == 200)
        assert readyz(http).json()["checks"] == {"redis": "ok", "database": "ok"}


def test_an_agent_on_a_cluster_runs_a_runtime_for_serve(
    tmp_path: Path, redis_cluster: RedisClusterServer
) -> None:
    """Host calls (stream, fenced admit script, answer, BLPOP), beats and the
    agent's seat, all through the cluster."""
    fast = {"host_heartbeat_s": "0.3", "host_down_after_s": "2"}
    on_cluster = {"redis_url": redis_cluster.url, "redis_cluster": "true"}
    server = RunplaneServer.launch(tmp_path / "serve", embedded_host="false", **on_cluster, **fast)
    # The beat key is waited for through the API: a plain client would get MOVED.
    agent = RunplaneAgent.launch(
        tmp_path / "agent", redis_cluster.url, "agent-c", wait=False, redis_cluster="true", **fast
    )
    try:
        with server.client() as http:

            def agent_up() -> bool:
                hosts = http.get("/v1/hosts", params={"status": "up"}).json()["hosts"]
                return any(h["host_id"] == "agent-c" for h in hosts)

            _until("agent-c up", agent_up)
            spec = {"command": ["sleep", "600"], "stop_timeout_s": 5}
            made = http.post("/v1/runtimes", json={"runtime_id": "clu-a", "spec": spec})
            assert made.status_code == 201, made.text
            assert (made.json()["status"], made.json()["host_id"]) == ("running", "agent-c")
            removed = http.delete("/v1/runtimes/clu-a")
            assert removed.status_code == 200, removed.text
    finally:
        agent.stop()
        server.stop()
    assert "MOVED" not in agent.log()
    assert "CROSSSLOT" not in server.log_path.read_text()
