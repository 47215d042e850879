"""create: register a runtime (status `pending`), optionally starting it at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runplane.domain.errors import ErrorCode, InvalidSpec, RuntimeAlreadyExists
from runplane.domain.operations import OpSource
from runplane.domain.records import RuntimeRecord, is_valid_runtime_id
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.event_factory import EventFactory
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.start import StartRuntime

DEFAULT_TEAM = "default"


@dataclass(frozen=True, slots=True)
class CreateRequest:
    spec: dict[str, Any]
    op_source: OpSource
    runtime_id: str | None = None
    team_id: str | None = None
    driver: str | None = None
    start: bool = True
    actor: str = ""
    job_id: str | None = None
    lease_wait_ms: int = 0


class CreateRuntime:
    def __init__(self, deps: Dependencies, starter: StartRuntime, default_driver: str) -> None:
        if default_driver not in deps.drivers:
            raise ValueError(f"default driver {default_driver!r} is not configured")
        self.deps = deps
        self.starter = starter
        self.default_driver = default_driver

    async def handle(self, request: CreateRequest) -> OperationResult:
        record_or_failure = self._new_record(request)
        if isinstance(record_or_failure, OperationResult):
            return record_or_failure
        record = record_or_failure
        created = EventFactory(self.deps).outcome_event(
            "runtime.create",
            record,
            outcome="success",
            actor=request.actor,
            reason="",
            status_from=None,
            status_to=str(record.status),
            sequence=record.version,
        )
        try:
            await self.deps.runtimes.create(record, events=[created])
        except RuntimeAlreadyExists as exc:
            return OperationResult.failure(ErrorCode.CONFLICT, str(exc))
        if not request.start:
            return OperationResult.success(record)
        return await self.starter.handle(
            OperationRequest(
                runtime_id=record.runtime_id,
                op_source=request.op_source,
                job_id=request.job_id,
                actor=request.actor,
                reason="create",
                lease_wait_ms=request.lease_wait_ms,
            )
        )

    def _new_record(self, request: CreateRequest) -> RuntimeRecord | OperationResult:
        runtime_id = request.runtime_id or f"rt-{self.deps.tokens.new_token()[:12]}"
        if not is_valid_runtime_id(runtime_id):
            return OperationResult.failure(
                ErrorCode.INVALID_REQUEST, "runtime_id must be 1-128 characters of [A-Za-z0-9._:-]"
            )
        driver_name = request.driver or self.default_driver
        driver = self.deps.drivers.get(driver_name)
        if driver is None:
            known = ", ".join(sorted(self.deps.drivers))
            return OperationResult.failure(
                ErrorCode.INVALID_REQUEST, f"unknown driver {driver_name!r}; known: {known}"
            )
        try:
            spec = driver.validate_spec(request.spec)
        except InvalidSpec as exc:
            return OperationResult.failure(ErrorCode.INVALID_REQUEST, exc.message)
        now = self.deps.clock.now()
        return RuntimeRecord(
            runtime_id=runtime_id,
            team_id=request.team_id or DEFAULT_TEAM,
            status=Status.PENDING,
            version=1,
            driver=driver_name,
            spec=spec,
            created_at=now,
            updated_at=now,
        )
