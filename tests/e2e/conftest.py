from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.redis import RedisServer
from tests.support.serve import RunplaneServer


def remove_everything(server: RunplaneServer) -> None:
    """Leave no runtime process behind a test."""
    with contextlib.suppress(httpx.HTTPError, OSError), server.client() as http:
        for runtime in http.get("/v1/runtimes", params={"limit": 1000}).json()["runtimes"]:
            http.delete(f"/v1/runtimes/{runtime['runtime_id']}")


@pytest.fixture
def serve(tmp_path: Path, redis_server: RedisServer) -> Iterator[RunplaneServer]:
    """`runplane serve` on the test Redis and a SQLite database under tmp_path."""
    server = RunplaneServer.launch(tmp_path / "data", redis_url=redis_server.url)
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            remove_everything(server)
        server.stop()
