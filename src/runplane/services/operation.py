"""The skeleton every lifecycle operation shares:

validate -> lease -> load -> decide (replay / proceed / fail) -> transient CAS ->
driver -> final CAS + operation-log entry (one transaction).

`handle` takes the runtime's lease; `run` assumes the caller holds it (restart and
patch compose under one lease). Every call writes exactly one operation-log entry,
and business outcomes come back as an OperationResult, never as an exception.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import timedelta

from runplane.domain.errors import (
    RETRYABLE,
    CasConflict,
    DriverError,
    DuplicateJobId,
    ErrorCode,
    StoreUnavailable,
)
from runplane.domain.events import LifecycleEvent
from runplane.domain.operations import OperationResult, OpKind, OpSource, Outcome
from runplane.domain.records import (
    OperationEntry,
    RuntimeRecord,
    StatusChange,
    is_valid_runtime_id,
)
from runplane.domain.statuses import TRANSIENT, Status, check_transition
from runplane.ports import Driver
from runplane.services import lease
from runplane.services.attempt import Attempt, OperationFailed, entry_for
from runplane.services.dependencies import Dependencies
from runplane.services.events import EventFactory
from runplane.services.requests import OperationRequest

logger = logging.getLogger(__name__)


class LifecycleOperation(ABC):
    op: OpKind

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self.events = EventFactory(deps)

    # -- entry points ---------------------------------------------------------------

    async def handle(self, request: OperationRequest) -> OperationResult:
        """Take the runtime's lease, run, release."""
        attempt = Attempt(request, self.deps.clock.now())
        problem = self.validate(request)
        if problem:
            return await self._record_failure(attempt, ErrorCode.INVALID_REQUEST, problem)
        token = self.deps.tokens.new_token()
        ttl_ms = self.deps.lease_ttl_ms
        try:
            acquired = await lease.acquire(
                self.deps.leases, request.runtime_id, token, ttl_ms, request.lease_wait_ms
            )
        except StoreUnavailable as exc:
            return await self._record_failure(
                attempt, ErrorCode.SERVICE_UNAVAILABLE, f"lease store: {exc}"
            )
        if not acquired:
            return await self._record_failure(
                attempt, ErrorCode.CONFLICT, "another operation holds this runtime's lease"
            )
        async with lease.kept_alive(self.deps.leases, request.runtime_id, token, ttl_ms):
            return await self._run(attempt)

    async def run(self, request: OperationRequest) -> OperationResult:
        """The operation for a caller that already holds the runtime's lease."""
        attempt = Attempt(request, self.deps.clock.now())
        problem = self.validate(request)
        if problem:
            return await self._record_failure(attempt, ErrorCode.INVALID_REQUEST, problem)
        return await self._run(attempt)

    # -- what each operation supplies ----------------------------------------------

    def validate(self, request: OperationRequest) -> str | None:
        """A readable problem with the request, or None. Subclasses extend it."""
        if not is_valid_runtime_id(request.runtime_id):
            return "runtime_id must be 1-128 characters of [A-Za-z0-9._:-]"
        if not isinstance(request.op_source, OpSource):
            return f"unknown op_source {request.op_source!r}"
        return None

    async def load(self, attempt: Attempt) -> RuntimeRecord:
        """The record to operate on; not_found if absent or outside the caller's team."""
        record = await self.deps.runtimes.get(attempt.request.runtime_id)
        scope = attempt.request.team_scope
        if record is None or (scope is not None and record.team_id != scope):
            raise OperationFailed(ErrorCode.NOT_FOUND, "no such runtime")
        return record

    @abstractmethod
    async def execute(self, attempt: Attempt) -> OperationResult:
        """Decide and act on `attempt.record`; end with `self.finish(...)`, a replay
        (`self.replay(...)`) or by raising OperationFailed."""

    # -- building blocks for execute() ---------------------------------------------

    def driver_for(self, record: RuntimeRecord) -> Driver:
        driver = self.deps.drivers.get(record.driver)
        if driver is None:
            raise OperationFailed(
                ErrorCode.SERVICE_UNAVAILABLE, f"driver {record.driver!r} is not configured"
            )
        return driver

    def change(self, attempt: Attempt, to: Status, **fields: object) -> StatusChange:
        """A CAS from the attempt's current record to `to`, through the transition gate."""
        record = attempt.current
        verdict = check_transition(record.status, to)
        if not verdict.accepted:
            raise OperationFailed(ErrorCode.INVALID_STATE, verdict.reason)
        now = self.deps.clock.now()
        deadline = now + timedelta(seconds=self.time_bound_s()) if to in TRANSIENT else None
        return StatusChange(
            runtime_id=record.runtime_id,
            expected_status=record.status,
            expected_version=record.version,
            status=to,
            at=now,
            status_deadline=deadline,
            **fields,  # type: ignore[arg-type]
        )

    async def enter(self, attempt: Attempt, to: Status, **fields: object) -> None:
        """Move into a transient status (no log entry yet: the final CAS writes it)."""
        change = self.change(attempt, to, **fields)
        moved = self.events.state_changed(attempt.current, change, attempt.request.actor)
        try:
            attempt.record = await self.deps.runtimes.compare_and_swap(change, events=[moved])
        except CasConflict as exc:
            raise OperationFailed(ErrorCode.CONFLICT, str(exc)) from exc

    def fail_into(
        self, attempt: Attempt, to: Status, code: ErrorCode, message: str, **fields: object
    ) -> OperationFailed:
        """A failure that also moves the record (e.g. starting -> error)."""
        return OperationFailed(code, message, self.change(attempt, to, **fields))

    def driver_failure(self, attempt: Attempt, to: Status, exc: DriverError) -> OperationFailed:
        return self.fail_into(attempt, to, ErrorCode.SERVICE_UNAVAILABLE, f"driver: {exc}")

    async def finish(self, attempt: Attempt, to: Status, **fields: object) -> OperationResult:
        """The final CAS and its success entry, in one transaction."""
        change = self.change(attempt, to, **fields)
        entry = self._entry(attempt, Outcome.SUCCESS, status_to=to)
        events = self._events(attempt, Outcome.SUCCESS, change)
        try:
            record = await self.deps.runtimes.compare_and_swap(change, entry=entry, events=events)
        except CasConflict as exc:
            raise OperationFailed(ErrorCode.CONFLICT, str(exc)) from exc
        except DuplicateJobId:
            return await self._replay_of_job(attempt)
        self._log_done(attempt, entry)
        return OperationResult(Outcome.SUCCESS, record, operation_id=entry.operation_id)

    async def replay(self, attempt: Attempt) -> OperationResult:
        """The wanted state already holds: success, `replay_no_op`, no effect."""
        entry = self._entry(
            attempt, Outcome.SUCCESS, code=ErrorCode.REPLAY_NO_OP, status_to=attempt.status_from
        )
        try:
            await self.deps.operations.append(entry)
        except DuplicateJobId:
            return await self._replay_of_job(attempt)
        self._log_done(attempt, entry)
        return OperationResult(
            Outcome.SUCCESS, attempt.record, ErrorCode.REPLAY_NO_OP, "", entry.operation_id
        )

    def time_bound_s(self) -> float:
        """How long this operation's transient status may last before it is stuck."""
        return self.deps.timeouts.stop_s

    # -- internals ------------------------------------------------------------------

    async def _run(self, attempt: Attempt) -> OperationResult:
        try:
            earlier = await self._earlier_result(attempt)
            if earlier is not None:
                return earlier
            attempt.record = await self.load(attempt)
            attempt.status_from = attempt.record.status
            return await self.execute(attempt)
        except OperationFailed as failed:
            return await self._record_failure(attempt, failed.code, failed.message, failed.change)
        except StoreUnavailable as exc:
            return await self._record_failure(attempt, ErrorCode.SERVICE_UNAVAILABLE, str(exc))
        except Exception as exc:
            logger.exception("operation crashed", extra=self._log_fields(attempt))
            return await self._record_failure(
                attempt, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"
            )

    async def _earlier_result(self, attempt: Attempt) -> OperationResult | None:
        job_id = attempt.request.job_id
        if not job_id:
            return None
        first = await self.deps.operations.find_by_job_id(job_id)
        if first is None:
            return None
        return await self._replay_of_entry(attempt, first)

    async def _replay_of_job(self, attempt: Attempt) -> OperationResult:
        """A concurrent call claimed our job_id first: answer with its result."""
        job_id = attempt.request.job_id
        first = await self.deps.operations.find_by_job_id(job_id) if job_id else None
        if first is None:
            raise OperationFailed(ErrorCode.CONFLICT, "job_id claimed concurrently")
        return await self._replay_of_entry(attempt, first)

    async def _replay_of_entry(self, attempt: Attempt, first: OperationEntry) -> OperationResult:
        """The stored result of a finished job, and one log entry saying it was replayed."""
        record = await self.deps.runtimes.get(first.runtime_id)
        entry = self._entry(
            attempt,
            first.outcome,
            code=ErrorCode.REPLAY_NO_OP if first.outcome is Outcome.SUCCESS else first.error_code,
            message=first.error_message,
            claim_job=False,
            replay_of=first.operation_id,
        )
        await self.deps.operations.append(entry)
        self._log_done(attempt, entry)
        code = ErrorCode.REPLAY_NO_OP if first.outcome is Outcome.SUCCESS else first.error_code
        return OperationResult(first.outcome, record, code, first.error_message, first.operation_id)

    async def _record_failure(
        self,
        attempt: Attempt,
        code: ErrorCode,
        message: str,
        change: StatusChange | None = None,
    ) -> OperationResult:
        """Write the failure's one log entry (with its status change, if any)."""
        claim = code not in RETRYABLE
        entry = self._entry(
            attempt,
            Outcome.FAILURE,
            code=code,
            message=message,
            claim_job=claim,
            status_to=change.status if change else attempt.status_from,
        )
        record = attempt.record
        error = (str(code), message)
        try:
            if change is not None:
                events = self._events(attempt, Outcome.FAILURE, change, error)
                record = await self.deps.runtimes.compare_and_swap(
                    change, entry=entry, events=events
                )
            else:
                events = self._events(attempt, Outcome.FAILURE, None, error)
                await self.deps.operations.append(entry, events=events)
        except DuplicateJobId:
            return await self._replay_of_job(attempt)
        except CasConflict:
            events = self._events(attempt, Outcome.FAILURE, None, error)
            await self.deps.operations.append(entry, events=events)
        except Exception:
            # Best effort: the outcome stands even if the log cannot be written.
            logger.exception("operation log write failed", extra=self._log_fields(attempt))
        self._log_done(attempt, entry)
        return OperationResult(Outcome.FAILURE, record, code, message, entry.operation_id)

    def _events(
        self,
        attempt: Attempt,
        outcome: Outcome,
        change: StatusChange | None,
        error: tuple[str, str] | None = None,
    ) -> list[LifecycleEvent]:
        return self.events.for_outcome(
            str(self.op),
            attempt.record,
            status_from=str(attempt.status_from) if attempt.status_from else None,
            actor=attempt.request.actor,
            reason=attempt.request.reason,
            outcome=str(outcome),
            change=change,
            error=error,
        )

    def _entry(
        self,
        attempt: Attempt,
        outcome: Outcome,
        *,
        code: ErrorCode | None = None,
        message: str = "",
        claim_job: bool = True,
        status_to: Status | None = None,
        replay_of: str | None = None,
    ) -> OperationEntry:
        return entry_for(
            attempt,
            self.op,
            outcome,
            operation_id=self.deps.tokens.new_token(),
            finished_at=self.deps.clock.now(),
            code=code,
            message=message,
            claim_job=claim_job,
            status_to=status_to,
            replay_of=replay_of,
        )

    def _log_fields(self, attempt: Attempt) -> dict[str, object]:
        return {
            "runtime_id": attempt.request.runtime_id[:128],
            "job_id": attempt.request.job_id,
            "op": str(self.op),
            "op_source": str(attempt.request.op_source),
        }

    def _log_done(self, attempt: Attempt, entry: OperationEntry) -> None:
        fields = self._log_fields(attempt) | {
            "outcome": str(entry.outcome),
            "error_code": str(entry.error_code or ""),
        }
        logger.info("operation finished", extra=fields)
