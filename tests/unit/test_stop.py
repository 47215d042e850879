from __future__ import annotations

import asyncio
from dataclasses import replace

from runplane.domain.drivers import ContainerInfo
from runplane.domain.errors import DriverError, ErrorCode, StoreUnavailable
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.domain.statuses import Status
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.service import Lifecycle
from runplane.testing.driver import InMemoryDriver
from runplane.testing.stores import InMemoryRuntimeStore
from tests.support.world import StaleReads, World


async def test_stop_moves_running_to_stopped_and_logs_one_entry(world: World) -> None:
    started = await world.create()
    result = await world.do(OpKind.STOP)
    assert result.ok
    assert result.error_code is None
    record = await world.record()
    assert record.status is Status.STOPPED
    assert record.version == started.version + 2  # stopping, then stopped
    assert record.stopped_at == world.clock.now()
    assert record.status_deadline is None
    assert not world.is_running(started.container_id or "")
    stop_entries = [e for e in await world.entries() if e.op is OpKind.STOP]
    assert len(stop_entries) == 1
    assert stop_entries[0].status_from is Status.RUNNING
    assert stop_entries[0].status_to is Status.STOPPED
    assert stop_entries[0].reason == "requested"


async def test_second_stop_is_a_replay_without_effect(world: World) -> None:
    await world.create()
    await world.do(OpKind.STOP)
    version = (await world.record()).version
    result = await world.do(OpKind.STOP)
    assert result.outcome is Outcome.SUCCESS
    assert result.error_code is ErrorCode.REPLAY_NO_OP
    assert (await world.record()).version == version
    assert [e.error_code for e in await world.entries()][-1] is ErrorCode.REPLAY_NO_OP


async def test_vanished_container_ends_removed_with_success(world: World) -> None:
    started = await world.create()
    world.driver.vanish(started.container_id or "")
    result = await world.do(OpKind.STOP)
    assert result.ok
    record = await world.record()
    assert record.status is Status.REMOVED
    assert record.removed_at is not None


async def test_vanished_container_is_forgotten_and_reported_disappeared(world: World) -> None:
    started = await world.create()
    world.driver.vanish(started.container_id or "")
    result = await world.do(OpKind.STOP)
    assert result.error_code is None
    assert (await world.record()).container_id is None
    assert [(e.runtime_id, e.container_id, e.event_type) for e in world.health_events.events] == [
        ("rt-1", started.container_id, HealthEventType.CONTAINER_DISAPPEARED)
    ]
    assert (await world.entries())[-1].container_id == started.container_id  # kept in the log


async def test_exited_container_is_removed_with_its_leftovers(world: World) -> None:
    started = await world.create()
    world.driver.exit(started.container_id or "", exit_code=1)
    assert (await world.do(OpKind.STOP)).ok
    assert (await world.record()).status is Status.REMOVED
    assert not world.knows(started.container_id)
    assert len(world.health_events.events) == 1


class UnreachableHealthEvents:
    async def publish(self, event: HealthEvent) -> None:
        raise StoreUnavailable("redis down")


async def test_an_unpublished_disappearance_does_not_change_the_outcome(world: World) -> None:
    started = await world.create()
    world.driver.vanish(started.container_id or "")
    deps = replace(world.deps, health_events=UnreachableHealthEvents())
    stop = Lifecycle.build(deps, "memory")[OpKind.STOP]
    result = await stop.handle(
        OperationRequest(runtime_id="rt-1", op_source=OpSource.REST, reason="requested")
    )
    assert result.ok
    assert result.error_code is None
    assert (await world.record()).status is Status.REMOVED


async def test_a_stopped_runtime_reports_no_disappearance(world: World) -> None:
    await world.create()
    assert (await world.do(OpKind.STOP)).ok
    assert world.health_events.events == []


async def test_stop_needs_a_known_reason(world: World) -> None:
    await world.create()
    result = await world.do(OpKind.STOP, reason="because")
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "reason" in result.error_message
    assert (await world.record()).status is Status.RUNNING
    assert (await world.entries())[-1].error_code is ErrorCode.INVALID_REQUEST


async def test_unknown_runtime_is_not_found(world: World) -> None:
    result = await world.do(OpKind.STOP, runtime_id="nope")
    assert result.error_code is ErrorCode.NOT_FOUND
    assert len(await world.entries("nope")) == 1


async def test_another_teams_runtime_is_not_found(world: World) -> None:
    await world.create(team_id="team-a")
    result = await world.do(OpKind.STOP, team_scope="team-b")
    assert result.error_code is ErrorCode.NOT_FOUND
    assert (await world.record()).status is Status.RUNNING


async def test_held_lease_answers_conflict_at_once(world: World) -> None:
    await world.create()
    assert await world.leases.try_acquire("rt-1", "someone-else", 60_000)
    result = await world.do(OpKind.STOP)
    assert result.error_code is ErrorCode.CONFLICT
    assert (await world.record()).status is Status.RUNNING


async def test_stream_caller_waits_for_the_lease(world: World) -> None:
    await world.create()
    assert await world.leases.try_acquire("rt-1", "someone-else", 60_000)

    async def release_soon() -> None:
        await asyncio.sleep(0.1)
        await world.leases.release("rt-1", "someone-else")

    releaser = asyncio.create_task(release_soon())
    result = await world.do(OpKind.STOP, op_source=OpSource.STREAM, lease_wait_ms=2_000)
    await releaser
    assert result.ok
    assert (await world.record()).status is Status.STOPPED


async def test_lease_is_released_after_the_operation(world: World) -> None:
    await world.create()
    await world.do(OpKind.STOP)
    assert world.leases.holder("rt-1") is None


async def test_stop_of_a_pending_runtime_is_invalid_state(world: World) -> None:
    await world.create(start=False)
    result = await world.do(OpKind.STOP)
    assert result.error_code is ErrorCode.INVALID_STATE
    assert (await world.record()).status is Status.PENDING


async def test_driver_failure_moves_to_error(world: World) -> None:
    await world.create()
    world.driver.fail_next("stop", DriverError("engine down"))
    result = await world.do(OpKind.STOP)
    assert result.error_code is ErrorCode.SERVICE_UNAVAILABLE
    assert "engine down" in result.error_message
    assert (await world.record()).status is Status.ERROR


async def test_repeated_job_id_returns_the_first_result(world: World) -> None:
    await world.create()
    first = await world.do(OpKind.STOP, job_id="job-1")
    await world.do(OpKind.START)  # running again
    again = await world.do(OpKind.STOP, job_id="job-1")
    assert first.ok
    assert again.outcome is Outcome.SUCCESS
    assert again.error_code is ErrorCode.REPLAY_NO_OP
    assert again.operation_id == first.operation_id
    assert (await world.record()).status is Status.RUNNING  # no second effect


async def test_retryable_failure_does_not_claim_the_job_id(world: World) -> None:
    await world.create()
    assert await world.leases.try_acquire("rt-1", "someone-else", 60_000)
    busy = await world.do(OpKind.STOP, job_id="job-2")
    await world.leases.release("rt-1", "someone-else")
    retried = await world.do(OpKind.STOP, job_id="job-2")
    assert busy.error_code is ErrorCode.CONFLICT
    assert retried.ok
    assert retried.error_code is None


async def test_final_failure_is_replayed_with_the_same_outcome(world: World) -> None:
    await world.create(start=False)
    first = await world.do(OpKind.STOP, job_id="job-3")
    again = await world.do(OpKind.STOP, job_id="job-3")
    assert first.error_code is ErrorCode.INVALID_STATE
    assert again.outcome is Outcome.FAILURE
    assert again.error_code is ErrorCode.INVALID_STATE


async def test_concurrent_stops_have_one_effect(world: World) -> None:
    await world.create()
    results = await asyncio.gather(*(world.do(OpKind.STOP) for _ in range(5)))
    fresh = [r for r in results if r.ok and r.error_code is None]
    others = {r.error_code for r in results if not (r.ok and r.error_code is None)}
    assert len(fresh) == 1
    assert others <= {ErrorCode.CONFLICT, ErrorCode.REPLAY_NO_OP}
    assert world.driver.calls["stop"] == 1


async def leave_stopping(world: World) -> RuntimeRecord:
    """What a stop that crashed after its first write leaves behind."""
    record = await world.record()
    return await world.runtimes.compare_and_swap(
        StatusChange(
            runtime_id=record.runtime_id,
            expected_status=record.status,
            expected_version=record.version,
            status=Status.STOPPING,
            at=world.clock.now(),
        )
    )


async def test_a_stop_left_half_done_is_finished_by_the_next(world: World) -> None:
    """runplane died between the driver's stop and the final write."""
    record = await world.create()
    await leave_stopping(world)
    await world.driver.stop(record.container_id or "")
    result = await world.do(OpKind.STOP)
    assert result.ok
    assert (await world.record()).status is Status.STOPPED
    assert world.driver.calls["stop"] == 1  # not stopped twice


async def test_a_half_done_stop_of_a_vanished_container_ends_removed(world: World) -> None:
    record = await world.create()
    await leave_stopping(world)
    world.driver.vanish(record.container_id or "")
    assert (await world.do(OpKind.STOP)).ok
    assert (await world.record()).status is Status.REMOVED


async def test_a_half_done_stop_of_a_live_container_stops_it(world: World) -> None:
    record = await world.create()
    await leave_stopping(world)
    assert (await world.do(OpKind.STOP)).ok
    assert (await world.record()).status is Status.STOPPED
    assert not world.is_running(record.container_id)


class StoppedMeanwhile(InMemoryDriver):
    """Another instance finishes the stop (or fails it) while this one's driver
    call runs: the final compare-and-swap then loses."""

    runtimes: InMemoryRuntimeStore
    settles_to = Status.STOPPED

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        info = await super().stop(container_id, timeout_s=timeout_s)
        record = await self.runtimes.get("rt-1")
        assert record is not None
        change = StatusChange(
            runtime_id="rt-1",
            expected_status=record.status,
            expected_version=record.version,
            status=self.settles_to,
            at=record.updated_at,
        )
        await self.runtimes.compare_and_swap(change)
        return info


async def test_a_lost_transient_cas_on_a_stopped_runtime_is_a_replay() -> None:
    world = World.build(store=StaleReads)
    running = await world.create()
    assert (await world.do(OpKind.STOP)).ok  # another instance's stop
    assert isinstance(world.runtimes, StaleReads)
    world.runtimes.stale = running
    result = await world.do(OpKind.STOP)
    assert result.outcome is Outcome.SUCCESS
    assert result.error_code is ErrorCode.REPLAY_NO_OP
    assert result.record is not None
    assert result.record.status is Status.STOPPED
    last = (await world.entries())[-1]
    assert (last.error_code, last.status_from, last.status_to) == (
        ErrorCode.REPLAY_NO_OP,
        Status.STOPPED,
        Status.STOPPED,
    )


async def test_a_lost_final_cas_on_a_stopped_runtime_is_a_replay() -> None:
    driver = StoppedMeanwhile()
    world = World.build(driver)
    driver.runtimes = world.runtimes
    await world.create()
    result = await world.do(OpKind.STOP)
    assert result.error_code is ErrorCode.REPLAY_NO_OP
    assert (await world.record()).status is Status.STOPPED


async def test_a_lost_cas_elsewhere_is_a_conflict() -> None:
    driver = StoppedMeanwhile()
    driver.settles_to = Status.ERROR
    world = World.build(driver)
    driver.runtimes = world.runtimes
    await world.create()
    result = await world.do(OpKind.STOP)
    assert result.error_code is ErrorCode.CONFLICT
    assert (await world.record()).status is Status.ERROR
