"""pause and resume: freeze a running runtime and thaw it again.
running -> pausing -> paused; paused -> resuming -> running.
A driver failure puts the runtime back where it was, with the failure reported."""

from __future__ import annotations

from runplane.domain.errors import DriverError, ErrorCode
from runplane.domain.operations import OpKind
from runplane.domain.records import RuntimeRecord
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.steps import ContainerSteps


class PauseRuntime(ContainerSteps):
    op = OpKind.PAUSE

    def already_holds(self, attempt: Attempt, record: RuntimeRecord) -> bool:
        return record.status is Status.PAUSED

    def time_bound_s(self) -> float:
        return self.deps.timeouts.pause_s

    async def execute(self, attempt: Attempt) -> OperationResult:
        record = attempt.current
        if record.status is Status.PAUSED:
            return await self.replay(attempt)
        if record.status is not Status.RUNNING or not record.container_id:
            raise OperationFailed(
                ErrorCode.INVALID_STATE, f"cannot pause a runtime that is {record.status}"
            )
        await self.enter(attempt, Status.PAUSING)
        try:
            await self.driver_for(record).pause(record.container_id)
        except DriverError as exc:
            raise self.driver_failure(attempt, Status.RUNNING, exc) from exc
        return await self.finish(attempt, Status.PAUSED)
