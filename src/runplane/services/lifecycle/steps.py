"""Driver steps several operations share: bring a container up, bring one down."""

from __future__ import annotations

import logging
from typing import Any

from runplane.domain.driver_specs import stop_timeout
from runplane.domain.errors import ContainerGone, DriverError, ErrorCode, InvalidSpec
from runplane.domain.records import ChangeFields, Keep
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.admission import document_problem
from runplane.services.lifecycle.admit import admit_operation
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.hosting import HostChoice, choose_host
from runplane.services.lifecycle.operation import LifecycleOperation
from runplane.services.lifecycle.requests import OperationRequest

logger = logging.getLogger(__name__)


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

    async def halt(self, attempt: Attempt, place: HostChoice | None = None) -> bool:
        """Stop the record's container (on `place.previous`, if given); True when
        it had already vanished. A driver failure moves the runtime to `error`.
        Waits the spec's stop grace: a remote host's caller must know it."""
        record = attempt.current
        if not record.container_id:
            return False
        driver = self.driver_for(record, place.previous if place else Keep.KEEP)
        try:
            await driver.stop(record.container_id, timeout_s=_grace_of(record.spec))
        except ContainerGone:
            return True
        except DriverError as exc:
            raise self.driver_failure(attempt, Status.ERROR, exc) from exc
        return False

    async def discard(self, attempt: Attempt, place: HostChoice | None = None) -> None:
        """Forget the record's stopped container (its files, its engine object),
        on `place.previous` if given. When the runtime moves, a failure there is
        logged, not fatal: the new container does not depend on it."""
        record = attempt.current
        if not record.container_id:
            return
        if place is not None and not place.previous_reachable:
            return  # its host is down: it stops what moved away when it returns
        driver = self.driver_for(record, place.previous if place else Keep.KEEP)
        try:
            await driver.remove(record.container_id)
        except DriverError as exc:
            if place is not None and place.moves:
                logger.warning(
                    "the last container of a moved runtime was not removed",
                    extra={
                        "runtime_id": record.runtime_id,
                        "host_id": place.previous,
                        "error": str(exc),
                    },
                )
                return
            raise self.driver_failure(attempt, Status.ERROR, exc) from exc

    async def place(self, attempt: Attempt, spec: dict[str, Any]) -> HostChoice:
        return await choose_host(self.deps, attempt, spec)

    async def boot(
        self, attempt: Attempt, spec: dict[str, Any], host_id: str | Keep | None = Keep.KEEP
    ) -> OperationResult:
        """From a transient status already entered: start a container with `spec`
        (on `host_id`, else the record's host) and finish `running` there, or
        move to `error` if the driver fails."""
        record = attempt.current
        try:
            started = await self.driver_for(record, host_id).start(record.runtime_id, spec)
        except DriverError as exc:
            raise self.driver_failure(attempt, Status.ERROR, exc) from exc
        now = self.deps.clock.now()
        fields: ChangeFields = {
            "container_id": started.container_id,
            "engine_endpoint": started.engine_endpoint,
            "started_at": now,
            "stopped_at": None,
            "removed_at": None,
        }
        if spec != record.spec:  # an unchanged spec is not serialised again
            fields["spec"] = spec
        if host_id is not Keep.KEEP:
            fields["host_id"] = host_id
        return await self.finish(attempt, Status.RUNNING, **fields)


def _grace_of(spec: dict[str, Any]) -> float | None:
    try:
        return stop_timeout(spec.get("stop_timeout_s"))
    except InvalidSpec:
        return None  # the driver's own default
