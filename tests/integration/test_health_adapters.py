"""The health adapters on real backends: snapshot rows on SQLite and Postgres,
the snapshots stream, the health event look-back and the lease probe on Redis,
the network prober against real sockets and processes, and the process driver
marking what it lists with the runtime."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.probes import NetworkProber
from runplane.adapters.redis.client import connect
from runplane.adapters.redis.health import (
    RedisHealthEventPublisher,
    RedisHealthEventReader,
    RedisSnapshotPublisher,
)
from runplane.adapters.redis.leases import RedisLeaseProbe, RedisLeaseStore
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.engine_health import SqlEngineHealthStore
from runplane.adapters.sql.health_snapshots import SqlHealthSnapshotStore
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.health.probes import ProbeTarget
from runplane.domain.health.reactions import HealthSnapshot, HealthSummary, RuntimeSnapshot
from runplane.domain.health.spec import HealthCheck, ProbeType
from runplane.domain.statuses import Status
from runplane.ports.health import SummaryWrite
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.store_backends import (
    make_record,
    migrated_postgres_url,
    migrated_sqlite_url,
)

T0 = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
E = HealthEventType


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgres"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer
) -> AsyncIterator[SqlDatabase]:
    if request.param == "sqlite":
        url = await migrated_sqlite_url(tmp_path)
    else:
        url = await migrated_postgres_url(postgres_server)
    database = SqlDatabase.from_url(url)
    yield database
    await database.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


async def test_a_snapshot_row_is_kept_per_runtime_and_replaced(database: SqlDatabase) -> None:
    store = SqlHealthSnapshotStore(database)
    assert await store.get("rt-1") is None
    first = HealthSnapshot("rt-1", "c-1", E.CONTAINER_STARTED, HealthSummary.HEALTHY, T0)
    await store.upsert(first)
    assert await store.get("rt-1") == first
    later = HealthSnapshot(
        "rt-1",
        "c-1",
        E.CONTAINER_EXITED,
        HealthSummary.EXITED,
        T0 + timedelta(seconds=5),
        {"exit_code": 137, "signal": 9, "detail": "killed by SIGKILL"},
    )
    await store.upsert(later)
    await store.upsert(
        HealthSnapshot("rt-2", "c-9", E.PROBE_FAILED, HealthSummary.PROBE_FAILED, T0)
    )
    assert await store.get("rt-1") == later
    other = await store.get("rt-2")
    assert other is not None
    assert other.summary is HealthSummary.PROBE_FAILED


async def test_the_summary_is_written_alone_if_status_and_container_still_match(
    database: SqlDatabase,
) -> None:
    runtimes, summaries = SqlRuntimeStore(database), SqlEngineHealthStore(database)
    created = make_record("rt-1", container_id="c-1", engine_health=None)
    await runtimes.create(created)
    at = T0 + timedelta(seconds=9)
    written = await summaries.set_engine_health(
        "rt-1", "probe_failed", status=Status.RUNNING, container_id="c-1", at=at
    )
    assert written is not None
    assert (written.engine_health, written.version, written.updated_at) == ("probe_failed", 1, at)
    assert written.last_op_at == created.last_op_at
    for status, container in [(Status.PAUSED, "c-1"), (Status.RUNNING, "c-2")]:
        missed = await summaries.set_engine_health(
            "rt-1", "exited", status=status, container_id=container, at=at
        )
        assert missed is None
    assert (
        await summaries.set_engine_health(
            "nope", "exited", status=Status.RUNNING, container_id=None, at=at
        )
        is None
    )
    stored = await runtimes.get("rt-1")
    assert stored is not None
    assert stored.engine_health == "probe_failed"


async def test_a_batch_reads_its_records_at_once_and_writes_its_summaries_together(
    database: SqlDatabase,
) -> None:
    runtimes, summaries = SqlRuntimeStore(database), SqlEngineHealthStore(database)
    for n in range(3):
        await runtimes.create(make_record(f"rt-{n}", container_id=f"c-{n}", engine_health=None))
    found = await summaries.records(["rt-0", "rt-2", "nope", "rt-0"])
    assert sorted(found) == ["rt-0", "rt-2"]
    assert found["rt-2"].container_id == "c-2"
    assert await summaries.records([]) == {}
    at = T0 + timedelta(seconds=9)
    written = await summaries.set_engine_healths(
        [
            SummaryWrite("rt-0", "probe_failed", Status.RUNNING, "c-0"),
            SummaryWrite("rt-1", "exited", Status.RUNNING, "another-container"),  # missed
            SummaryWrite("rt-2", "oom", Status.RUNNING, "c-2"),
            SummaryWrite("nope", "oom", Status.RUNNING, None),
        ],
        at=at,
    )
    assert {k: (r.engine_health, r.version, r.updated_at) for k, r in written.items()} == {
        "rt-0": ("probe_failed", 1, at),
        "rt-2": ("oom", 1, at),
    }
    after = await summaries.records(["rt-0", "rt-1", "rt-2"])
    assert [after[f"rt-{n}"].engine_health for n in range(3)] == ["probe_failed", None, "oom"]
    assert await summaries.set_engine_healths([], at=at) == {}


async def test_snapshots_are_published_as_flat_fields(client: redis.asyncio.Redis) -> None:
    stream = f"snapshots:{uuid.uuid4().hex[:8]}"
    await RedisSnapshotPublisher(client, stream=stream).publish(
        RuntimeSnapshot("rt-1", "engine_unreachable", "exited", T0)
    )
    entries: Any = await client.xrange(stream)
    assert entries[0][1] == {
        "runtime_id": "rt-1",
        "status": "engine_unreachable",
        "engine_health": "exited",
        "occurred_at_ms": str(int(T0.timestamp() * 1000)),
    }


async def test_recent_health_events_are_the_runtimes_newest_first(
    client: redis.asyncio.Redis,
) -> None:
    stream = f"health:{uuid.uuid4().hex[:8]}"
    publisher = RedisHealthEventPublisher(client, stream=stream)
    for n, kind in enumerate([E.CONTAINER_STARTED, E.PROBE_FAILED, E.PROBE_RECOVERED]):
        at = T0 + timedelta(seconds=n)
        await publisher.publish(HealthEvent("rt-1", "c-1", kind, at, {"n": n}))
        await publisher.publish(HealthEvent("rt-2", "c-2", kind, at))
    await client.xadd(stream, {"runtime_id": "rt-1", "event_type": "bogus"})
    reader = RedisHealthEventReader(client, stream=stream)
    recent = await reader.recent("rt-1", limit=2)
    assert [(e.event_type, e.details["n"]) for e in recent] == [
        (E.PROBE_RECOVERED, 2),
        (E.PROBE_FAILED, 1),
    ]
    assert len(await reader.recent("rt-2")) == 3
    assert await reader.recent("rt-3") == []


async def test_the_lease_probe_sees_a_runtime_lease(client: redis.asyncio.Redis) -> None:
    runtime_id = f"rt-{uuid.uuid4().hex[:8]}"
    probe, leases = RedisLeaseProbe(client), RedisLeaseStore(client)
    assert not await probe.is_held(runtime_id)
    assert await leases.try_acquire(runtime_id, "token", 5_000)
    assert await probe.is_held(runtime_id)
    await leases.release(runtime_id, "token")
    assert not await probe.is_held(runtime_id)


@pytest.fixture
async def prober() -> AsyncIterator[NetworkProber]:
    prober = NetworkProber()
    yield prober
    await prober.aclose()


async def _http_server(status: int, delay_s: float = 0.0) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(delay_s)
        path = request.split(b" ")[1].decode()
        writer.write(f"HTTP/1.1 {status} X\r\nX-Path: {path}\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


def _port(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


def _closed_port() -> int:
    return free_port()  # this worker's own: no other test binds it meanwhile


async def test_http_probes_check_the_status(prober: NetworkProber) -> None:
    async with await _http_server(204) as server:
        target = ProbeTarget(port=_port(server))
        any_2xx = await prober.probe(HealthCheck(ProbeType.HTTP, path="/healthz"), target)
        exact = await prober.probe(HealthCheck(ProbeType.HTTP, expect_status=204), target)
        other = await prober.probe(HealthCheck(ProbeType.HTTP, expect_status=200), target)
    assert (any_2xx.ok, exact.ok, other.ok) == (True, True, False)
    assert other.detail == "HTTP 204"
    refused = await prober.probe(HealthCheck(ProbeType.HTTP), ProbeTarget(port=_closed_port()))
    assert not refused.ok
    assert "ConnectError" in refused.detail


async def test_a_slow_target_fails_within_the_timeout(prober: NetworkProber) -> None:
    async with await _http_server(200, delay_s=10.0) as server:
        started = time.monotonic()
        result = await prober.probe(
            HealthCheck(ProbeType.HTTP, timeout_s=0.2), ProbeTarget(port=_port(server))
        )
    assert not result.ok
    assert time.monotonic() - started < 5  # gave up at 0.2 s, not after 10 s
    assert result.detail == "timed out after 0.2 s"


async def test_tcp_probes_need_a_listener(prober: NetworkProber) -> None:
    async with await _http_server(200) as server:
        assert (await prober.probe(HealthCheck(ProbeType.TCP), ProbeTarget(port=_port(server)))).ok
    closed = await prober.probe(HealthCheck(ProbeType.TCP), ProbeTarget(port=_closed_port()))
    assert not closed.ok
    no_port = await prober.probe(HealthCheck(ProbeType.TCP), ProbeTarget())
    assert not no_port.ok


async def test_exec_probes_run_with_the_runtimes_env_and_cwd(
    prober: NetworkProber, tmp_path: Path
) -> None:
    (tmp_path / "ready").write_text("")
    target = ProbeTarget(env={"WANTED": "ready"}, cwd=str(tmp_path))
    check = HealthCheck(ProbeType.EXEC, command=("sh", "-c", 'test -e "$WANTED"'))
    assert (await prober.probe(check, target)).ok
    (tmp_path / "ready").unlink()
    failed = await prober.probe(check, target)
    assert (failed.ok, failed.detail) == (False, "exit code 1")
    hung = HealthCheck(ProbeType.EXEC, command=("sleep", "30"), timeout_s=0.2)
    started = time.monotonic()
    assert not (await prober.probe(hung, target)).ok
    assert time.monotonic() - started < 10  # killed at 0.2 s, not after 30 s


async def test_the_process_driver_lists_each_container_with_its_runtime(tmp_path: Path) -> None:
    driver = ProcessDriver(tmp_path / "runtimes")
    started = await driver.start("marked", {"command": ["sleep", "30"]})
    try:
        listed = {info.container_id: info for info in await driver.list_containers()}
        assert listed[started.container_id].runtime_id == "marked"
        assert (await driver.inspect(started.container_id)).state == "running"
    finally:
        await driver.remove(started.container_id)
