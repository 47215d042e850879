"""The timers loop sleeps until the earliest deadline it knows (issue 15):
a deadline set through this instance's settings service while the loop is in
a long sleep wakes it, and the loop then fires the deadline when it comes;
one written behind its back (another instance) is found within the longest
sleep. A real loop, a real SQLite store and the wall clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.migrate import upgrade_database
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.runtime_settings import SqlRuntimeSettings
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.system import SecretTokenGenerator, SystemClock
from runplane.domain.operations import OpSource
from runplane.domain.runtime_settings import RuntimeSettings
from runplane.domain.statuses import Status
from runplane.services.lifecycle.create import CreateRequest
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.service import Lifecycle
from runplane.services.runtime_ops.idle import ConnectionProbe, IdleWatcher
from runplane.services.runtime_ops.settings import RuntimeSettingsService
from runplane.services.runtime_ops.timeouts import TimeoutFirer
from runplane.testing.driver import InMemoryDriver
from runplane.testing.leases import InMemoryLeaseStore
from runplane.workers.leadership import Leadership
from runplane.workers.runtime_timers import RuntimeTimersLoop


@dataclass
class Parts:
    lifecycle: Lifecycle
    store: SqlRuntimeSettings
    runtimes: SqlRuntimeStore
    deps: Dependencies

    def loop(self, *, interval_s: float, idle_wait_max_s: float) -> RuntimeTimersLoop:
        clock = self.deps.clock
        idle = IdleWatcher(self.lifecycle, self.store, clock, ConnectionProbe(None, None))
        return RuntimeTimersLoop(
            TimeoutFirer(self.lifecycle, self.store, clock),
            idle,
            Leadership(self.deps.leases, self.deps.tokens, "timers"),
            interval_s=interval_s,
            idle_wait_max_s=idle_wait_max_s,
        )

    async def create(self, runtime_id: str) -> None:
        request = CreateRequest(
            spec={"command": ["serve"]},
            op_source=OpSource.REST,
            runtime_id=runtime_id,
            settings=RuntimeSettings(),
        )
        created = await self.lifecycle.create.handle(request)
        assert created.record is not None, created.error_message

    async def wait_status(self, runtime_id: str, status: Status, within_s: float = 60) -> None:
        async with asyncio.timeout(within_s):
            while True:
                record = await self.runtimes.get(runtime_id)
                assert record is not None
                if record.status is status:
                    return
                await asyncio.sleep(0.05)


@pytest_asyncio.fixture(loop_scope="session")
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    database = SqlDatabase.from_url(f"sqlite+aiosqlite:///{tmp_path / 'runplane.db'}")
    await upgrade_database(database)
    clock = SystemClock()
    driver = InMemoryDriver()
    deps = Dependencies(
        runtimes=SqlRuntimeStore(database),
        operations=SqlOperationLog(database),
        leases=InMemoryLeaseStore(clock),
        drivers={driver.name: driver},
        clock=clock,
        tokens=SecretTokenGenerator(),
    )
    store = SqlRuntimeSettings(database)
    yield Parts(Lifecycle.build(deps, driver.name), store, deps.runtimes, deps)  # type: ignore[arg-type]
    await database.dispose()


@contextlib.asynccontextmanager
async def running(loop: RuntimeTimersLoop) -> AsyncIterator[None]:
    task = asyncio.create_task(loop.run())
    try:
        yield
    finally:
        loop.request_stop()
        await asyncio.wait_for(task, 30)


async def test_a_deadline_set_while_the_loop_sleeps_long_fires_on_time(parts: Parts) -> None:
    # Rounds an hour apart: only the wake, then the sleep until the deadline,
    # can fire it within the test's minute.
    loop = parts.loop(interval_s=3600, idle_wait_max_s=3600)
    service = RuntimeSettingsService(
        parts.store, parts.runtimes, parts.deps.clock, on_change=loop.wake
    )
    await parts.create("late")
    async with running(loop):
        await asyncio.sleep(0.5)  # the first round has run; the loop sleeps
        record = await parts.runtimes.get("late")
        assert record is not None
        await service.set_timeout(record, timeout_s=2)
        await parts.wait_status("late", Status.STOPPED)
    record = await parts.runtimes.get("late")
    assert record is not None
    assert record.timeout_at is None  # spent once


async def test_a_deadline_written_by_another_instance_is_found_within_the_longest_sleep(
    parts: Parts,
) -> None:
    loop = parts.loop(interval_s=0.5, idle_wait_max_s=2)
    await parts.create("elsewhere")
    async with running(loop):
        await asyncio.sleep(0.5)
        now = parts.deps.clock.now()
        # The store written directly: no wake, as from another instance.
        written = await parts.store.set_timeout(
            "elsewhere", expected=None, timeout_at=now, on_timeout="stop", at=now
        )
        assert written is not None
        await parts.wait_status("elsewhere", Status.STOPPED)


async def test_the_loop_stops_promptly_from_a_long_sleep(parts: Parts) -> None:
    loop = parts.loop(interval_s=3600, idle_wait_max_s=3600)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.5)
    loop.request_stop()
    await asyncio.wait_for(task, 30)
    assert task.exception() is None  # ended by the stop, not by a failure
