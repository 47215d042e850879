"""The operations on real components: SQLite and Postgres, Redis leases, real processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.redis.client import connect
from runplane.adapters.redis.health import RedisHealthEventPublisher
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.migrate import upgrade_database
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.system import SecretTokenGenerator, SystemClock
from runplane.domain.drivers import ContainerState
from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.statuses import Status
from runplane.ports.drivers import Driver
from runplane.services.lifecycle.create import CreateRequest
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.service import Lifecycle
from runplane.testing.driver import InMemoryDriver
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgres"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer
) -> AsyncIterator[SqlDatabase]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'runplane.db'}"
    else:
        url = postgres_server.create_database(f"lc_{uuid.uuid4().hex[:10]}")
    db = SqlDatabase.from_url(url)
    await upgrade_database(db)
    yield db
    await db.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def clients() -> AsyncIterator[list[redis.asyncio.Redis]]:
    """Every Redis client a test opens, closed when it ends."""
    opened: list[redis.asyncio.Redis] = []
    yield opened
    for client in opened:
        await client.aclose()


def lifecycle_on(
    database: SqlDatabase,
    clients: list[redis.asyncio.Redis],
    redis_url: str,
    driver: Driver,
    ttl_ms: int = 30_000,
    health_stream: str | None = None,
) -> Lifecycle:
    clients.append(connect(redis_url))
    health_events = RedisHealthEventPublisher(clients[-1], health_stream) if health_stream else None
    deps = Dependencies(
        runtimes=SqlRuntimeStore(database),
        operations=SqlOperationLog(database),
        leases=RedisLeaseStore(clients[-1]),
        drivers={driver.name: driver},
        clock=SystemClock(),
        tokens=SecretTokenGenerator(),
        lease_ttl_ms=ttl_ms,
        health_events=health_events,
    )
    return Lifecycle.build(deps, driver.name)


@dataclass
class ProcessLife:
    driver: ProcessDriver
    life: Lifecycle


@pytest_asyncio.fixture(loop_scope="session")
async def process_life(
    database: SqlDatabase,
    redis_server: RedisServer,
    tmp_path: Path,
    clients: list[redis.asyncio.Redis],
) -> AsyncIterator[ProcessLife]:
    """A process driver under tmp_path and the lifecycle on it; the driver closed at the end."""
    driver = ProcessDriver(tmp_path / "runtimes")
    yield ProcessLife(driver, lifecycle_on(database, clients, redis_server.url, driver))
    driver.close()


def op(runtime_id: str, **fields: object) -> OperationRequest:
    return OperationRequest(runtime_id=runtime_id, op_source=OpSource.REST, **fields)  # type: ignore[arg-type]


async def test_process_runtime_through_every_operation(
    process_life: ProcessLife, database: SqlDatabase
) -> None:
    driver, life = process_life.driver, process_life.life
    rid = f"real-{uuid.uuid4().hex[:8]}"
    created = await life.create.handle(
        CreateRequest(spec={"command": ["sleep", "300"]}, op_source=OpSource.CLI, runtime_id=rid)
    )
    assert created.record is not None
    assert created.record.status is Status.RUNNING
    first_cid = created.record.container_id or ""
    assert (await driver.inspect(first_cid)).state is ContainerState.RUNNING

    paused = await life[OpKind.PAUSE].handle(op(rid))
    assert paused.record is not None
    assert paused.record.status is Status.PAUSED
    assert (await driver.inspect(first_cid)).state is ContainerState.PAUSED
    assert (await life[OpKind.RESUME].handle(op(rid))).ok

    restarted = await life[OpKind.RESTART].handle(op(rid))
    assert restarted.record is not None
    assert restarted.record.container_id != first_cid
    assert (await driver.inspect(first_cid)).state is ContainerState.MISSING

    patched = await life[OpKind.PATCH].handle(op(rid, spec={"command": ["sleep", "301"]}))
    assert patched.record is not None
    assert patched.record.spec["command"] == ["sleep", "301"]

    stopped = await life[OpKind.STOP].handle(op(rid, reason="finished"))
    assert stopped.record is not None
    assert stopped.record.status is Status.STOPPED
    removed = await life[OpKind.REMOVE].handle(op(rid))
    assert removed.record is not None
    assert removed.record.status is Status.REMOVED

    entries = await SqlOperationLog(database).list_for_runtime(rid)
    assert [e.op for e in reversed(entries)] == [
        OpKind.START,
        OpKind.PAUSE,
        OpKind.RESUME,
        OpKind.RESTART,
        OpKind.PATCH,
        OpKind.STOP,
        OpKind.REMOVE,
    ]
    final = await SqlRuntimeStore(database).get(rid)
    assert final is not None
    assert final.version == 15  # 7 operations x 2 writes, on top of version 1


async def test_a_stop_of_an_ended_process_removes_it_and_reports_it_disappeared(
    database: SqlDatabase,
    redis_server: RedisServer,
    tmp_path: Path,
    clients: list[redis.asyncio.Redis],
) -> None:
    driver = ProcessDriver(tmp_path / "runtimes")
    stream = f"health-{uuid.uuid4().hex[:8]}"
    life = lifecycle_on(database, clients, redis_server.url, driver, health_stream=stream)
    rid = f"gone-{uuid.uuid4().hex[:8]}"
    created = await life.create.handle(
        CreateRequest(spec={"command": ["true"]}, op_source=OpSource.CLI, runtime_id=rid)
    )
    assert created.record is not None
    cid = created.record.container_id or ""
    for _ in range(1000):  # bounded wait for the process to end by itself
        if (await driver.inspect(cid)).state is ContainerState.EXITED:
            break
        await asyncio.sleep(0.01)
    stopped = await life[OpKind.STOP].handle(op(rid, reason="requested"))
    assert stopped.ok
    record = await SqlRuntimeStore(database).get(rid)
    assert record is not None
    assert record.status is Status.REMOVED
    assert record.container_id is None
    assert (await driver.inspect(cid)).state is ContainerState.MISSING  # its folder is gone
    published = await clients[-1].xrange(stream)
    assert [(f["runtime_id"], f["container_id"], f["event_type"]) for _, f in published] == [
        (rid, cid, "container_disappeared")
    ]


async def test_a_start_with_the_spec_a_process_runtime_runs_is_a_replay(
    process_life: ProcessLife,
) -> None:
    """The process driver stores its normalised spec: the caller's is compared in that form."""
    life = process_life.life
    rid = f"same-{uuid.uuid4().hex[:8]}"
    spec = {"command": ["sleep", "300"]}
    created = await life.create.handle(
        CreateRequest(spec=spec, op_source=OpSource.CLI, runtime_id=rid)
    )
    assert created.record is not None
    assert created.record.spec != spec
    again = await life[OpKind.START].handle(op(rid, spec=spec))
    assert again.error_code is ErrorCode.REPLAY_NO_OP
    assert again.record is not None
    assert again.record.container_id == created.record.container_id
    assert (await life[OpKind.STOP].handle(op(rid, reason="finished"))).ok


async def test_a_program_that_is_not_there_is_an_invalid_request(process_life: ProcessLife) -> None:
    """The caller's to fix, as a missing image is for docker: 400, not 503."""
    life = process_life.life
    rid = f"absent-{uuid.uuid4().hex[:8]}"
    created = await life.create.handle(
        CreateRequest(
            spec={"command": ["no-such-program-here"]}, op_source=OpSource.REST, runtime_id=rid
        )
    )
    assert created.error_code is ErrorCode.INVALID_REQUEST
    assert "No such file or directory: 'no-such-program-here'" in created.error_message
    assert created.record is not None
    assert created.record.status is Status.ERROR


async def test_lease_is_renewed_through_a_slow_driver_call(
    database: SqlDatabase, redis_server: RedisServer, clients: list[redis.asyncio.Redis]
) -> None:
    """A TTL of 300 ms and a driver call of 1.2 s: renewal keeps others out throughout."""
    driver = InMemoryDriver(latency_s=0.0)
    life = lifecycle_on(database, clients, redis_server.url, driver, ttl_ms=300)
    rid = f"slow-{uuid.uuid4().hex[:8]}"
    await life.create.handle(
        CreateRequest(spec={"command": ["x"]}, op_source=OpSource.REST, runtime_id=rid)
    )
    driver.latency_s = 1.2
    stop = asyncio.create_task(life[OpKind.STOP].handle(op(rid, reason="requested")))
    await asyncio.sleep(0.7)  # well past the TTL: only renewal keeps the lease held
    intruder = await life[OpKind.PAUSE].handle(op(rid))
    result = await stop
    assert intruder.error_code is ErrorCode.CONFLICT
    assert result.ok
    clients.append(connect(redis_server.url))
    leases = RedisLeaseStore(clients[-1])
    assert await leases.try_acquire(rid, "after", 1000)  # released at the end


async def test_unreachable_redis_is_service_unavailable(
    database: SqlDatabase, redis_server: RedisServer, clients: list[redis.asyncio.Redis]
) -> None:
    life = lifecycle_on(database, clients, redis_server.url, InMemoryDriver())
    rid = f"nor-{uuid.uuid4().hex[:8]}"
    await life.create.handle(
        CreateRequest(spec={"command": ["x"]}, op_source=OpSource.REST, runtime_id=rid)
    )
    dead = lifecycle_on(database, clients, "redis://127.0.0.1:1/0", InMemoryDriver())
    result = await dead[OpKind.STOP].handle(op(rid, reason="requested"))
    assert result.error_code is ErrorCode.SERVICE_UNAVAILABLE
    record = await SqlRuntimeStore(database).get(rid)
    assert record is not None
    assert record.status is Status.RUNNING
