"""stop: bring a runtime down. running/paused/unreachable/error -> stopping -> stopped.

A container that vanished before the stop ends the runtime as `removed`, with
success: what the caller wanted (nothing running) holds. The record forgets the
container, and a `container_disappeared` health event reports it (best effort).
Stopping a stopped or removed runtime is a replay. A stop always names a reason
(StopReason). A stop that finds the runtime `stopping` finishes the stop a
crashed call left half done.
"""

from __future__ import annotations

import logging

from runplane.domain.drivers import ContainerState
from runplane.domain.errors import DriverError, ErrorCode
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.operations import STOP_REASONS, OpKind, StopReason
from runplane.domain.records import RuntimeRecord
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.steps import ContainerSteps

logger = logging.getLogger(__name__)

STOPPABLE = frozenset({Status.RUNNING, Status.PAUSED, Status.ENGINE_UNREACHABLE, Status.ERROR})
ALREADY_DOWN = frozenset({Status.STOPPED, Status.REMOVED})


class StopRuntime(ContainerSteps):
    op = OpKind.STOP

    def resumes_itself(self, status: Status) -> bool:
        return status is Status.STOPPING

    def already_holds(self, attempt: Attempt, record: RuntimeRecord) -> bool:
        return record.status in ALREADY_DOWN

    def validate(self, request: OperationRequest) -> str | None:
        problem = super().validate(request)
        if problem is None and request.reason not in STOP_REASONS:
            problem = f"stop needs a reason, one of: {', '.join(StopReason)}"
        return problem

    async def execute(self, attempt: Attempt) -> OperationResult:
        record = attempt.current
        if record.status in ALREADY_DOWN:
            return await self.replay(attempt)
        if record.status is Status.STOPPING:
            return await self.finish_interrupted(attempt)
        if record.status not in STOPPABLE:
            raise OperationFailed(
                ErrorCode.INVALID_STATE, f"cannot stop a runtime that is {record.status}"
            )
        await self.enter(attempt, Status.STOPPING)
        return await self.settle(attempt, vanished=await self.halt(attempt))

    async def finish_interrupted(self, attempt: Attempt) -> OperationResult:
        """A stop that crashed mid-way (runplane killed) left the runtime `stopping`.
        Holding the lease, no other operation is under way: look at the container
        and finish the stop, without stopping anything twice."""
        record = attempt.current
        state = ContainerState.MISSING
        if record.container_id:
            try:
                info = await self.driver_for(record).inspect(record.container_id)
            except DriverError as exc:
                raise self.driver_failure(attempt, Status.ERROR, exc) from exc
            state = info.state
        if state in (ContainerState.RUNNING, ContainerState.PAUSED):
            return await self.settle(attempt, vanished=await self.halt(attempt))
        return await self.settle(attempt, vanished=state is ContainerState.MISSING)

    async def settle(self, attempt: Attempt, *, vanished: bool) -> OperationResult:
        now = self.deps.clock.now()
        if not vanished:
            return await self.finish(attempt, Status.STOPPED, stopped_at=now)
        container_id = attempt.current.container_id
        if container_id:
            await self.forget(attempt, container_id)
        result = await self.finish(
            attempt, Status.REMOVED, container_id=None, stopped_at=now, removed_at=now
        )
        if container_id and result.ok and result.error_code is None:
            await self.report_disappeared(attempt, container_id)
        return result

    async def forget(self, attempt: Attempt, container_id: str) -> None:
        """Drop what is left of a container that is no longer live (an exited
        engine object, a process runtime's folder): the record is about to stop
        pointing to it, and nothing else would. Best effort."""
        try:
            await self.driver_for(attempt.current).remove(container_id)
        except DriverError:
            fields = self.outcomes.log_fields(attempt) | {"container_id": container_id}
            logger.warning("vanished container not removed", extra=fields, exc_info=True)

    async def report_disappeared(self, attempt: Attempt, container_id: str) -> None:
        """Tell the health stream the container is gone, as the engine would have.
        Best effort: the record, already `removed`, is the source of truth."""
        publisher = self.deps.health_events
        if publisher is None:
            return
        event = HealthEvent(
            runtime_id=attempt.current.runtime_id,
            container_id=container_id,
            event_type=HealthEventType.CONTAINER_DISAPPEARED,
            occurred_at=self.deps.clock.now(),
        )
        try:
            await publisher.publish(event)
        except Exception:
            fields = self.outcomes.log_fields(attempt) | {"container_id": container_id}
            logger.exception("container_disappeared health event not published", extra=fields)
