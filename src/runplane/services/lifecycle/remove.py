"""remove: stop if need be, then delete the runtime's container and files.
running -> stopping -> removed; stopped/paused/error/unreachable -> removing -> removed.
The record stays, as `removed`, so its history and a later start keep working."""

from __future__ import annotations

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind
from runplane.domain.records import RuntimeRecord
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.steps import ContainerSteps

REMOVABLE = frozenset({Status.STOPPED, Status.PAUSED, Status.ERROR, Status.ENGINE_UNREACHABLE})


class RemoveRuntime(ContainerSteps):
    op = OpKind.REMOVE

    def already_holds(self, attempt: Attempt, record: RuntimeRecord) -> bool:
        return record.status is Status.REMOVED

    async def execute(self, attempt: Attempt) -> OperationResult:
        record = attempt.current
        if record.status is Status.REMOVED:
            return await self.replay(attempt)
        if record.status is Status.RUNNING:
            await self.enter(attempt, Status.STOPPING)
        elif record.status in REMOVABLE:
            await self.enter(attempt, Status.REMOVING)
        else:
            raise OperationFailed(
                ErrorCode.INVALID_STATE, f"cannot remove a runtime that is {record.status}"
            )
        await self.halt(attempt)
        await self.discard(attempt)
        now = self.deps.clock.now()
        return await self.finish(
            attempt, Status.REMOVED, removed_at=now, container_id=None, engine_endpoint=None
        )
