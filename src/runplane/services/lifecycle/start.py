"""start: bring a runtime up. pending/stopped/error/removed -> starting -> running.

A start may carry a new spec for a known runtime (it replaces the stored one).
Starting a running runtime is a replay, with its own spec or one that the driver
normalises to it (a different spec on a running runtime is `invalid_state`:
restart or patch it); a runtime in a transient status, paused or
unreachable cannot be started (resume, restart or stop it instead).
"""

from __future__ import annotations

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind
from runplane.domain.records import ChangeFields, RuntimeRecord
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
        wanted = attempt.request.spec or None
        if self.already_holds(attempt, record):
            return await self.replay(attempt)
        if record.status not in STARTABLE:
            raise OperationFailed(
                ErrorCode.INVALID_STATE, f"cannot start a runtime that is {record.status}"
            )
        spec = self.checked_spec(attempt, wanted or record.spec)
        place = await self.place(attempt, spec)
        # Only what changes is written: an unchanged spec is not serialised again.
        moved: ChangeFields = {}
        if spec != record.spec:
            moved["spec"] = spec
        if place.host_id != record.host_id:
            moved["host_id"] = place.host_id
        await self.enter(attempt, Status.STARTING, **moved)
        await self.discard(attempt, place)  # a start makes a new container: drop the last one
        return await self.boot(attempt, spec)

    def already_holds(self, attempt: Attempt, record: RuntimeRecord) -> bool:
        """Running, on the spec the request names (if any). The stored spec is the
        driver's normalised form, so the request's is normalised first."""
        if record.status is not Status.RUNNING:
            return False
        wanted = attempt.request.spec or None
        return wanted is None or self.checked_spec(attempt, wanted) == record.spec
