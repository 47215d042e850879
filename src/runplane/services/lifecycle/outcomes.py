"""How a call of an operation ends on the record: its one operation-log entry
and the events that go with it, for a failure, a replay (the wanted state
already holds) or the replay of a job_id that already has a result."""

from __future__ import annotations

import logging

from runplane.domain.errors import RETRYABLE, CasConflict, DuplicateJobId, ErrorCode
from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.domain.operations import OpKind, Outcome
from runplane.domain.records import OperationEntry, StatusChange
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.attempt import Attempt, OperationFailed, entry_for
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.event_factory import EventFactory

logger = logging.getLogger(__name__)


class Outcomes:
    """The log entries and events of one operation kind (`op`)."""

    def __init__(self, deps: Dependencies, op: OpKind) -> None:
        self.deps = deps
        self.op = op
        self.events = EventFactory(deps)

    async def replay(self, attempt: Attempt) -> OperationResult:
        """The wanted state already holds: success, `replay_no_op`, no effect."""
        entry = self.entry(
            attempt, Outcome.SUCCESS, code=ErrorCode.REPLAY_NO_OP, status_to=attempt.status_from
        )
        try:
            await self.deps.operations.append(entry)
        except DuplicateJobId:
            return await self.replay_of_job(attempt)
        self.log_done(attempt, entry)
        return OperationResult(
            Outcome.SUCCESS, attempt.record, ErrorCode.REPLAY_NO_OP, "", entry.operation_id
        )

    async def earlier_result(self, attempt: Attempt) -> OperationResult | None:
        """The stored result when the attempt's job_id already has one, else None."""
        job_id = attempt.request.job_id
        if not job_id:
            return None
        first = await self.deps.operations.find_by_job_id(job_id)
        if first is None:
            return None
        return await self._replay_of_entry(attempt, first)

    async def replay_of_job(self, attempt: Attempt) -> OperationResult:
        """A concurrent call claimed our job_id first: answer with its result."""
        job_id = attempt.request.job_id
        first = await self.deps.operations.find_by_job_id(job_id) if job_id else None
        if first is None:
            raise OperationFailed(ErrorCode.CONFLICT, "job_id claimed concurrently")
        return await self._replay_of_entry(attempt, first)

    async def _replay_of_entry(self, attempt: Attempt, first: OperationEntry) -> OperationResult:
        """The stored result of a finished job, and one log entry saying it was replayed."""
        record = await self.deps.runtimes.get(first.runtime_id)
        entry = self.entry(
            attempt,
            first.outcome,
            code=ErrorCode.REPLAY_NO_OP if first.outcome is Outcome.SUCCESS else first.error_code,
            message=first.error_message,
            claim_job=False,
            replay_of=first.operation_id,
        )
        await self.deps.operations.append(entry)
        self.log_done(attempt, entry)
        code = ErrorCode.REPLAY_NO_OP if first.outcome is Outcome.SUCCESS else first.error_code
        return OperationResult(first.outcome, record, code, first.error_message, first.operation_id)

    async def failure(
        self,
        attempt: Attempt,
        code: ErrorCode,
        message: str,
        change: StatusChange | None = None,
    ) -> OperationResult:
        """Write the failure's one log entry (with its status change, if any)."""
        claim = code not in RETRYABLE
        entry = self.entry(
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
                events = self.events_of(attempt, Outcome.FAILURE, change, error)
                record = await self.deps.runtimes.compare_and_swap(
                    change, entry=entry, events=events
                )
            else:
                events = self.events_of(attempt, Outcome.FAILURE, None, error)
                await self.deps.operations.append(entry, events=events)
        except DuplicateJobId:
            return await self.replay_of_job(attempt)
        except CasConflict:
            events = self.events_of(attempt, Outcome.FAILURE, None, error)
            await self.deps.operations.append(entry, events=events)
        except Exception:
            # Best effort: the outcome stands even if the log cannot be written.
            logger.exception("operation log write failed", extra=self.log_fields(attempt))
        self.log_done(attempt, entry)
        return OperationResult(Outcome.FAILURE, record, code, message, entry.operation_id)

    def events_of(
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

    def entry(
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

    def log_fields(self, attempt: Attempt) -> dict[str, object]:
        return {
            "runtime_id": attempt.request.runtime_id[:128],
            "job_id": attempt.request.job_id,
            "op": str(self.op),
            "op_source": str(attempt.request.op_source),
        }

    def log_done(self, attempt: Attempt, entry: OperationEntry) -> None:
        fields = self.log_fields(attempt) | {
            "outcome": str(entry.outcome),
            "error_code": str(entry.error_code or ""),
        }
        logger.info("operation finished", extra=fields)
