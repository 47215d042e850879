from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from tests.support.redis import RedisServer
from tests.support.serve import RunplaneServer


def remove_everything(server: RunplaneServer) -> None:
    """Leave no runtime process behind a test: remove every runtime through the
    API, then end what a removal could not reach (a runtime a killed server left
    in a transient status, say) by its supervisor, which names the data dir."""
    with contextlib.suppress(httpx.HTTPError, OSError), server.client() as http:
        for runtime in http.get("/v1/runtimes", params={"limit": 1000}).json()["runtimes"]:
            http.delete(f"/v1/runtimes/{runtime['runtime_id']}")
    for process in psutil.process_iter(["cmdline"]):
        if str(server.data_dir) in " ".join(process.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                for child in process.children(recursive=True):
                    child.kill()
                process.kill()


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
