"""The skeleton every lifecycle operation shares:

validate -> lease -> load -> decide (replay / proceed / fail) -> transient CAS ->
driver -> final CAS + operation-log entry (one transaction). A CAS that loses
reads the record again: a replay if it already is what the call wanted
(`already_holds`), `conflict` otherwise.

`handle` takes the runtime's lease; `run` assumes the caller holds it (restart and
patch compose under one lease). Every call writes exactly one operation-log entry,
and business outcomes come back as an OperationResult, never as an exception.
The entries and events a call ends with (failure, replay) are written by
`Outcomes` (outcomes.py); the status moves (`change`, `enter`, `finish`) are here.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import timedelta
from typing import Unpack

from runplane.domain.errors import (
    CasConflict,
    ContainerGone,
    DriverError,
    DuplicateJobId,
    ErrorCode,
    SpecRefused,
    StoreUnavailable,
)
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.records import (
    RUNTIME_ID_RULE,
    ChangeFields,
    Keep,
    RuntimeRecord,
    StatusChange,
    is_valid_runtime_id,
)
from runplane.domain.results import OperationResult
from runplane.domain.statuses import TRANSIENT, InvalidTransition, Status
from runplane.ports.drivers import Driver
from runplane.services import driver_call, lease
from runplane.services.lifecycle.attempt import Attempt, OperationFailed, WantedStateHolds
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.event_factory import EventFactory
from runplane.services.lifecycle.outcomes import Outcomes
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.screen import NO_SUCH_RUNTIME, learn_team, screen, visible
from runplane.services.lifecycle.settler import TransientSettler, is_interrupted

logger = logging.getLogger(__name__)


class LifecycleOperation(ABC):
    op: OpKind

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self.events = EventFactory(deps)
        self.outcomes = Outcomes(deps, self.op)
        self.settler = TransientSettler(deps)

    # -- entry points ---------------------------------------------------------------

    async def handle(self, request: OperationRequest) -> OperationResult:
        """Take the runtime's lease, run, release."""
        attempt = Attempt(request, self.deps.clock.now())
        refused = await self._screen(attempt)
        if refused is not None:
            return refused
        token = self.deps.tokens.new_token()
        ttl_ms = self.deps.lease_ttl_ms
        try:
            acquired = await lease.acquire(
                self.deps.leases, request.runtime_id, token, ttl_ms, request.lease_wait_ms
            )
        except StoreUnavailable as exc:
            await learn_team(self.deps, attempt)
            return await self.outcomes.failure(
                attempt, ErrorCode.SERVICE_UNAVAILABLE, f"lease store: {exc}"
            )
        if not acquired:
            await learn_team(self.deps, attempt)
            return await self.outcomes.failure(
                attempt, ErrorCode.CONFLICT, "another operation holds this runtime's lease"
            )
        async with lease.kept_alive(self.deps.leases, request.runtime_id, token, ttl_ms):
            return await self._run(attempt)

    async def run(self, request: OperationRequest) -> OperationResult:
        """The operation for a caller that already holds the runtime's lease."""
        attempt = Attempt(request, self.deps.clock.now())
        refused = await self._screen(attempt)
        if refused is not None:
            return refused
        return await self._run(attempt)

    # -- what each operation supplies ----------------------------------------------

    def validate(self, request: OperationRequest) -> str | None:
        """A readable problem with the request, or None. Subclasses extend it."""
        if not is_valid_runtime_id(request.runtime_id):
            return f"runtime_id must be {RUNTIME_ID_RULE}"
        if not isinstance(request.op_source, OpSource):
            return f"unknown op_source {request.op_source!r}"
        return None

    async def load(self, attempt: Attempt) -> RuntimeRecord:
        """The record to operate on; not_found if absent or outside the caller's team."""
        found = await self.deps.runtimes.get(attempt.request.runtime_id)
        return self.visible_or_not_found(attempt, found)

    def visible_or_not_found(self, attempt: Attempt, found: RuntimeRecord | None) -> RuntimeRecord:
        if found is None or not visible(attempt, found):
            raise OperationFailed(ErrorCode.NOT_FOUND, NO_SUCH_RUNTIME)
        if attempt.team_id is None:
            attempt.team_id = found.team_id
        return found

    async def resumed(self, record: RuntimeRecord) -> RuntimeRecord:
        """`record`, settled first when an interrupted attempt left it in a
        transient status: this call holds the lease, so that attempt's holder is
        gone. The driver says what holds (a start that launched is running), so
        a repeat of the interrupted call answers what happened, and any other
        call proceeds at once instead of waiting for the status deadline."""
        if not is_interrupted(record) or self.resumes_itself(record.status):
            return record
        try:
            settled = await self.settler.settle_held(record, why="found interrupted")
        except DriverError as exc:
            raise OperationFailed(ErrorCode.SERVICE_UNAVAILABLE, f"driver: {exc}") from exc
        if settled is None:
            raise OperationFailed(ErrorCode.CONFLICT, "the runtime changed while being settled")
        return settled

    async def admit(self, attempt: Attempt) -> None:
        """Raise OperationFailed when the caller's team may not do this (its policy,
        its quotas: services/admission.py). Operations that run a spec extend it."""
        return None

    def resumes_itself(self, status: Status) -> bool:
        """Whether execute() finishes an interrupted attempt that left `status`
        itself (a stop finds `stopping`), instead of having it settled first."""
        return False

    def already_holds(self, attempt: Attempt, record: RuntimeRecord) -> bool:
        """Whether `record` is already what this call wants (what execute() would
        answer with a replay). Asked when a compare-and-swap lost the race."""
        return False

    @abstractmethod
    async def execute(self, attempt: Attempt) -> OperationResult:
        """Decide and act on `attempt.record`; end with `self.finish(...)`, a replay
        (`self.replay(...)`) or by raising OperationFailed."""

    # -- building blocks for execute() ---------------------------------------------

    def driver_for(self, record: RuntimeRecord, host_id: str | Keep | None = Keep.KEEP) -> Driver:
        """The driver on the record's host (or `host_id`), called at the record's
        version: a host's agent refuses calls older than one it has applied."""
        host = record.host_id if host_id is Keep.KEEP else host_id
        driver = self.deps.driver_on(host, record.driver)
        if driver is None:
            problem = f"driver {record.driver!r} is not configured on host {host!r}"
            raise OperationFailed(ErrorCode.SERVICE_UNAVAILABLE, problem)
        driver_call.at_version(record.version)
        return driver

    def change(self, attempt: Attempt, to: Status, **fields: Unpack[ChangeFields]) -> StatusChange:
        """A CAS from the attempt's current record to `to`. A move the transition
        table refuses (StatusChange raises) ends the call with `invalid_state`."""
        record = attempt.current
        now = self.deps.clock.now()
        deadline = now + timedelta(seconds=self.time_bound_s()) if to in TRANSIENT else None
        try:
            return StatusChange(
                runtime_id=record.runtime_id,
                expected_status=record.status,
                expected_version=record.version,
                status=to,
                at=now,
                status_deadline=deadline,
                **fields,
            )
        except InvalidTransition as exc:
            raise OperationFailed(ErrorCode.INVALID_STATE, exc.reason) from exc

    async def enter(self, attempt: Attempt, to: Status, **fields: Unpack[ChangeFields]) -> None:
        """Move into a transient status (no log entry yet: the final CAS writes it)."""
        change = self.change(attempt, to, **fields)
        moved = self.events.state_changed(attempt.current, change, attempt.request.actor)
        try:
            attempt.record = await self.deps.runtimes.compare_and_swap(change, events=[moved])
        except CasConflict as exc:
            raise await self.lost_race(attempt, exc) from exc

    def fail_into(
        self,
        attempt: Attempt,
        to: Status,
        code: ErrorCode,
        message: str,
        **fields: Unpack[ChangeFields],
    ) -> OperationFailed:
        """A failure that also moves the record (e.g. starting -> error)."""
        return OperationFailed(code, message, self.change(attempt, to, **fields))

    def driver_failure(self, attempt: Attempt, to: Status, exc: DriverError) -> OperationFailed:
        """A refused spec is the caller's to fix (invalid_request); a container
        that is gone is the runtime's state, which a retry cannot change
        (invalid_state: stop, restart or remove it); anything else, a driver
        that may answer later (service_unavailable)."""
        if isinstance(exc, SpecRefused):
            return self.fail_into(attempt, to, ErrorCode.INVALID_REQUEST, f"driver: {exc}")
        if isinstance(exc, ContainerGone):
            message = f"driver: {exc}; stop, restart or remove the runtime"
            return self.fail_into(attempt, to, ErrorCode.INVALID_STATE, message)
        return self.fail_into(attempt, to, ErrorCode.SERVICE_UNAVAILABLE, f"driver: {exc}")

    async def finish(
        self, attempt: Attempt, to: Status, **fields: Unpack[ChangeFields]
    ) -> OperationResult:
        """The final CAS and its success entry, in one transaction."""
        change = self.change(attempt, to, **fields)
        entry = self.outcomes.entry(attempt, Outcome.SUCCESS, status_to=to)
        events = self.outcomes.events_of(attempt, Outcome.SUCCESS, change)
        try:
            record = await self.deps.runtimes.compare_and_swap(change, entry=entry, events=events)
        except CasConflict as exc:
            raise await self.lost_race(attempt, exc) from exc
        except DuplicateJobId:
            return await self.outcomes.replay_of_job(attempt)
        self.outcomes.log_done(attempt, entry)
        return OperationResult(Outcome.SUCCESS, record, operation_id=entry.operation_id)

    async def lost_race(self, attempt: Attempt, exc: CasConflict) -> Exception:
        """How a lost compare-and-swap ends the call: a replay when the record, read
        again, already is what this call wants; `conflict` otherwise."""
        fresh = await self.deps.runtimes.get(attempt.current.runtime_id)
        if fresh is None or not self.already_holds(attempt, fresh):
            return OperationFailed(ErrorCode.CONFLICT, str(exc))
        attempt.record = fresh
        attempt.status_from = fresh.status  # the replay's entry: found it so, changed nothing
        return WantedStateHolds()

    async def replay(self, attempt: Attempt) -> OperationResult:
        """The wanted state already holds: success, `replay_no_op`, no effect."""
        return await self.outcomes.replay(attempt)

    def time_bound_s(self) -> float:
        """How long this operation's transient status may last before it is stuck."""
        return self.deps.timeouts.stop_s

    # -- internals ------------------------------------------------------------------

    async def _screen(self, attempt: Attempt) -> OperationResult | None:
        return await screen(self.validate(attempt.request), self.deps, self.outcomes, attempt)

    async def _run(self, attempt: Attempt) -> OperationResult:
        try:
            return await self._load_and_execute(attempt)
        except OperationFailed as failed:
            return await self.outcomes.failure(attempt, failed.code, failed.message, failed.change)
        except StoreUnavailable as exc:
            return await self.outcomes.failure(attempt, ErrorCode.SERVICE_UNAVAILABLE, str(exc))
        except Exception as exc:
            logger.exception("operation crashed", extra=self.outcomes.log_fields(attempt))
            return await self.outcomes.failure(
                attempt, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"
            )

    async def _load_and_execute(self, attempt: Attempt) -> OperationResult:
        job_id = attempt.request.job_id
        if attempt.team_id is None and job_id:
            # An admin's or the system's job: the record, read under the lease,
            # names the team its job_id is looked up in (read together: one
            # point read; the entry itself only when the job_id is claimed).
            found, claimed = await self.deps.runtimes.get_for_job(
                attempt.request.runtime_id, job_id
            )
            attempt.team_id = found.team_id if found else None
            earlier = await self.outcomes.earlier_result(attempt) if claimed else None
            if earlier is not None:
                return earlier
            record = self.visible_or_not_found(attempt, found)
        else:
            earlier = await self.outcomes.earlier_result(attempt)
            if earlier is not None:
                return earlier
            record = await self.load(attempt)
        attempt.record = await self.resumed(record)
        attempt.status_from = attempt.record.status
        await self.admit(attempt)
        try:
            return await self.execute(attempt)
        except WantedStateHolds:
            return await self.replay(attempt)
