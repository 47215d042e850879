"""A returning host on the real stores: runtime records and hosts in SQLite,
leases and health events in Redis, the host's driver behind a router (no
agent). It stops the container of a runtime that moved away, holding that
runtime's Redis lease and its driver-call context, keeps the one still its
runtime's, and stays down while another holds a moved runtime's lease. A
lost host's runtimes reach `runtime:health_events` as `host_down`, which the
applier folds into the SQL record."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect, connect_bytes
from runplane.adapters.redis.health import (
    RedisHealthEventPublisher,
    RedisHealthEventReader,
    RedisSnapshotPublisher,
)
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.names import lease_key
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.engine_health import SqlEngineHealthStore
from runplane.adapters.sql.health_snapshots import SqlHealthSnapshotStore
from runplane.adapters.sql.host_store import SqlHostStore
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.bootstrap.host_loss import build_host_loss
from runplane.config import Settings
from runplane.domain.drivers import ContainerInfo
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.hosts import Host, HostStatus
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.drivers import Driver
from runplane.services import driver_call
from runplane.services.health.applier import HealthEventApplier
from runplane.services.health.reporter import HealthReporter
from runplane.services.hosts.loss import HostLoss
from runplane.services.hosts.returning import HostReturn
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.service import Lifecycle
from runplane.testing.driver import InMemoryDriver
from runplane.workers.host_drain import HostDrainLoop
from tests.support.clock import FakeClock
from tests.support.redis import RedisServer
from tests.support.store_backends import make_record, migrated_sqlite_url
from tests.support.tokens import SequentialTokens

SPEC: dict[str, Any] = {"command": ["sleep", "1000"]}


class LeaseCheckingDriver(InMemoryDriver):
    """The returning host's driver: at each stop, notes who holds the runtime's
    Redis lease and the driver-call context the stop was made in."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        super().__init__(name="process")
        self.client = client
        self.stops: list[tuple[str | None, str | None, int | None]] = []

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        call = driver_call.current()
        assert call is not None
        holder = await self.client.get(lease_key(call.runtime_id))
        self.stops.append((holder, call.lease_token, call.record_version))
        return await super().stop(container_id, timeout_s=timeout_s)


@dataclass
class OneHostRouter:
    """A tiny DriverRouter: the returning host's driver, nothing else."""

    host_id: str
    host_driver: Driver
    local_host_id: str | None = None

    def driver(self, host_id: str | None, name: str) -> Driver | None:
        return self.host_driver if (host_id, name) == (self.host_id, "process") else None


@dataclass
class Real:
    client: redis.asyncio.Redis
    database: SqlDatabase
    deps: Dependencies
    hosts: SqlHostStore
    driver: LeaseCheckingDriver
    host_id: str
    loss: HostLoss

    def rt(self, n: int) -> str:
        return f"{self.host_id}-rt-{n}"


@pytest.fixture
async def real(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[Real]:
    client = connect(redis_server.url)
    database = SqlDatabase.from_url(await migrated_sqlite_url(tmp_path))
    host_id = f"h{uuid.uuid4().hex[:10]}"  # keys of its own on the session's Redis
    driver = LeaseCheckingDriver(client)
    runtimes = SqlRuntimeStore(database)
    clock = FakeClock()
    deps = Dependencies(
        runtimes=runtimes,
        operations=SqlOperationLog(database),
        leases=RedisLeaseStore(client),
        drivers={"process": InMemoryDriver(name="process")},  # never this host's
        clock=clock,
        tokens=SequentialTokens(),
        router=OneHostRouter(host_id, driver),
    )
    hosts = SqlHostStore(database)
    now = clock.now()
    await hosts.register(
        Host(host_id, "", HostStatus.UP, HostStatus.UP, 1, now, now, drivers=("process",))
    )
    reporter = HealthReporter(
        RedisHealthEventPublisher(client, max_len=1000), SqlHealthSnapshotStore(database), clock
    )
    loss = HostLoss(runtimes, hosts, reporter, HostReturn(deps, hosts))
    yield Real(client, database, deps, hosts, driver, host_id, loss)
    await database.dispose()
    await client.aclose()


async def started(real: Real, n: int, **record: Any) -> str:
    """A live container on the host for runtime n, and its record."""
    runtime_id = real.rt(n)
    container = await real.driver.start(runtime_id, SPEC)
    record.setdefault("host_id", real.host_id)
    record.setdefault("container_id", container.container_id)
    await real.deps.runtimes.create(make_record(runtime_id, driver="process", **record))
    return container.container_id


async def test_a_returning_host_stops_what_moved_away_holding_its_lease(real: Real) -> None:
    moved = await started(real, 1, host_id="elsewhere", container_id="c-new", version=7)
    kept = await started(real, 2)
    busy = await started(real, 3, host_id="elsewhere", container_id="c-new")
    token = "another-operation"
    assert await real.deps.leases.try_acquire(real.rt(3), token, 10_000)

    assert await real.loss.before_up(real.host_id) is False  # rt-3's lease is busy
    assert real.driver.container(busy) is not None

    await real.deps.leases.release(real.rt(3), token)
    assert await real.loss.before_up(real.host_id) is True

    assert real.driver.container(moved) is None
    assert real.driver.container(busy) is None
    assert real.driver.container(kept) is not None
    assert real.driver.container(kept).info.state.value == "running"  # type: ignore[union-attr]
    first = real.driver.stops[0]
    holder, call_token, version = first
    assert holder == call_token  # the stop ran while its own Redis lease held the runtime
    assert version == 7
    assert len(real.driver.stops) == 2
    for n in (1, 3):
        assert await real.client.get(lease_key(real.rt(n))) is None  # released after
    assert await real.loss.before_up(real.host_id) is True
    assert len(real.driver.stops) == 2


async def test_a_lost_hosts_runtimes_reach_the_health_stream_as_host_down(
    real: Real, redis_server: RedisServer
) -> None:
    await started(real, 1)
    await started(real, 2, host_id="elsewhere")
    host = await real.hosts.get(real.host_id)
    assert host is not None
    await real.loss.on_down(host)
    raw = connect_bytes(redis_server.url)  # the reader wants bytes (non-UTF-8 entries)
    try:
        reader = RedisHealthEventReader(raw)
        recent = await reader.recent(real.rt(1))
        assert [(e.event_type, e.details["host_id"]) for e in recent] == [
            (HealthEventType.HOST_DOWN, real.host_id)
        ]
        assert await reader.recent(real.rt(2)) == []
    finally:
        await raw.aclose()
    # Folded by the applier on the SQL record, holding the Redis lease.
    asked: list[tuple[str, HealthEventType | None]] = []

    async def on_unreachable(record: RuntimeRecord, cause: HealthEvent | None) -> None:
        asked.append((record.runtime_id, cause and cause.event_type))

    applier = HealthEventApplier(
        real.deps,
        SqlEngineHealthStore(real.database),
        RedisSnapshotPublisher(real.client, max_len=1000),
        on_unreachable=on_unreachable,
    )
    for event in recent:
        await applier.handle(event)
    after = await real.deps.runtimes.get(real.rt(1))
    assert after is not None
    assert (after.status, after.engine_health) == (Status.ENGINE_UNREACHABLE, "host_down")
    assert asked == [(real.rt(1), HealthEventType.HOST_DOWN)]
    row = await SqlHealthSnapshotStore(real.database).get(real.rt(1))
    assert row is not None
    assert row.summary.value == "host_down"


async def test_the_builder_wires_hooks_and_a_drain_loop_on_the_real_stores(
    real: Real, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, host_drain_batch=2)
    lifecycle = Lifecycle.build(real.deps, default_driver="process")
    hooks, loops = build_host_loss(settings, real.database, real.client, lifecycle, real.deps)
    moved = await started(real, 1, host_id="elsewhere", container_id="c-new")
    assert await hooks.before_up(real.host_id) is True
    assert real.driver.container(moved) is None
    (loop,) = loops
    assert isinstance(loop, HostDrainLoop)
    assert loop.drainer.batch == 2
    assert await loop.run_once() is False  # nothing drains
    assert loop.leadership.leading  # its lease, taken on the real Redis
    await loop.leadership.release()
