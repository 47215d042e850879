"""Health monitoring on real components: SQLite, a real Redis (streams named per
test), a driver of the test's choosing. Every part built as bootstrap would."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio

from runplane.adapters.probes import NetworkProber
from runplane.adapters.redis.client import connect, connect_bytes
from runplane.adapters.redis.health import (
    RedisHealthEventPublisher,
    RedisHealthEventReader,
    RedisSnapshotPublisher,
)
from runplane.adapters.redis.leases import RedisLeaseProbe, RedisLeaseStore
from runplane.adapters.redis.offsets import RedisOffsetStore
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.engine_health import SqlEngineHealthStore
from runplane.adapters.sql.health_snapshots import SqlHealthSnapshotStore
from runplane.adapters.sql.migrate import upgrade_database
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.system import SecretTokenGenerator, SystemClock
from runplane.domain.health.events import HealthEvent
from runplane.domain.health.reactions import decode_health_event
from runplane.ports.drivers import Driver
from runplane.services.health.applier import HealthEventApplier
from runplane.services.health.reporter import HealthReporter
from runplane.services.health.restart_policy import RestartPolicyService
from runplane.services.lifecycle.dependencies import Dependencies, Timeouts
from runplane.services.lifecycle.service import Lifecycle
from runplane.services.lifecycle.settler import TransientSettler
from runplane.streams.offset import OffsetConsumer
from runplane.workers.health_consumer import health_events_consumer
from runplane.workers.health_monitor import HealthMonitor
from runplane.workers.reconciler import Reconciler
from runplane.workers.restarts import RestartScheduler
from tests.support.streams import fast


@dataclass
class RealHealth:
    database: SqlDatabase
    client: redis.asyncio.Redis
    stream_client: redis.asyncio.Redis
    driver: Driver
    name: str

    def __post_init__(self) -> None:
        self.health_stream = f"{self.name}:health_events"
        self.snapshots_stream = f"{self.name}:snapshots"
        self.leases = RedisLeaseStore(self.client)
        self.deps = Dependencies(
            runtimes=SqlRuntimeStore(self.database),
            operations=SqlOperationLog(self.database),
            leases=self.leases,
            drivers={self.driver.name: self.driver},
            clock=SystemClock(),
            tokens=SecretTokenGenerator(),
            lease_ttl_ms=2_000,
            timeouts=Timeouts(start_s=1.0, stop_s=1.0),
        )
        self.lifecycle = Lifecycle.build(self.deps, self.driver.name)
        self.rows = SqlHealthSnapshotStore(self.database)
        self.reporter = HealthReporter(
            RedisHealthEventPublisher(self.client, stream=self.health_stream),
            self.rows,
            self.deps.clock,
        )
        self.lease_probe = RedisLeaseProbe(self.client)
        self.prober = NetworkProber()
        self.snapshots = RedisSnapshotPublisher(self.client, stream=self.snapshots_stream)
        self.reader = RedisHealthEventReader(self.client, stream=self.health_stream)
        self.scheduler = RestartScheduler(
            RestartPolicyService(self.lifecycle, self.deps, backoff_base_s=0.2, backoff_cap_s=1.0)
        )

    def monitor(self, interval_s: float = 1.0) -> HealthMonitor:
        return HealthMonitor(
            self.deps.runtimes,
            self.deps.drivers,
            self.reporter,
            self.prober,
            self.lease_probe,
            self.deps.clock,
            interval_s=interval_s,
        )

    def applier(self, **options: Any) -> HealthEventApplier:
        return HealthEventApplier(
            self.deps,
            SqlEngineHealthStore(self.database),
            self.snapshots,
            on_unreachable=self.scheduler.on_unreachable,
            **options,
        )

    def consumer(self, applier: HealthEventApplier | None = None) -> OffsetConsumer:
        return health_events_consumer(
            self.stream_client,
            RedisOffsetStore(self.client),
            applier or self.applier(),
            settings=fast(),
            stream=self.health_stream,
            consumer=f"{self.name}:consumer",
        )

    def reconciler(self) -> Reconciler:
        return Reconciler(
            self.deps.runtimes,
            self.deps.drivers,
            TransientSettler(self.deps),
            self.reporter,
            self.lease_probe,
            self.deps.clock,
            restarts=self.scheduler,
        )

    async def health_events(self, runtime_id: str | None = None) -> list[HealthEvent]:
        entries: Any = await self.client.xrange(self.health_stream)
        events = [decode_health_event(fields) for _, fields in entries]
        return [e for e in events if runtime_id is None or e.runtime_id == runtime_id]

    async def snapshot_entries(self, runtime_id: str) -> list[dict[str, str]]:
        entries: Any = await self.client.xrange(self.snapshots_stream)
        return [fields for _, fields in entries if fields["runtime_id"] == runtime_id]


@contextlib.asynccontextmanager
async def real_health(tmp_path: Path, redis_url: str, driver: Driver) -> AsyncIterator[RealHealth]:
    database = SqlDatabase.from_url(f"sqlite+aiosqlite:///{tmp_path / 'runplane.db'}")
    await upgrade_database(database)
    client = connect(redis_url)
    stream_client = connect_bytes(redis_url)
    system = RealHealth(database, client, stream_client, driver, f"t-{uuid.uuid4().hex[:10]}")
    try:
        yield system
    finally:
        await system.prober.aclose()
        await stream_client.aclose()
        await client.aclose()
        await database.dispose()


@contextlib.asynccontextmanager
async def looping(*loops: Any) -> AsyncIterator[None]:
    """Each loop's run() in a task for the block; stopped and awaited after it."""
    tasks = [asyncio.create_task(loop.run()) for loop in loops]
    try:
        yield
    finally:
        for loop in loops:
            loop.request_stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
