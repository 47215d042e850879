"""create: register a runtime (status `pending`), optionally starting it at once.

A create with a job_id (the REST Idempotency-Key) is idempotent: a repeat answers
the first call's result with `replay_no_op` and creates nothing. The first call's
start claims the job_id in the operation log, and the repeat finds it there. A
create without a runtime_id derives the id from the team and the job_id, so a
repeat whose first call has not finished (or did not start the runtime) names the
same record; finding it with the same team, driver and spec, the repeat carries
on from where the first left off (its start replays, waits for or resumes it).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

from runplane.domain.documents import is_valid_team_id
from runplane.domain.errors import ErrorCode, InvalidSpec, RuntimeAlreadyExists
from runplane.domain.operations import OpSource, Outcome
from runplane.domain.records import RUNTIME_ID_RULE, RuntimeRecord, is_valid_runtime_id
from runplane.domain.results import OperationResult
from runplane.domain.runtime_settings import RuntimeSettings, SettingsRefused, record_fields
from runplane.domain.statuses import Status
from runplane.services.admission import document_problem
from runplane.services.lifecycle.admit import admit_create
from runplane.services.lifecycle.attempt import OperationFailed
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.event_factory import EventFactory
from runplane.services.lifecycle.hosting import place_new
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.start import StartRuntime

DEFAULT_TEAM = "default"
TEAM_ID_RULE = "1-64 characters of A-Z, a-z, 0-9, _ and -"


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
    restricted: bool = False
    """A team key: its spec must pass the team policy (services/admission.py)."""
    settings: RuntimeSettings = field(default_factory=RuntimeSettings)
    """Labels, timeout and idle rule (domain/runtime_settings.py)."""


class CreateRuntime:
    def __init__(self, deps: Dependencies, starter: StartRuntime, default_driver: str) -> None:
        if default_driver not in deps.drivers:
            raise ValueError(f"default driver {default_driver!r} is not configured")
        self.deps = deps
        self.starter = starter
        self.default_driver = default_driver

    async def handle(self, request: CreateRequest) -> OperationResult:
        if request.job_id:
            earlier = await self._earlier_result(request, request.job_id)
            if earlier is not None:
                return earlier
        record_or_failure = self._new_record(request)
        if isinstance(record_or_failure, OperationResult):
            return record_or_failure
        refused = await admit_create(self.deps, record_or_failure, request)
        if refused is not None:
            return refused
        try:
            host_id = await place_new(self.deps, record_or_failure.driver, record_or_failure.spec)
        except OperationFailed as failed:
            if request.start:
                return OperationResult.failure(failed.code, failed.message)
            host_id = None  # placed when it is started
        record = dataclasses.replace(record_or_failure, host_id=host_id)
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
            return await self._repeat(request, record, exc)
        if not request.start:
            return OperationResult.success(record)
        return await self._start(request, record.runtime_id)

    async def _earlier_result(self, request: CreateRequest, job_id: str) -> OperationResult | None:
        """The first result of a job_id the operation log already holds in the
        create's team, else None. Another team's use of the same job_id is not
        seen: job ids are unique per team."""
        first = await self.deps.operations.find_by_job_id(_team_of(request), job_id)
        if first is None:
            return None
        return await self._start(request, first.runtime_id)  # replays the first result

    async def _repeat(
        self, request: CreateRequest, record: RuntimeRecord, exc: RuntimeAlreadyExists
    ) -> OperationResult:
        """The id is taken: `conflict`, unless this is the same create again (a
        job_id, and a record with the same team, driver and spec)."""
        existing = await self.deps.runtimes.get(record.runtime_id)
        if (
            not request.job_id
            or existing is None
            or (existing.team_id, existing.driver, existing.spec)
            != (record.team_id, record.driver, record.spec)
        ):
            return OperationResult.failure(ErrorCode.CONFLICT, str(exc))
        if request.start:
            return await self._start(request, record.runtime_id)
        return OperationResult(Outcome.SUCCESS, existing, ErrorCode.REPLAY_NO_OP)

    async def _start(self, request: CreateRequest, runtime_id: str) -> OperationResult:
        return await self.starter.handle(
            OperationRequest(
                runtime_id=runtime_id,
                op_source=request.op_source,
                job_id=request.job_id,
                actor=request.actor,
                reason="create",
                team_scope=_team_of(request),
                lease_wait_ms=request.lease_wait_ms,
                restricted=request.restricted,
            )
        )

    def _new_record(self, request: CreateRequest) -> RuntimeRecord | OperationResult:
        if request.team_id is not None and not is_valid_team_id(request.team_id):
            return OperationResult.failure(
                ErrorCode.INVALID_REQUEST, f"team_id must be {TEAM_ID_RULE}"
            )
        runtime_id = request.runtime_id or self._new_runtime_id(request)
        if not is_valid_runtime_id(runtime_id):
            return OperationResult.failure(
                ErrorCode.INVALID_REQUEST, f"runtime_id must be {RUNTIME_ID_RULE}"
            )
        driver_name = request.driver or self.default_driver
        driver = self.deps.drivers.get(driver_name)
        if driver is None:
            known = ", ".join(sorted(self.deps.drivers))
            return OperationResult.failure(
                ErrorCode.INVALID_REQUEST, f"unknown driver {driver_name!r}; known: {known}"
            )
        problem = document_problem(request.spec)
        if problem:
            return OperationResult.failure(ErrorCode.INVALID_REQUEST, problem)
        try:
            spec = driver.validate_spec(request.spec)
        except InvalidSpec as exc:
            return OperationResult.failure(ErrorCode.INVALID_REQUEST, exc.message)
        now = self.deps.clock.now()
        try:
            extra = record_fields(request.settings, now)
        except SettingsRefused as exc:
            return OperationResult.failure(exc.code, exc.message)
        return RuntimeRecord(
            runtime_id=runtime_id,
            team_id=_team_of(request),
            status=Status.PENDING,
            version=1,
            driver=driver_name,
            spec=spec,
            created_at=now,
            updated_at=now,
            **extra,
        )

    def _new_runtime_id(self, request: CreateRequest) -> str:
        """A fresh id in the team's namespace, `<team>:rt-<12 hex>`; derived from
        the team and the job_id when there is one, so that a repeat of the create
        names the same runtime. The prefix keeps a team's ids apart from every
        other team's: a job_id chosen to make a hash collide with another team's
        runtime could otherwise learn that it exists."""
        team = _team_of(request)
        if not request.job_id:
            return f"{team}:rt-{self.deps.tokens.new_token()[:12]}"
        key = f"{team}\0{request.job_id}".encode()
        return f"{team}:rt-{hashlib.sha256(key).hexdigest()[:12]}"


def _team_of(request: CreateRequest) -> str:
    return request.team_id or DEFAULT_TEAM
