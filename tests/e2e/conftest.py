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
from tests.support.redis import RedisServer
from tests.support.serve import RunplaneServer


def remove_everything(server: RunplaneServer) -> None:
    """Leave no runtime process behind a test: remove every runtime through the
    API, then end what a removal could not reach (a runtime a killed server left
    in a transient status, say) by the pids its container's state file names."""
    with contextlib.suppress(httpx.HTTPError, OSError), server.client() as http:
        for runtime in http.get("/v1/runtimes", params={"limit": 1000}).json()["runtimes"]:
            http.delete(f"/v1/runtimes/{runtime['runtime_id']}")
    for state_file in (server.data_dir / "runtimes" / "containers").glob("*/state.json"):
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
def redis_url(redis_server: RedisServer) -> str:
    """A Redis database of its own (emptied) for each end-to-end test, so one
    test's streams and groups never meet another's."""
    db = next(_databases) % 15 + 1
    with redis.Redis(port=redis_server.port, db=db) as client:
        client.flushdb()
    return f"redis://127.0.0.1:{redis_server.port}/{db}"


@pytest.fixture
def serve(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    """`runplane serve` on the test Redis and a SQLite database under tmp_path."""
    server = RunplaneServer.launch(tmp_path / "data", redis_url=redis_url)
    try:
        yield server
    finally:
        remove_everything(server)  # the API part is skipped when a test stopped serve
        server.stop()
