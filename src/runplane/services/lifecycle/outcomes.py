"""How a call of an operation ends on the record: its one operation-log entry
and the events that go with it, for a failure, a replay (the wanted state
already holds) or the replay of a job_id that already has a result."""

from __future__ import annotations

import logging
from dataclasses import replace

from runplane.domain.errors import (
    RETRYABLE,
    CasConflict,
    DuplicateJobId,
    ErrorCode,
    StoreUnavailable,
)
from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.domain.operations import OpKind, Outcome
from runplane.domain.records import OperationEntry, RuntimeRecord, StatusChange
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
        """The stored result when the attempt's job_id already has one in its
        team, else None. Only the call's own team is asked: another team's job_id
        never replays, shows or blocks anything here."""
        job_id = attempt.request.job_id
        if not job_id:
            return None
        first = await self.deps.operations.find_by_job_id(attempt.team_id, job_id)
        if first is None:
            return None
        return await self._replay_of_entry(attempt, first)

    async def replay_of_job(self, attempt: Attempt) -> OperationResult:
        """A concurrent call claimed our job_id first: answer with its result.
        If that result cannot be found (the claim was not committed after all),
        the call ends as a `conflict` failure: retryable, the job_id unclaimed."""
        job_id = attempt.request.job_id
        found = self.deps.operations.find_by_job_id
        first = await found(attempt.team_id, job_id) if job_id else None
        if first is None:
            raise OperationFailed(ErrorCode.CONFLICT, "job_id claimed concurrently")
        return await self._replay_of_entry(attempt, first)

    async def _replay_of_entry(self, attempt: Attempt, first: OperationEntry) -> OperationResult:
        """The stored result of a finished job, and one log entry saying it was replayed."""
        record = await self.deps.runtimes.get(first.runtime_id)
        scope = attempt.request.team_scope
        if record is not None and scope is not None and record.team_id != scope:
            record = None  # the first call was refused: it named a runtime it cannot see
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
        """Write the failure's one log entry (with its status change, if any) and
        answer it. Never raises: whatever the store does, the call has a result.

        A store fault while writing it answers `service_unavailable` whatever the
        failure was: the entry is missing, so the caller (a stream job's next
        delivery, a client's retry) must come again to get its one entry."""
        entry = self.entry(
            attempt,
            Outcome.FAILURE,
            code=code,
            message=message,
            claim_job=code not in RETRYABLE,
            status_to=change.status if change else attempt.status_from,
        )
        try:
            record = await self._write_failure(attempt, entry, change)
        except DuplicateJobId:
            return await self._replay_instead_of(attempt)
        except StoreUnavailable as exc:
            return self._unrecorded(attempt, f"{message} (not recorded: {exc})")
        except Exception:
            # A bug in the write: the outcome stands, its traceback is logged.
            logger.exception("operation log write failed", extra=self.log_fields(attempt))
            record = attempt.record
        self.log_done(attempt, entry)
        return OperationResult(Outcome.FAILURE, record, code, message, entry.operation_id)

    async def _write_failure(
        self, attempt: Attempt, entry: OperationEntry, change: StatusChange | None
    ) -> RuntimeRecord | None:
        """The entry, with `change` when the record is still as the attempt saw
        it; without it (and without a `status_to`) when someone else moved the
        record meanwhile."""
        error = (str(entry.error_code), entry.error_message)
        if change is not None:
            events = self.events_of(attempt, Outcome.FAILURE, change, error)
            try:
                return await self.deps.runtimes.compare_and_swap(change, entry=entry, events=events)
            except CasConflict:
                # Another writer moved the record: this call did not move it.
                entry = replace(entry, status_to=None)
        events = self.events_of(attempt, Outcome.FAILURE, None, error)
        await self.deps.operations.append(entry, events=events)
        return attempt.record

    async def _replay_instead_of(self, attempt: Attempt) -> OperationResult:
        """Our failure lost its job_id to a call that finished first: its result,
        or a `conflict` failure (never a claim) when it cannot be found."""
        try:
            return await self.replay_of_job(attempt)
        except OperationFailed as failed:
            return await self.failure(attempt, failed.code, failed.message)
        except StoreUnavailable as exc:
            return self._unrecorded(attempt, f"replaying job_id: {exc}")
        except Exception as exc:
            logger.exception("operation replay failed", extra=self.log_fields(attempt))
            return self._unrecorded(attempt, f"{type(exc).__name__}: {exc}", ErrorCode.INTERNAL)

    def _unrecorded(
        self, attempt: Attempt, message: str, code: ErrorCode = ErrorCode.SERVICE_UNAVAILABLE
    ) -> OperationResult:
        """A failure whose log entry could not be written: retryable, so the
        caller comes again and that call writes the entry."""
        fields = self.log_fields(attempt) | {"error_code": str(code), "error_message": message}
        logger.warning("operation finished unrecorded", extra=fields)
        return OperationResult(Outcome.FAILURE, attempt.record, code, message)

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
            # Where it ran: a runtime moved by a restart is on its new host here.
            "host_id": attempt.record.host_id if attempt.record is not None else None,
        }
        logger.info("operation finished", extra=fields)
