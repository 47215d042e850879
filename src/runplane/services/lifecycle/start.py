"""start: bring a runtime up. pending/stopped/error/removed -> starting -> running.

A start may carry a new spec for a known runtime (it replaces the stored one).
Starting a running runtime is a replay; a runtime in a transient status, paused or
unreachable cannot be started (resume, restart or stop it instead).
"""

from __future__ import annotations

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.steps import ContainerSteps

STARTABLE = frozenset({Status.PENDING, Status.STOPPED, Status.ERROR, Status.REMOVED})


class StartRuntime(ContainerSteps):
    op = OpKind.START

    def time_bound_s(self) -> float:
        return self.deps.timeouts.start_s

    async def execute(self, attempt: Attempt) -> OperationResult:
        record = attempt.current
        wants_new_spec = attempt.request.spec is not None and attempt.request.spec != record.spec
        if record.status is Status.RUNNING and not wants_new_spec:
            return await self.replay(attempt)
        if record.status not in STARTABLE:
            raise OperationFailed(
                ErrorCode.INVALID_STATE, f"cannot start a runtime that is {record.status}"
            )
        spec = self.checked_spec(attempt, attempt.request.spec or record.spec)
        await self.enter(attempt, Status.STARTING, spec=spec)
        await self.discard(attempt)  # a start makes a new container: drop the last one
        return await self.boot(attempt, spec)
