"""How a call ends when the store misbehaves while it ends (outcomes.py): the
call always has a result, a failure whose entry could not be written is
`service_unavailable` (retried, never acknowledged as final), and a store fault
after the driver acted is finished by the job's next delivery."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from runplane.domain.drivers import ContainerInfo
from runplane.domain.errors import (
    CasConflict,
    DriverError,
    DuplicateJobId,
    ErrorCode,
    StoreUnavailable,
)
from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.domain.operations import OpKind, Outcome
from runplane.domain.records import OperationEntry, RuntimeRecord, StatusChange
from runplane.domain.statuses import Status
from runplane.services.lifecycle.service import Lifecycle
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import RetryLater
from runplane.testing.driver import InMemoryDriver
from runplane.testing.jobs import InMemoryJobResults
from runplane.testing.stores import InMemoryOperationLog, InMemoryRuntimeStore
from runplane.workers.jobs.handler import JobHandler
from tests.support.world import World

DOWN = StoreUnavailable("database unavailable: the database system is shutting down")


class FlakyLog(InMemoryOperationLog):
    """An operation log whose database can go away (`down`), and whose job ids
    can be held by a claim it cannot show (`claimed_unseen`: a duplicate is
    reported, the first entry is not found)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.claimed_unseen: set[str] = set()

    async def append(self, entry: OperationEntry, *, events: Sequence[LifecycleEvent] = ()) -> None:
        if self.down:
            raise DOWN
        if entry.job_id in self.claimed_unseen:
            raise DuplicateJobId(entry.job_id)
        await super().append(entry, events=events)

    async def find_by_job_id(self, team_id: str | None, job_id: str) -> OperationEntry | None:
        if self.down:
            raise DOWN
        return await super().find_by_job_id(team_id, job_id)


class FlakyRuntimes(InMemoryRuntimeStore):
    """A runtime store whose database can go away (`down`), and where another
    writer moves the record first whenever a CAS goes to a status in `lost_to`."""

    def __init__(self, log: InMemoryOperationLog) -> None:
        super().__init__(log)
        self.down = False
        self.lost_to: set[Status] = set()

    async def get(self, runtime_id: str) -> RuntimeRecord | None:
        if self.down:
            raise DOWN
        return await super().get(runtime_id)

    async def compare_and_swap(
        self,
        change: StatusChange,
        *,
        entry: OperationEntry | None = None,
        events: Sequence[LifecycleEvent] = (),
    ) -> RuntimeRecord:
        if self.down:
            raise DOWN
        if change.status in self.lost_to:
            raise CasConflict(change.runtime_id, change.expected_status.value)
        return await super().compare_and_swap(change, entry=entry, events=events)


class StopThenStoreDown(InMemoryDriver):
    """Stops for real, then the database goes away before the final CAS."""

    def __init__(self) -> None:
        super().__init__()
        self.stores: list[FlakyLog | FlakyRuntimes] = []

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        info = await super().stop(container_id, timeout_s=timeout_s)
        for store in self.stores:
            store.down = True
        return info


class FlakyWorld(World):
    log: FlakyLog
    runtimes: FlakyRuntimes


def flaky_world(driver: InMemoryDriver | None = None) -> FlakyWorld:
    world = World.build(driver)
    log = FlakyLog()
    runtimes = FlakyRuntimes(log)
    deps = replace(world.deps, runtimes=runtimes, operations=log)
    lifecycle = Lifecycle.build(deps, "memory")
    return FlakyWorld(
        world.clock, log, runtimes, world.leases, world.driver, lifecycle, deps, world.health_events
    )


def job_entry(deliveries: int, **fields: str) -> StreamEntry:
    return StreamEntry("runtime:stop_jobs", "1-0", fields, deliveries, False)


async def test_a_failure_whose_cas_is_lost_and_log_is_down_still_answers() -> None:
    world = flaky_world()
    await world.create()
    world.driver.fail_next("stop", DriverError("engine down"))
    world.runtimes.lost_to = {Status.ERROR}  # the failure's move to error loses its CAS
    world.log.down = True  # and the entry it writes instead cannot be written
    result = await world.do(OpKind.STOP)
    assert result.outcome is Outcome.FAILURE
    assert result.error_code is ErrorCode.SERVICE_UNAVAILABLE
    assert "engine down" in result.error_message


async def test_a_failure_whose_cas_is_lost_writes_its_entry_without_the_change() -> None:
    world = flaky_world()
    await world.create()
    world.driver.fail_next("stop", DriverError("engine down"))
    world.runtimes.lost_to = {Status.ERROR}
    result = await world.do(OpKind.STOP)
    assert result.error_code is ErrorCode.SERVICE_UNAVAILABLE
    assert (await world.record()).status is Status.STOPPING  # the reconciler settles it
    last = (await world.entries())[-1]
    assert (last.op, last.outcome, last.error_code) == (
        OpKind.STOP,
        Outcome.FAILURE,
        ErrorCode.SERVICE_UNAVAILABLE,
    )
    assert last.status_to is None  # the move to error it asked for never happened


async def test_a_job_id_claimed_where_it_cannot_be_found_ends_as_conflict() -> None:
    world = flaky_world()
    world.log.claimed_unseen = {"job-1"}
    result = await world.do(OpKind.STOP, "rt-x", job_id="job-1")  # not_found, then a duplicate
    assert (result.outcome, result.error_code) == (Outcome.FAILURE, ErrorCode.CONFLICT)
    [entry] = await world.entries("rt-x")
    assert (entry.error_code, entry.job_id) == (ErrorCode.CONFLICT, None)
    assert entry.details["job_id"] == "job-1"


async def test_a_failure_that_cannot_be_recorded_is_service_unavailable() -> None:
    world = flaky_world()
    world.log.down = True
    result = await world.do(OpKind.STOP, "rt-x")  # not_found, but no entry says so
    assert (result.outcome, result.error_code) == (Outcome.FAILURE, ErrorCode.SERVICE_UNAVAILABLE)
    assert result.error_message.startswith("no such runtime (not recorded:")
    world.log.down = False
    assert await world.entries("rt-x") == []


async def test_a_store_fault_after_the_driver_stopped_is_retried_then_finished() -> None:
    driver = StopThenStoreDown()
    world = flaky_world(driver)
    driver.stores = [world.log, world.runtimes]
    record = await world.create()
    results = InMemoryJobResults()
    handler = JobHandler(
        OpKind.STOP, world.lifecycle, world.runtimes, results, world.clock, 0, max_deliveries=3
    )
    fields: dict[str, Any] = {"runtime_id": "rt-1", "reason": "idle", "job_id": "job-1"}
    with pytest.raises(RetryLater):
        await handler(job_entry(1, **fields))
    assert results.results == []  # never acknowledged as a failure
    world.log.down = world.runtimes.down = False
    await handler(job_entry(2, **fields))
    [published] = results.results
    assert (published.outcome, published.status) == (Outcome.SUCCESS, "stopped")
    assert world.driver.calls["stop"] == 1  # stopped once, finished by the redelivery
    claimed = await world.log.find_by_job_id("team-a", "job-1")
    assert claimed is not None
    assert claimed.outcome is Outcome.SUCCESS
    assert not world.is_running(record.container_id)
