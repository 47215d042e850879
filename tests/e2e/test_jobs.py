"""Job streams end to end: plain `redis-cli XADD` in, results out, nothing lost."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import redis

from tests.e2e.conftest import remove_everything
from tests.support.e2e_backend import raw_redis, redis_cli
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.serve import RunplaneServer

RESULTS = "runtime:job_results"


def redis_of(url: str) -> redis.Redis:
    return raw_redis(url, decode_responses=True)


def xadd_with_redis_cli(url: str, commands: list[list[str]]) -> None:
    """Feed XADD commands to the real redis-cli, one per line on its stdin."""
    lines = "\n".join(" ".join(_quote(part) for part in command) for command in commands)
    subprocess.run(
        redis_cli(url),
        input=lines + "\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _quote(part: str) -> str:
    return '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'


def create_runtimes(server: RunplaneServer, count: int, prefix: str) -> list[str]:
    ids = [f"{prefix}-{i:04d}" for i in range(count)]
    with server.client() as http:
        for runtime_id in ids:
            spec = {"command": ["sleep", "600"], "stop_timeout_s": 5}
            made = http.post("/v1/runtimes", json={"runtime_id": runtime_id, "spec": spec})
            assert made.status_code == 201, made.text
    return ids


def wait_results(
    url: str, expected: int, timeout_s: float = 120.0, job_ids: set[str] | None = None
) -> list[dict[str, str]]:
    """The results so far, once `expected` arrived (or every one of `job_ids`:
    a redelivered entry may repeat its result, so counting is not enough)."""
    client = redis_of(url)
    deadline = time.monotonic() + timeout_s
    while True:
        results = [fields for _, fields in client.xrange(RESULTS)]
        done = (
            job_ids <= {r["job_id"] for r in results}
            if job_ids is not None
            else len(results) >= expected
        )
        if done or time.monotonic() > deadline:
            return results
        time.sleep(0.2)


def pending(url: str, stream: str) -> int:
    groups = redis_of(url).xinfo_groups(stream)
    return sum(int(group["pending"]) for group in groups)


def metric(text: str, name: str, stream: str) -> float:
    """A counter's value for one stream from /metrics (0 when never incremented)."""
    pattern = rf'^{name}{{[^}}]*stream="{re.escape(stream)}"[^}}]*}} ([0-9.e+]+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def fleet_metric(server: RunplaneServer, name: str, stream: str) -> float:
    """`metric` summed over `server` and its peers (the cluster backend's second
    serve consumes its share of the stream); /metrics takes an admin key."""
    total = 0.0
    for instance in (server, *server.peers):
        with instance.client(server.admin_key) as http:
            total += metric(http.get("/metrics").text, name, stream)
    return total


def effective_stops(server: RunplaneServer, runtime_id: str) -> int:
    with server.client() as http:
        ops = http.get(f"/v1/runtimes/{runtime_id}/operations").json()["operations"]
    return sum(
        1
        for o in ops
        if o["op"] == "stop" and o["outcome"] == "success" and o["error_code"] is None
    )


def test_a_thousand_stop_jobs_and_twenty_malformed_entries(
    serve: RunplaneServer, redis_url: str
) -> None:
    ids = create_runtimes(serve, 100, "burst")
    stops = [
        [
            "XADD",
            "runtime:stop_jobs",
            "*",
            "runtime_id",
            rid,
            "reason",
            "requested",
            "job_id",
            f"stop-{n}-{rid}",
        ]
        for n in range(10)
        for rid in ids
    ]
    malformed = [
        ["XADD", "runtime:stop_jobs", "*", "reason", "requested"],  # no runtime_id
        ["XADD", "runtime:stop_jobs", "*", "runtime_id", "burst-0000", "reason", "whim"],
        ["XADD", "runtime:stop_jobs", "*", "runtime_id", "has space", "reason", "idle"],
        ["XADD", "runtime:start_jobs", "*", "runtime_id", "x1", "spec", "{not json"],
        ["XADD", "runtime:patch_jobs", "*", "runtime_id", "burst-0001"],  # patch without spec
    ] * 4
    xadd_with_redis_cli(redis_url, stops + malformed)

    results = wait_results(redis_url, 1020)
    assert len(results) == 1020
    by_job = Counter(r["job_id"] for r in results)
    assert all(by_job[f"stop-{n}-{rid}"] == 1 for n in range(10) for rid in ids)
    failures = [r for r in results if r["outcome"] == "failure"]
    assert len(failures) == 20
    assert {r["error_code"] for r in failures} == {"invalid_request"}
    assert all(r["job_id"].startswith("runtime:") for r in failures)  # <stream>/<entry id>
    codes = Counter(r["error_code"] for r in results if r["outcome"] == "success")
    assert codes == {"": 100, "replay_no_op": 900}

    with serve.client() as http:
        statuses = {
            r["runtime_id"]: r["status"]
            for r in http.get("/v1/runtimes", params={"limit": 1000}).json()["runtimes"]
        }
    assert set(statuses.values()) == {"stopped"}
    assert serve.cli_json("dlq", "ls") == []
    for stream in ("runtime:stop_jobs", "runtime:start_jobs", "runtime:patch_jobs"):
        assert pending(redis_url, stream) == 0
    assert all(effective_stops(serve, rid) == 1 for rid in ids[:10])
    # 1000 jobs + 12 malformed entries, over every instance sharing the stream.
    assert fleet_metric(serve, "runplane_stream_consumed_total", "runtime:stop_jobs") == 1012
    assert fleet_metric(serve, "runplane_stream_acknowledged_total", "runtime:stop_jobs") == 1012
    assert fleet_metric(serve, "runplane_stream_dead_lettered_total", "runtime:stop_jobs") == 0


def test_kill_9_in_a_burst_loses_no_job_and_stops_nothing_twice(
    serve: RunplaneServer, redis_url: str
) -> None:
    ids = create_runtimes(serve, 60, "crash")
    jobs = [
        [
            "XADD",
            "runtime:stop_jobs",
            "*",
            "runtime_id",
            rid,
            "reason",
            "shutdown",
            "job_id",
            f"{n}-{rid}",
        ]
        for n in range(2)
        for rid in ids
    ]
    xadd_with_redis_cli(redis_url, jobs)
    # Kill as soon as the burst is under way; polling XLEN finely, since a
    # quick consumer finishes 120 jobs within one coarse poll.
    client = redis_of(redis_url)
    deadline = time.monotonic() + 30
    while client.xlen(RESULTS) < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    serve.stop(signal.SIGKILL)
    answered = client.xlen(RESULTS)
    assert 10 <= answered < len(jobs), f"{answered} of {len(jobs)} answered at the kill"
    serve.start()

    job_ids = {f"{n}-{rid}" for n in range(2) for rid in ids}
    results = wait_results(redis_url, len(jobs), timeout_s=180, job_ids=job_ids)
    assert {r["job_id"] for r in results} == job_ids
    per_job_outcomes = {}
    for r in results:  # a redelivered entry may repeat its result, never change it
        assert per_job_outcomes.setdefault(r["job_id"], r["outcome"]) == r["outcome"]
    assert set(per_job_outcomes.values()) == {"success"}
    assert pending(redis_url, "runtime:stop_jobs") == 0
    for rid in ids:
        assert effective_stops(serve, rid) == 1, rid
    with serve.client() as http:
        assert {
            r["status"] for r in http.get("/v1/runtimes", params={"limit": 1000}).json()["runtimes"]
        } <= {"stopped", "removed"}


def test_consumers_recover_from_a_redis_restart(tmp_path: Path) -> None:
    redis_server = RedisServer.start(tmp_path / "redis")
    server = RunplaneServer.launch(tmp_path / "data", redis_url=redis_server.url)
    try:
        create_runtimes(server, 2, "rr")
        server.cli("jobs", "submit", "stop", "rr-0000", "--reason", "idle", check=True)
        assert len(wait_results(redis_server.url, 1, timeout_s=30)) == 1
        redis_server.restart()
        server.cli("jobs", "submit", "stop", "rr-0001", "--reason", "idle", check=True)
        results = wait_results(redis_server.url, 2, timeout_s=60)
        assert [r["runtime_id"] for r in results] == ["rr-0000", "rr-0001"]
        assert server.cli_json("runtime", "get", "rr-0001")["status"] == "stopped"
    finally:
        server.stop()
        redis_server.stop()


def test_two_instances_share_the_job_streams(
    tmp_path: Path, redis_url: str, postgres_server: PostgresServer
) -> None:
    database_url = postgres_server.create_database(f"two_{uuid.uuid4().hex[:8]}")
    first = RunplaneServer.launch(tmp_path / "one", redis_url=redis_url, database_url=database_url)
    servers = [first]  # a second that fails to start must not leave the first running
    try:
        second = RunplaneServer.launch(
            tmp_path / "two", redis_url=redis_url, database_url=database_url
        )
        servers.append(second)
        ids = create_runtimes(first, 40, "shared")
        jobs = [
            [
                "XADD",
                "runtime:stop_jobs",
                "*",
                "runtime_id",
                rid,
                "reason",
                "requested",
                "job_id",
                f"{n}-{rid}",
            ]
            for n in range(3)
            for rid in ids
        ]
        xadd_with_redis_cli(redis_url, jobs)
        job_ids = {f"{n}-{rid}" for n in range(3) for rid in ids}
        results = wait_results(redis_url, len(jobs), job_ids=job_ids)
        assert {r["job_id"] for r in results} == job_ids
        assert {r["outcome"] for r in results} == {"success"}
        for rid in ids:
            assert effective_stops(second, rid) == 1, rid
        consumers = redis_of(redis_url).xinfo_consumers("runtime:stop_jobs", "runplane")
        assert len(consumers) == 2
        assert pending(redis_url, "runtime:stop_jobs") == 0
    finally:
        for server in servers:
            remove_everything(server)
            server.stop()


def test_dead_letters_are_listed_replayed_and_dropped(
    serve: RunplaneServer, redis_url: str
) -> None:
    create_runtimes(serve, 1, "dl")
    client = redis_of(redis_url)
    letter = {
        "stream": "runtime:stop_jobs",
        "entry_id": "1-0",
        "fields": json.dumps({"runtime_id": "dl-0000", "reason": "admin", "job_id": "dl-job"}),
        "error": "database unreachable",
        "deliveries": "5",
    }
    replayable = client.xadd("runtime:dead_letters", letter)
    droppable = client.xadd("runtime:dead_letters", letter | {"entry_id": "2-0"})
    listed = serve.cli_json("dlq", "ls")
    assert [(d["id"], d["entry_id"], d["deliveries"]) for d in listed] == [
        (replayable, "1-0", 5),
        (droppable, "2-0", 5),
    ]
    serve.cli("dlq", "replay", replayable, check=True)
    [result] = wait_results(redis_url, 1, timeout_s=30)
    assert (result["job_id"], result["outcome"], result["status"]) == (
        "dl-job",
        "success",
        "stopped",
    )
    serve.cli("dlq", "drop", droppable, check=True)
    assert serve.cli_json("dlq", "ls") == []
    assert serve.cli("dlq", "drop", droppable).returncode == 1
