from __future__ import annotations

from runplane.domain.errors import DriverError, ErrorCode
from runplane.domain.operations import OpKind
from runplane.domain.statuses import Status
from tests.support.world import World


async def test_restart_replaces_the_container_under_one_entry(world: World) -> None:
    first = await world.create()
    result = await world.do(OpKind.RESTART)
    assert result.ok
    record = await world.record()
    assert record.status is Status.RUNNING
    assert record.container_id != first.container_id
    assert not world.is_running(first.container_id or "")
    restarts = [e for e in await world.entries() if e.op is OpKind.RESTART]
    assert len(restarts) == 1
    assert (restarts[0].status_from, restarts[0].status_to) == (Status.RUNNING, Status.RUNNING)


async def test_restart_of_a_stopped_runtime_starts_it(world: World) -> None:
    await world.create()
    await world.do(OpKind.STOP)
    assert (await world.do(OpKind.RESTART)).ok
    assert (await world.record()).status is Status.RUNNING


async def test_restart_of_a_paused_runtime_is_invalid_state(world: World) -> None:
    await world.create()
    await world.do(OpKind.PAUSE)
    assert (await world.do(OpKind.RESTART)).error_code is ErrorCode.INVALID_STATE


async def test_failed_restart_ends_in_error(world: World) -> None:
    await world.create()
    world.driver.fail_next("start", DriverError("boom"))
    result = await world.do(OpKind.RESTART)
    assert result.error_code is ErrorCode.SERVICE_UNAVAILABLE
    assert (await world.record()).status is Status.ERROR


async def test_patch_replaces_the_spec_and_restarts(world: World) -> None:
    first = await world.create()
    new_spec = {"command": ["sleep", "7"]}
    result = await world.do(OpKind.PATCH, spec=new_spec)
    assert result.ok
    record = await world.record()
    assert record.spec == new_spec
    assert record.container_id != first.container_id
    assert world.spec_of(record.container_id or "") == new_spec


async def test_patch_with_the_same_spec_is_a_replay(world: World) -> None:
    record = await world.create()
    result = await world.do(OpKind.PATCH, spec=record.spec)
    assert result.error_code is ErrorCode.REPLAY_NO_OP
    assert (await world.record()).container_id == record.container_id


async def test_patch_needs_a_valid_spec_and_a_running_runtime(world: World) -> None:
    await world.create()
    assert (await world.do(OpKind.PATCH)).error_code is ErrorCode.INVALID_REQUEST
    bad = await world.do(OpKind.PATCH, spec={"command": "not-a-list"})
    assert bad.error_code is ErrorCode.INVALID_REQUEST
    await world.do(OpKind.STOP)
    stopped = await world.do(OpKind.PATCH, spec={"command": ["true"]})
    assert stopped.error_code is ErrorCode.INVALID_STATE


async def test_remove_stops_and_forgets(world: World) -> None:
    record = await world.create()
    result = await world.do(OpKind.REMOVE)
    assert result.ok
    removed = await world.record()
    assert removed.status is Status.REMOVED
    assert removed.container_id is None
    assert not world.knows(record.container_id or "")
    assert (await world.do(OpKind.REMOVE)).error_code is ErrorCode.REPLAY_NO_OP
    assert (await world.do(OpKind.START)).ok  # removed -> starting is allowed


async def test_remove_of_a_stopped_runtime(world: World) -> None:
    await world.create()
    await world.do(OpKind.STOP)
    assert (await world.do(OpKind.REMOVE)).ok
    entries = await world.entries()
    assert (entries[-1].status_from, entries[-1].status_to) == (Status.STOPPED, Status.REMOVED)
