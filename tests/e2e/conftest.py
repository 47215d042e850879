from __future__ import annotations

import contextlib
import itertools
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from runplane.adapters.drivers.process_files import live_process, read_json
from tests.support.e2e_backend import backend, on_cluster
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.redis_cluster import RedisClusterServer
from tests.support.serve import BACKEND, RunplaneServer, stop_together


def remove_everything(server: RunplaneServer) -> None:
    """Leave no runtime process behind a test: remove every runtime through the
    API, then end what a removal could not reach (a runtime a killed server left
    in a transient status, say) by the pids its container's state file names."""
    with contextlib.suppress(httpx.HTTPError, OSError), server.client() as http:
        for runtime in http.get("/v1/runtimes", params={"limit": 1000}).json()["runtimes"]:
            http.delete(f"/v1/runtimes/{runtime['runtime_id']}")
    end_leftovers(server.data_dir)


def end_leftovers(data_dir: Path) -> None:
    """Kill the runtimes (and supervisors) still alive under `data_dir`."""
    for state_file in (data_dir / "runtimes" / "containers").glob("*/state.json"):
        state = read_json(state_file) or {}
        if is_live(state.get("pid"), state.get("start_ticks")):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(state["pid"], signal.SIGKILL)  # the runtime's whole group
        if is_live(state.get("supervisor_pid"), state.get("supervisor_start_ticks")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(state["supervisor_pid"], signal.SIGKILL)


def is_live(pid: object, start_ticks: object) -> bool:
    if not isinstance(pid, int) or not isinstance(start_ticks, int):
        return False
    return live_process(pid, start_ticks) is not None


_databases = itertools.count()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test's Redis, empty. Plain: a database of its own on the session
    redis-server, so one test's streams and groups never meet another's.
    Cluster (RUNPLANE_E2E_BACKEND=cluster): the session cluster, which has db 0
    only, so every primary is flushed; launches on it get redis_cluster=true and
    a fresh PostgreSQL database (tests/support/serve.py BACKEND)."""
    url = _on_cluster(request) if backend() == "cluster" else _own_db(request)
    try:
        yield url
    finally:
        BACKEND.reset()


def _own_db(request: pytest.FixtureRequest) -> str:
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    db = next(_databases) % 15 + 1
    with redis.Redis(port=redis_server.port, db=db) as client:
        client.flushdb()
    return f"redis://127.0.0.1:{redis_server.port}/{db}"


def _on_cluster(request: pytest.FixtureRequest) -> str:
    cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    for port in cluster.ports:
        with redis.Redis(port=port) as node:
            node.flushall()
    BACKEND.cluster_url = cluster.url
    BACKEND.database = lambda: postgres.create_database(f"e2e_{next(_databases)}")
    return cluster.url


@pytest.fixture
def serve(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    """`runplane serve` on the test Redis and a SQLite database under tmp_path.
    On the cluster backend a second serve shares its Redis and PostgreSQL
    database, each with its own embedded host (`serve-<port>`): runtimes land on
    either host and the other instance reaches them through the host-call stream.
    The two start at once (they migrate the shared database in turn, under
    runplane's advisory lock) and stop at once."""
    server = RunplaneServer.prepare(tmp_path / "data", redis_url=redis_url)
    servers = [server]
    if on_cluster(redis_url):
        second = _second_instance(server, tmp_path / "data-2")
        server.peers.append(second)
        servers.append(second)
    try:
        for each in servers:
            each.spawn()
        for each in servers:
            each.wait_ready()
        yield server
    finally:
        remove_everything(server)  # the API part is skipped when a test stopped serve
        stop_together(servers)
        for each in servers[1:]:
            end_leftovers(each.data_dir)


def _second_instance(first: RunplaneServer, data_dir: Path) -> RunplaneServer:
    shared = {"database_url": first.env["RUNPLANE_DATABASE_URL"]}
    if "RUNPLANE_EMBEDDED_HOST" in first.env:
        shared["embedded_host"] = first.env["RUNPLANE_EMBEDDED_HOST"]
    return RunplaneServer.prepare(data_dir, redis_url=first.env["RUNPLANE_REDIS_URL"], **shared)
