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
