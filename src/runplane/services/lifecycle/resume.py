"""resume: thaw a paused runtime. paused -> resuming -> running."""

from __future__ import annotations

from runplane.domain.errors import DriverError, ErrorCode
from runplane.domain.operations import OpKind
from runplane.domain.records import RuntimeRecord
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.steps import ContainerSteps


class ResumeRuntime(ContainerSteps):
    op = OpKind.RESUME

    def already_holds(self, attempt: Attempt, record: RuntimeRecord) -> bool:
        return record.status is Status.RUNNING

    def time_bound_s(self) -> float:
        return self.deps.timeouts.pause_s

    async def execute(self, attempt: Attempt) -> OperationResult:
        record = attempt.current
        if record.status is Status.RUNNING:
            return await self.replay(attempt)
        if record.status is not Status.PAUSED or not record.container_id:
            raise OperationFailed(
                ErrorCode.INVALID_STATE, f"cannot resume a runtime that is {record.status}"
            )
        await self.enter(attempt, Status.RESUMING)
        try:
            await self.driver_for(record).resume(record.container_id)
        except DriverError as exc:
            raise self.driver_failure(attempt, Status.PAUSED, exc) from exc
        return await self.finish(attempt, Status.RUNNING)
