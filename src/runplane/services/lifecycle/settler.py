"""TransientSettler: the I/O half of settling a stuck runtime (see settle.py for
the decisions): under the runtime's lease, look at the driver, finish a stop
or removal if one is due, then one CAS with its operation-log entry and events."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from datetime import datetime
from typing import Any

from runplane.domain.drivers import ContainerInfo
from runplane.domain.errors import CasConflict, ContainerGone, DriverError, ErrorCode
from runplane.domain.hosts import HostStatus
from runplane.domain.operations import OpSource, Outcome
from runplane.domain.records import OperationEntry, RuntimeRecord, StatusChange
from runplane.domain.settlements import (
    ADOPTING,
    OPERATION_OF,
    Finish,
    Seen,
    Settlement,
    seen_of,
    settlement_for,
)
from runplane.domain.statuses import TRANSIENT, Status
from runplane.ports.drivers import Driver
from runplane.services import driver_call, lease
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.event_factory import EventFactory

logger = logging.getLogger(__name__)

RECONCILER_ACTOR = "system:reconciler"


def is_interrupted(record: RuntimeRecord | None) -> bool:
    """In a transient status, seen by a holder of its lease: the operation that
    entered it holds the lease until it leaves it, so its holder is gone."""
    return record is not None and record.status in TRANSIENT


class TransientSettler:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self.events = EventFactory(deps)

    async def settle(self, runtime_id: str) -> RuntimeRecord | None:
        """Settle the runtime if it is in a transient status and no operation
        holds its lease (the lease's expiry, not the status deadline, says its
        operation is gone); the settled record, or None when nothing was written."""
        deps = self.deps
        token = deps.tokens.new_token()
        if not await lease.acquire(deps.leases, runtime_id, token, deps.lease_ttl_ms, wait_ms=0):
            return None
        async with lease.kept_alive(deps.leases, runtime_id, token, deps.lease_ttl_ms):
            record = await deps.runtimes.get(runtime_id)
            if not is_interrupted(record):
                return None
            assert record is not None
            try:
                return await self._settle(record, why="its operation was interrupted")
            except DriverError as exc:
                logger.warning(
                    "stuck runtime not settled: the driver failed",
                    extra={"runtime_id": runtime_id, "error": str(exc)},
                    exc_info=exc,
                )
                return None

    async def settle_held(self, record: RuntimeRecord, *, why: str) -> RuntimeRecord | None:
        """Settle `record`, in a transient status, for a caller that holds its
        lease (an operation that found its runtime so); None when the CAS lost.
        DriverError when the driver cannot say what runs."""
        return await self._settle(record, why=why)

    async def _settle(self, record: RuntimeRecord, *, why: str) -> RuntimeRecord | None:
        driver = self.deps.driver_on(record.host_id, record.driver)
        if driver is None:
            logger.warning(
                "stuck runtime has no driver here", extra={"runtime_id": record.runtime_id}
            )
            return None
        driver_call.at_version(record.version)
        started_at = self.deps.clock.now()
        # On a down host nothing can be looked at or finished: its container counts
        # as gone here, and the host stops it when it returns if the record no
        # longer wants it (services/hosts/loss.py).
        lost = await self._host_down(record)
        info = None if lost else await self._observe(driver, record)
        seen = seen_of(info)
        plan = settlement_for(record.status, seen)
        if not lost:
            await self._finish(driver, record, plan, info)
        change = self._change(record, plan, info)
        entry = self._entry(record, plan, seen, change, started_at, why)
        error = (str(entry.error_code), entry.error_message) if entry.error_code else None
        events = self.events.for_outcome(
            str(entry.op),
            record,
            status_from=str(record.status),
            actor=RECONCILER_ACTOR,
            reason=entry.reason,
            outcome=str(entry.outcome),
            change=change,
            error=error,
        )
        events = [dataclasses.replace(e, metadata={"inferred": "true"}) for e in events]
        try:
            settled = await self.deps.runtimes.compare_and_swap(change, entry=entry, events=events)
        except CasConflict:
            return None
        logger.info(
            "stuck runtime settled",
            extra={
                "runtime_id": record.runtime_id,
                "status_from": str(record.status),
                "status_to": str(plan.to),
                "seen": str(seen),
            },
        )
        return settled

    async def _host_down(self, record: RuntimeRecord) -> bool:
        placement = self.deps.placement
        if placement is None or not record.host_id:
            return False
        return await placement.status_of(record.host_id) is HostStatus.DOWN

    async def _observe(self, driver: Driver, record: RuntimeRecord) -> ContainerInfo | None:
        info = await driver.inspect(record.container_id) if record.container_id else None
        if seen_of(info) is Seen.GONE and record.status in ADOPTING:
            for candidate in await driver.list_containers():
                if (
                    candidate.runtime_id == record.runtime_id
                    and seen_of(candidate) is not Seen.GONE
                ):
                    return candidate
        return info

    async def _finish(
        self,
        driver: Driver,
        record: RuntimeRecord,
        plan: Settlement,
        info: ContainerInfo | None,
    ) -> None:
        if plan.finish is Finish.STOP and info is not None:
            with contextlib.suppress(ContainerGone):
                await driver.stop(info.container_id)
        elif plan.finish is Finish.REMOVE and record.container_id:
            await driver.remove(record.container_id)

    def _change(
        self, record: RuntimeRecord, plan: Settlement, info: ContainerInfo | None
    ) -> StatusChange:
        """The settling CAS. SETTLEMENTS only names moves the table allows (a test
        checks); StatusChange would raise InvalidTransition on any other."""
        now = self.deps.clock.now()
        fields: dict[str, Any] = {}
        if plan.to is Status.RUNNING and info is not None:
            fields.update(container_id=info.container_id, stopped_at=None)
            if info.container_id != record.container_id or record.started_at is None:
                fields["started_at"] = now
        elif plan.to is Status.STOPPED:
            fields["stopped_at"] = now
        elif plan.to is Status.REMOVED:
            fields.update(removed_at=now, stopped_at=record.stopped_at or now)
        return StatusChange(
            runtime_id=record.runtime_id,
            expected_status=record.status,
            expected_version=record.version,
            status=plan.to,
            at=now,
            status_deadline=None,
            **fields,
        )

    def _entry(
        self,
        record: RuntimeRecord,
        plan: Settlement,
        seen: Seen,
        change: StatusChange,
        started_at: datetime,
        why: str,
    ) -> OperationEntry:
        op = OPERATION_OF[record.status]
        reason = f"{record.status}: {why}; the driver reports the container {seen}"
        deadline = record.status_deadline.isoformat() if record.status_deadline else None
        return OperationEntry(
            operation_id=self.deps.tokens.new_token(),
            runtime_id=record.runtime_id,
            op=op,
            op_source=OpSource.RECONCILER,
            outcome=Outcome.SUCCESS if plan.intent_held else Outcome.FAILURE,
            started_at=started_at,
            finished_at=self.deps.clock.now(),
            team_id=record.team_id,
            error_code=None if plan.intent_held else ErrorCode.INTERNAL,
            error_message=""
            if plan.intent_held
            else f"{op} did not finish before runplane lost it",
            reason=reason,
            status_from=record.status,
            status_to=plan.to,
            container_id=change.updated_fields().get("container_id", record.container_id),
            actor=RECONCILER_ACTOR,
            details={
                "inferred": True,
                "seen": str(seen),
                "status_deadline": deadline,
                "finished_by_reconciler": str(plan.finish) or None,
            },
        )
