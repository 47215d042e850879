"""Driver steps several operations share: bring a container up, bring one down."""

from __future__ import annotations

from typing import Any

from runplane.domain.errors import ContainerGone, DriverError, ErrorCode, InvalidSpec
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.admission import document_problem
from runplane.services.lifecycle.admit import admit_operation
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.operation import LifecycleOperation
from runplane.services.lifecycle.requests import OperationRequest


class ContainerSteps(LifecycleOperation):
    """LifecycleOperation plus the shared driver steps."""

    def validate(self, request: OperationRequest) -> str | None:
        problem = super().validate(request)
        if problem is None and request.spec is not None:
            problem = document_problem(request.spec)
        return problem

    async def admit(self, attempt: Attempt) -> None:
        """The team's policy for the spec the call brings (normalised), and its quotas."""
        wanted = attempt.request.spec
        spec = self.checked_spec(attempt, wanted) if isinstance(wanted, dict) and wanted else None
        await admit_operation(self.deps, attempt, self.op, spec)

    def checked_spec(self, attempt: Attempt, spec: dict[str, Any]) -> dict[str, Any]:
        """The driver's normalised spec, or invalid_request."""
        try:
            return self.driver_for(attempt.current).validate_spec(spec)
        except InvalidSpec as exc:
            raise OperationFailed(ErrorCode.INVALID_REQUEST, exc.message) from exc

    async def halt(self, attempt: Attempt) -> bool:
        """Stop the record's container; True when it had already vanished.
        A driver failure moves the runtime to `error`."""
        record = attempt.current
        if not record.container_id:
            return False
        try:
            await self.driver_for(record).stop(record.container_id)
        except ContainerGone:
            return True
        except DriverError as exc:
            raise self.driver_failure(attempt, Status.ERROR, exc) from exc
        return False

    async def discard(self, attempt: Attempt) -> None:
        """Forget the record's stopped container (its files, its engine object)."""
        record = attempt.current
        if not record.container_id:
            return
        try:
            await self.driver_for(record).remove(record.container_id)
        except DriverError as exc:
            raise self.driver_failure(attempt, Status.ERROR, exc) from exc

    async def boot(self, attempt: Attempt, spec: dict[str, Any]) -> OperationResult:
        """From a transient status already entered: start a container with `spec`
        and finish `running`, or move to `error` if the driver fails."""
        record = attempt.current
        try:
            started = await self.driver_for(record).start(record.runtime_id, spec)
        except DriverError as exc:
            raise self.driver_failure(attempt, Status.ERROR, exc) from exc
        now = self.deps.clock.now()
        return await self.finish(
            attempt,
            Status.RUNNING,
            spec=spec,
            container_id=started.container_id,
            engine_endpoint=started.engine_endpoint,
            started_at=now,
            stopped_at=None,
            removed_at=None,
        )
