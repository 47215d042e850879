"""The admission gate (services/admission.py) on the lifecycle's two paths: a
create, before its record is written, and an operation, once its record is
loaded. A refusal ends the call on the ordinary failure path: one
operation-log entry, and nothing else changed."""

from __future__ import annotations

from typing import Any, Protocol

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.policy_rules import RUNNING_STATUSES
from runplane.domain.records import RuntimeRecord
from runplane.domain.results import OperationResult
from runplane.services.admission import Admittance, Refusal
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.outcomes import Outcomes
from runplane.services.lifecycle.requests import OperationRequest

DOORS = frozenset({OpSource.REST, OpSource.STREAM, OpSource.CLI})
"""Where callers come in: their calls count against quotas; runplane's own
(reconciler, health restarts) do not."""


class CreateCall(Protocol):
    """What admission reads of a CreateRequest (create.py)."""

    @property
    def op_source(self) -> OpSource: ...
    @property
    def actor(self) -> str: ...
    @property
    def job_id(self) -> str | None: ...
    @property
    def start(self) -> bool: ...
    @property
    def restricted(self) -> bool: ...
    @property
    def lease_wait_ms(self) -> int: ...


async def admit_create(
    deps: Dependencies, record: RuntimeRecord, create: CreateCall
) -> OperationResult | None:
    """None when the new `record` (spec normalised) may be created (and started);
    else the refusal, logged as the failed start of the create (reason `create`)."""
    if deps.admission is None:
        return None
    ask = Admittance(
        team_id=record.team_id,
        driver=record.driver,
        spec=record.spec,
        restricted=create.restricted,
        adds_record=True,
        starts=create.start,
        counts_quota=create.op_source in DOORS,
    )
    refusal = await deps.admission.check(ask)
    if refusal is None or await _repeat_of_a_create(deps, record, refusal):
        return None
    request = OperationRequest(
        runtime_id=record.runtime_id,
        op_source=create.op_source,
        job_id=create.job_id,
        actor=create.actor,
        reason="create",
        team_scope=record.team_id,
        lease_wait_ms=create.lease_wait_ms,
        restricted=create.restricted,
    )
    attempt = Attempt(request, deps.clock.now(), record=record)
    return await Outcomes(deps, OpKind.START).failure(attempt, refusal.code, refusal.message)


async def admit_operation(
    deps: Dependencies, attempt: Attempt, op: OpKind, spec: dict[str, Any] | None
) -> None:
    """Raise OperationFailed when the loaded runtime may not be started or patched
    (with `spec`, normalised, when the call brings one) by this caller."""
    if deps.admission is None:
        return
    record, request = attempt.current, attempt.request
    if spec is None and request.restricted and op in (OpKind.START, OpKind.RESTART):
        spec = record.spec  # what will run is held to today's policy, not the one it was made under
    ask = Admittance(
        team_id=record.team_id,
        driver=record.driver,
        spec=spec,
        restricted=request.restricted,
        starts=op in (OpKind.START, OpKind.RESTART, OpKind.RESUME)
        and record.status not in RUNNING_STATUSES,
        counts_quota=request.op_source in DOORS,
    )
    refusal = await deps.admission.check(ask)
    if refusal is not None:
        raise OperationFailed(refusal.code, refusal.message)


async def _repeat_of_a_create(deps: Dependencies, record: RuntimeRecord, refusal: Refusal) -> bool:
    """A quota refusal does not apply when the record already exists: the create
    adds nothing (a repeat with the same Idempotency-Key, or a taken id)."""
    if refusal.code is not ErrorCode.QUOTA_EXCEEDED:
        return False
    return await deps.runtimes.get(record.runtime_id) is not None
