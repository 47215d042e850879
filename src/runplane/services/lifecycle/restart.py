"""restart: stop and start under one lease. running/unreachable -> restarting -> running.

Restarting a runtime that is down (stopped, error, removed, pending) starts it,
as `docker restart` does. A paused runtime must be resumed or stopped first.
"""

from __future__ import annotations

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.start import STARTABLE
from runplane.services.lifecycle.steps import ContainerSteps

RESTARTABLE = frozenset({Status.RUNNING, Status.ENGINE_UNREACHABLE})


class RestartRuntime(ContainerSteps):
    op = OpKind.RESTART

    def time_bound_s(self) -> float:
        return self.deps.timeouts.for_restart()

    async def execute(self, attempt: Attempt) -> OperationResult:
        record = attempt.current
        spec = self.checked_spec(attempt, record.spec)
        if record.status not in STARTABLE | RESTARTABLE:
            raise OperationFailed(
                ErrorCode.INVALID_STATE, f"cannot restart a runtime that is {record.status}"
            )
        place = await self.place(attempt, spec)
        if record.status in STARTABLE:
            await self.enter(attempt, Status.STARTING, host_id=place.host_id)
            await self.discard(attempt, place)
            return await self.boot(attempt, spec)
        # The move is written first: an interrupted restart is settled where the
        # new container is. The old one is stopped where it ran, if that host answers.
        await self.enter(attempt, Status.RESTARTING, host_id=place.host_id)
        if place.previous_reachable:
            await self.halt(attempt, place)
        await self.discard(attempt, place)
        return await self.boot(attempt, spec)
