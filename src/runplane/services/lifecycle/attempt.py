"""One call of an operation in flight, how it ends early, and its log entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind, Outcome
from runplane.domain.records import OperationEntry, RuntimeRecord, StatusChange
from runplane.domain.statuses import Status
from runplane.services.lifecycle.requests import OperationRequest


class OperationFailed(Exception):
    """Internal control flow: ends an attempt with a stable failure. Never escapes
    an operation; `run` turns it into a failure result and its log entry."""

    def __init__(self, code: ErrorCode, message: str, change: StatusChange | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.change = change


class WantedStateHolds(Exception):
    """Internal control flow: a compare-and-swap lost, and the record as it now
    stands is already what the operation wanted (a stop finds it stopped). `run`
    answers with a replay (`replay_no_op`), as if the call had found it so."""


@dataclass(slots=True)
class Attempt:
    """One call in flight: what was asked, when, and the record as last seen."""

    request: OperationRequest
    started_at: datetime
    record: RuntimeRecord | None = None
    status_from: Status | None = None
    team_id: str | None = None
    """The team the call is made for: it scopes the job_id and owns the log
    entry. The caller's (`request.team_scope`: a team key, a stream job naming
    its team), else the team of the runtime named (an admin, the system), once
    known; None for a call of no team (an admin's on a runtime that does not
    exist). Never the runtime's team for a caller that cannot see it."""
    details: dict[str, object] = field(default_factory=dict)
    """Added to the call's log entry (a start that moved hosts: `rescheduled`)."""

    def __post_init__(self) -> None:
        if self.team_id is None:
            self.team_id = self.request.team_scope

    @property
    def current(self) -> RuntimeRecord:
        """The record once loaded; execute() only runs after the load."""
        if self.record is None:
            raise RuntimeError("attempt has no record loaded yet")
        return self.record


def entry_for(
    attempt: Attempt,
    op: OpKind,
    outcome: Outcome,
    *,
    operation_id: str,
    finished_at: datetime,
    code: ErrorCode | None = None,
    message: str = "",
    claim_job: bool = True,
    status_to: Status | None = None,
    replay_of: str | None = None,
) -> OperationEntry:
    """The call's one operation-log entry. A call that does not claim its job id
    (a retryable failure, a replay) keeps it under `details.job_id`."""
    request = attempt.request
    record = attempt.record
    details: dict[str, object] = dict(attempt.details)
    if request.job_id and not claim_job:
        details["job_id"] = request.job_id
    if replay_of:
        details["replay_of"] = replay_of
    return OperationEntry(
        operation_id=operation_id,
        runtime_id=request.runtime_id[:128],
        op=op,
        op_source=request.op_source,
        outcome=outcome,
        started_at=attempt.started_at,
        finished_at=finished_at,
        team_id=attempt.team_id,
        error_code=code,
        error_message=message,
        job_id=request.job_id if claim_job else None,
        source_ref=request.source_ref,
        reason=request.reason,
        status_from=attempt.status_from,
        status_to=status_to,
        container_id=record.container_id if record else None,
        actor=request.actor,
        details=details,
    )
