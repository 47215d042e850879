from __future__ import annotations

from runplane.domain.errors import DriverError, ErrorCode
from runplane.domain.operations import OpKind
from runplane.domain.statuses import Status
from tests.support.world import World


async def test_pause_and_resume(world: World) -> None:
    record = await world.create()
    assert (await world.do(OpKind.PAUSE)).ok
    assert (await world.record()).status is Status.PAUSED
    assert world.is_paused(record.container_id or "")
    assert (await world.do(OpKind.PAUSE)).error_code is ErrorCode.REPLAY_NO_OP
    assert (await world.do(OpKind.RESUME)).ok
    assert (await world.record()).status is Status.RUNNING
    assert (await world.do(OpKind.RESUME)).error_code is ErrorCode.REPLAY_NO_OP


async def test_pausing_a_stopped_runtime_is_invalid_state(world: World) -> None:
    await world.create()
    await world.do(OpKind.STOP)
    result = await world.do(OpKind.PAUSE)
    assert result.error_code is ErrorCode.INVALID_STATE
    assert (await world.record()).status is Status.STOPPED


async def test_failed_pause_goes_back_to_running(world: World) -> None:
    await world.create()
    world.driver.fail_next("pause", DriverError("cannot freeze"))
    result = await world.do(OpKind.PAUSE)
    assert result.error_code is ErrorCode.SERVICE_UNAVAILABLE
    assert (await world.record()).status is Status.RUNNING


async def test_failed_resume_stays_paused(world: World) -> None:
    await world.create()
    await world.do(OpKind.PAUSE)
    world.driver.fail_next("resume", DriverError("cannot thaw"))
    result = await world.do(OpKind.RESUME)
    assert result.error_code is ErrorCode.SERVICE_UNAVAILABLE
    assert (await world.record()).status is Status.PAUSED


async def test_stop_of_a_paused_runtime_stops_it(world: World) -> None:
    await world.create()
    await world.do(OpKind.PAUSE)
    assert (await world.do(OpKind.STOP)).ok
    assert (await world.record()).status is Status.STOPPED


async def test_a_gone_container_is_invalid_state_not_a_retry(world: World) -> None:
    # A retry cannot bring a vanished container back: 409, not 503.
    record = await world.create()
    world.driver.vanish(record.container_id or "")
    paused = await world.do(OpKind.PAUSE)
    assert paused.error_code is ErrorCode.INVALID_STATE
    assert "is gone; stop, restart or remove" in paused.error_message
    assert (await world.record()).status is Status.RUNNING

    again = await world.create("rt-2")
    await world.do(OpKind.PAUSE, "rt-2")
    world.driver.vanish(again.container_id or "")
    resumed = await world.do(OpKind.RESUME, "rt-2")
    assert resumed.error_code is ErrorCode.INVALID_STATE
    assert (await world.record("rt-2")).status is Status.PAUSED
    assert (await world.do(OpKind.STOP, "rt-2")).ok  # what the message says works
