from __future__ import annotations

from typing import Any

from runplane.domain.errors import DriverError, ErrorCode
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.statuses import Status
from runplane.services.lifecycle.create import CreateRequest
from runplane.testing.driver import InMemoryDriver
from tests.support.world import SPEC, StaleReads, World


async def test_create_and_start_gives_a_running_record(world: World) -> None:
    record = await world.create()
    assert record.status is Status.RUNNING
    assert record.container_id
    assert world.is_running(record.container_id)
    assert record.started_at == world.clock.now()
    entries = await world.entries()
    assert [(e.op, e.status_from, e.status_to) for e in entries] == [
        (OpKind.START, Status.PENDING, Status.RUNNING)
    ]


async def test_create_without_start_stays_pending(world: World) -> None:
    record = await world.create(start=False)
    assert record.status is Status.PENDING
    assert record.container_id is None


async def test_create_refuses_a_taken_id_and_a_bad_id(world: World) -> None:
    await world.create()
    taken = await world.lifecycle.create.handle(
        CreateRequest(spec={"command": ["x"]}, op_source=OpSource.REST, runtime_id="rt-1")
    )
    bad = await world.lifecycle.create.handle(
        CreateRequest(spec={"command": ["x"]}, op_source=OpSource.REST, runtime_id="a b")
    )
    assert taken.error_code is ErrorCode.CONFLICT
    assert bad.error_code is ErrorCode.INVALID_REQUEST


async def test_create_generates_an_id_when_none_given(world: World) -> None:
    result = await world.lifecycle.create.handle(
        CreateRequest(spec={"command": ["x"]}, op_source=OpSource.REST)
    )
    assert result.record is not None
    assert result.record.runtime_id.startswith("default:rt-")  # the team's namespace


async def test_create_rejects_an_invalid_spec(world: World) -> None:
    result = await world.lifecycle.create.handle(
        CreateRequest(spec={"command": []}, op_source=OpSource.REST, runtime_id="rt-9")
    )
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert await world.runtimes.get("rt-9") is None


async def test_start_of_a_running_runtime_is_a_replay(world: World) -> None:
    await world.create()
    result = await world.do(OpKind.START)
    assert result.error_code is ErrorCode.REPLAY_NO_OP
    assert world.driver.started == 1


async def test_start_after_stop_brings_a_new_container(world: World) -> None:
    first = await world.create()
    await world.do(OpKind.STOP)
    result = await world.do(OpKind.START)
    assert result.ok
    record = await world.record()
    assert record.status is Status.RUNNING
    assert record.container_id != first.container_id
    assert record.stopped_at is None


async def test_start_with_a_new_spec_replaces_it(world: World) -> None:
    await world.create()
    await world.do(OpKind.STOP)
    result = await world.do(OpKind.START, spec={"command": ["sleep", "5"]})
    assert result.ok
    assert (await world.record()).spec == {"command": ["sleep", "5"]}


async def test_driver_failure_on_start_moves_to_error(world: World) -> None:
    await world.create(start=False)
    world.driver.fail_next("start", DriverError("no such binary"))
    result = await world.do(OpKind.START)
    assert result.error_code is ErrorCode.SERVICE_UNAVAILABLE
    record = await world.record()
    assert record.status is Status.ERROR
    entries = await world.entries()
    assert (entries[-1].status_from, entries[-1].status_to) == (Status.PENDING, Status.ERROR)
    retried = await world.do(OpKind.START)  # error -> starting is allowed
    assert retried.ok


async def test_start_of_a_paused_runtime_is_invalid_state(world: World) -> None:
    await world.create()
    await world.do(OpKind.PAUSE)
    result = await world.do(OpKind.START)
    assert result.error_code is ErrorCode.INVALID_STATE


def with_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """A driver's normalisation: fills in what the caller left out."""
    return {"env": {}, "stop_timeout_s": 10} | spec


async def test_start_with_the_same_spec_on_a_running_runtime_is_a_replay() -> None:
    world = World.build(InMemoryDriver(validator=with_defaults))
    record = await world.create(spec=SPEC)
    assert record.spec != SPEC  # stored normalised
    result = await world.do(OpKind.START, spec=SPEC)
    assert result.ok
    assert result.error_code is ErrorCode.REPLAY_NO_OP
    assert world.driver.started == 1
    assert (await world.record()).version == record.version


async def test_start_with_another_spec_on_a_running_runtime_is_invalid_state(world: World) -> None:
    await world.create()
    result = await world.do(OpKind.START, spec={"command": ["sleep", "5"]})
    assert result.error_code is ErrorCode.INVALID_STATE
    assert world.driver.started == 1


async def test_a_start_that_loses_its_cas_to_an_equal_start_is_a_replay() -> None:
    world = World.build(store=StaleReads)
    await world.create()
    assert (await world.do(OpKind.STOP)).ok
    stopped = await world.record()
    assert (await world.do(OpKind.START)).ok  # another instance's start
    assert isinstance(world.runtimes, StaleReads)
    world.runtimes.stale = stopped
    result = await world.do(OpKind.START, spec=SPEC)
    assert result.error_code is ErrorCode.REPLAY_NO_OP
    assert world.driver.started == 2
    assert (await world.record()).status is Status.RUNNING


def create_request(**fields: Any) -> CreateRequest:
    return CreateRequest(spec=SPEC, op_source=OpSource.REST, team_id="team-a", **fields)


async def test_a_repeated_create_without_an_id_returns_the_first_result(world: World) -> None:
    first = await world.lifecycle.create.handle(create_request(job_id="k-1"))
    again = await world.lifecycle.create.handle(create_request(job_id="k-1"))
    assert first.ok
    assert first.error_code is None
    assert again.ok
    assert again.error_code is ErrorCode.REPLAY_NO_OP
    assert again.operation_id == first.operation_id
    assert first.record is not None
    assert again.record is not None
    assert again.record.runtime_id == first.record.runtime_id
    assert len((await world.runtimes.list()).records) == 1  # no orphan
    assert world.driver.started == 1


async def test_a_repeated_create_with_an_id_returns_the_first_result(world: World) -> None:
    first = await world.lifecycle.create.handle(create_request(runtime_id="rt-1", job_id="k-2"))
    again = await world.lifecycle.create.handle(create_request(runtime_id="rt-1", job_id="k-2"))
    assert again.error_code is ErrorCode.REPLAY_NO_OP
    assert again.operation_id == first.operation_id
    assert world.driver.started == 1


async def test_a_repeated_create_without_start_creates_one_record(world: World) -> None:
    first = await world.lifecycle.create.handle(create_request(job_id="k-3", start=False))
    again = await world.lifecycle.create.handle(create_request(job_id="k-3", start=False))
    assert first.error_code is None
    assert again.error_code is ErrorCode.REPLAY_NO_OP
    assert len((await world.runtimes.list()).records) == 1
    assert (await world.runtimes.list()).records[0].status is Status.PENDING


async def test_a_create_interrupted_before_its_start_is_resumed_by_its_repeat(
    world: World,
) -> None:
    """The first call created the record, then the driver was down: the repeat starts it."""
    world.driver.fail_next("start", DriverError("engine down"))
    first = await world.lifecycle.create.handle(create_request(job_id="k-4"))
    again = await world.lifecycle.create.handle(create_request(job_id="k-4"))
    assert first.error_code is ErrorCode.SERVICE_UNAVAILABLE
    assert again.ok
    assert again.error_code is None
    assert again.record is not None
    assert again.record.status is Status.RUNNING
    assert len((await world.runtimes.list()).records) == 1


async def test_a_taken_id_with_another_spec_is_still_a_conflict(world: World) -> None:
    await world.lifecycle.create.handle(create_request(runtime_id="rt-1", job_id="k-5"))
    other = await world.lifecycle.create.handle(
        CreateRequest(
            spec={"command": ["other"]}, op_source=OpSource.REST, runtime_id="rt-1", job_id="k-6"
        )
    )
    assert other.error_code is ErrorCode.CONFLICT


async def test_another_teams_job_id_is_another_operation(world: World) -> None:
    """Job ids are unique per team: the same one in two teams is two creates,
    each repeat replaying its own team's result and nothing of the other's."""
    ours = await world.lifecycle.create.handle(create_request(job_id="k-7"))
    theirs = await world.lifecycle.create.handle(
        CreateRequest(spec=SPEC, op_source=OpSource.REST, team_id="team-b", job_id="k-7")
    )
    assert (ours.error_code, theirs.error_code) == (None, None)
    assert ours.record is not None
    assert theirs.record is not None
    assert theirs.record.team_id == "team-b"
    assert theirs.record.runtime_id.startswith("team-b:")
    assert theirs.record.runtime_id != ours.record.runtime_id
    assert theirs.operation_id != ours.operation_id
    ours_again = await world.lifecycle.create.handle(create_request(job_id="k-7"))
    theirs_again = await world.lifecycle.create.handle(
        CreateRequest(spec=SPEC, op_source=OpSource.REST, team_id="team-b", job_id="k-7")
    )
    assert (ours_again.error_code, ours_again.operation_id) == (
        ErrorCode.REPLAY_NO_OP,
        ours.operation_id,
    )
    assert (theirs_again.error_code, theirs_again.operation_id) == (
        ErrorCode.REPLAY_NO_OP,
        theirs.operation_id,
    )
    assert world.driver.started == 2
