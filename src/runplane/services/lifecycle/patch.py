"""patch: replace a running runtime's spec and restart it on the new one.
running -> patching -> running. The same spec again is a replay.

A runtime that is not running is given a new spec by `start` (which accepts one);
patch refuses it with invalid_state so that a patch never silently starts anything.
"""

from __future__ import annotations

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind
from runplane.domain.records import RuntimeRecord
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

    def already_holds(self, attempt: Attempt, record: RuntimeRecord) -> bool:
        """Running on the (normalised) spec the patch names."""
        assert attempt.request.spec is not None
        spec = self.checked_spec(attempt, attempt.request.spec)
        return record.status is Status.RUNNING and spec == record.spec

    async def execute(self, attempt: Attempt) -> OperationResult:
        record = attempt.current
        assert attempt.request.spec is not None
        spec = self.checked_spec(attempt, attempt.request.spec)
        if self.already_holds(attempt, record):
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
