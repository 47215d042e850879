"""patch: replace a running runtime's spec and restart it on the new one.
running -> patching -> running. The same spec again is a replay.

A runtime that is not running is given a new spec by `start` (which accepts one);
patch refuses it with invalid_state so that a patch never silently starts anything.
"""

from __future__ import annotations

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.steps import ContainerSteps


class PatchRuntime(ContainerSteps):
    op = OpKind.PATCH

    def time_bound_s(self) -> float:
        return self.deps.timeouts.for_restart()

    def validate(self, request: OperationRequest) -> str | None:
        problem = super().validate(request)
        if problem is None and not isinstance(request.spec, dict):
            problem = "patch needs a spec object"
        return problem

    async def execute(self, attempt: Attempt) -> OperationResult:
        record = attempt.current
        assert attempt.request.spec is not None
        spec = self.checked_spec(attempt, attempt.request.spec)
        if record.status is Status.RUNNING and spec == record.spec:
            return await self.replay(attempt)
        if record.status is not Status.RUNNING:
            raise OperationFailed(
                ErrorCode.INVALID_STATE,
                f"cannot patch a runtime that is {record.status}; start it with the new spec",
            )
        await self.enter(attempt, Status.PATCHING)
        await self.halt(attempt)
        await self.discard(attempt)
        return await self.boot(attempt, spec)
