"""An operation that finds its runtime in the transient status an interrupted
attempt left (its lease holder gone) settles it from what the driver sees, then
goes on: a repeat of the interrupted call answers what happened, any other call
proceeds at once instead of waiting for the status deadline."""

from __future__ import annotations

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.domain.statuses import Status
from tests.support.world import SPEC, World


async def interrupted_start(world: World) -> RuntimeRecord:
    """A start killed between its two writes: `starting`, the container launched."""
    pending = await world.create(start=False)
    started = await world.driver.start(pending.runtime_id, SPEC)
    change = StatusChange(
        pending.runtime_id,
        pending.status,
        pending.version,
        Status.STARTING,
        world.clock.now(),
        container_id=started.container_id,
    )
    return await world.runtimes.compare_and_swap(change)


async def test_a_repeated_start_of_an_interrupted_start_answers_that_it_happened(
    world: World,
) -> None:
    left = await interrupted_start(world)

    result = await world.do(OpKind.START, job_id="job-1", op_source=OpSource.STREAM)

    assert result.ok, result.error_message
    assert result.error_code is ErrorCode.REPLAY_NO_OP
    record = await world.record()
    assert (record.status, record.container_id) == (Status.RUNNING, left.container_id)
    settled, start = (await world.entries())[-2:]
    assert (settled.op, settled.op_source, settled.status_from, settled.status_to) == (
        OpKind.START,
        OpSource.RECONCILER,
        Status.STARTING,
        Status.RUNNING,
    )
    assert (start.job_id, start.error_code) == ("job-1", ErrorCode.REPLAY_NO_OP)


async def test_another_call_on_an_interrupted_start_proceeds_at_once(world: World) -> None:
    left = await interrupted_start(world)

    result = await world.do(OpKind.STOP)

    assert result.ok, result.error_message
    assert (await world.record()).status is Status.STOPPED
    assert not world.is_running(left.container_id or "")


async def test_a_runtime_whose_operation_holds_the_lease_is_not_settled(world: World) -> None:
    await interrupted_start(world)
    assert await world.leases.try_acquire("rt-1", "an-operation-in-flight", 60_000)

    result = await world.do(OpKind.STOP)

    assert result.error_code is ErrorCode.CONFLICT
    assert (await world.record()).status is Status.STARTING
