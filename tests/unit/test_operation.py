"""The skeleton's transition gate: an operation that asks for a move the table
refuses answers invalid_state, with the table's reason, and moves nothing."""

from __future__ import annotations

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.attempt import Attempt
from runplane.services.lifecycle.operation import LifecycleOperation
from runplane.services.lifecycle.requests import OperationRequest
from tests.support.world import World


class PauseAtOnce(LifecycleOperation):
    """A pause that skips `pausing`: running -> paused, which the table refuses."""

    op = OpKind.PAUSE

    async def execute(self, attempt: Attempt) -> OperationResult:
        return await self.finish(attempt, Status.PAUSED)


class EnterStarting(LifecycleOperation):
    """running -> starting, which the table refuses."""

    op = OpKind.START

    async def execute(self, attempt: Attempt) -> OperationResult:
        await self.enter(attempt, Status.STARTING)
        return await self.finish(attempt, Status.RUNNING)


async def test_a_refused_final_move_is_invalid_state_and_writes_no_change(world: World) -> None:
    record = await world.create()
    operation = PauseAtOnce(world.deps)
    result = await operation.handle(OperationRequest("rt-1", OpSource.REST, job_id="job-1"))
    assert result.outcome is Outcome.FAILURE
    assert result.error_code is ErrorCode.INVALID_STATE
    assert result.error_message.startswith("running may move to")
    assert "not to paused" in result.error_message
    assert await world.record() == record
    last = (await world.entries())[-1]
    assert (last.op, last.error_code, last.status_to) == (
        OpKind.PAUSE,
        ErrorCode.INVALID_STATE,
        Status.RUNNING,
    )


async def test_a_refused_transient_move_is_invalid_state(world: World) -> None:
    record = await world.create()
    result = await EnterStarting(world.deps).handle(OperationRequest("rt-1", OpSource.REST))
    assert result.error_code is ErrorCode.INVALID_STATE
    assert "not to starting" in result.error_message
    assert await world.record() == record


async def test_an_admin_job_whose_lease_is_taken_logs_its_refusal_in_the_runtimes_team(
    world: World,
) -> None:
    """An admin's (or the system's) job is not read before the lease; when the
    lease is refused its entry is still the runtime's team's."""
    await world.create(team_id="team-b")
    assert await world.leases.try_acquire("rt-1", "someone-else", 60_000)
    result = await world.do(OpKind.STOP, op_source=OpSource.STREAM, job_id="job-9")
    assert result.error_code is ErrorCode.CONFLICT
    last = (await world.entries())[-1]
    assert (last.error_code, last.team_id, last.job_id) == (ErrorCode.CONFLICT, "team-b", None)
    assert last.details == {"job_id": "job-9"}


async def test_an_admin_job_is_replayed_from_the_runtimes_team(world: World) -> None:
    """The team its job_id is looked up in comes from the record loaded under
    the lease: a second delivery of the job replays the first's result."""
    await world.create(team_id="team-b")
    first = await world.do(OpKind.STOP, op_source=OpSource.STREAM, job_id="job-7")
    again = await world.do(OpKind.STOP, op_source=OpSource.STREAM, job_id="job-7")
    assert (first.outcome, first.error_code) == (Outcome.SUCCESS, None)
    assert (again.outcome, again.error_code) == (Outcome.SUCCESS, ErrorCode.REPLAY_NO_OP)
    assert again.operation_id == first.operation_id
    entries = await world.entries()
    assert [(e.team_id, e.job_id) for e in entries[-2:]] == [("team-b", "job-7"), ("team-b", None)]
    assert entries[-1].details["replay_of"] == first.operation_id
