"""The writes a health event makes to a runtime record.

- A new summary alone is written by EngineHealthStore: guarded by the record's
  status and container, but no CAS on the version (which stays). A summary is
  an observation, not a status change, so it must not make an operation that
  read the record a moment earlier fail its CAS with `conflict`, nor leave a
  version without a lifecycle event.
- A status change (running <-> engine_unreachable) is a CAS, made holding the
  runtime's lease so it never lands between an operation's read and its CAS.
  The write waits briefly (`lease_wait_ms`) for an operation in flight; if the
  lease is still held then, it raises RuntimeBusy (the event is retried later)
  unless the runtime has meanwhile entered a transient status its operation
  owns."""

from __future__ import annotations

import contextlib
import dataclasses
import logging

from prometheus_client import Counter

from runplane.domain.errors import CasConflict, RunplaneError
from runplane.domain.health.events import HealthEvent
from runplane.domain.health.reactions import HealthReaction
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.domain.statuses import TRANSIENT
from runplane.ports.health import EngineHealthStore
from runplane.services import lease
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.event_factory import EventFactory

logger = logging.getLogger(__name__)

HEALTH_ACTOR = "system:health"
_TRIES = 3

HEALTH_TRANSITIONS = Counter(
    "runplane_health_transitions_total",
    "Status changes made by health events, by target status.",
    ["status_to"],
)


class RuntimeBusy(RunplaneError):
    """An operation held the runtime's lease past the wait: try again later."""

    def __init__(self, runtime_id: str) -> None:
        super().__init__(f"an operation holds runtime {runtime_id!r}'s lease")
        self.runtime_id = runtime_id


def wants_move(record: RuntimeRecord, reaction: HealthReaction) -> bool:
    return reaction.from_status is not None and record.status is reaction.from_status


def wants_write(record: RuntimeRecord, reaction: HealthReaction) -> bool:
    """Whether the event changes the record: a status change it asks for, or a
    new summary on a runtime no operation is moving."""
    if wants_move(record, reaction):
        return True
    return record.status not in TRANSIENT and record.engine_health != str(reaction.summary)


class HealthWrites:
    def __init__(
        self, deps: Dependencies, summaries: EngineHealthStore, *, lease_wait_ms: int = 500
    ) -> None:
        self.deps = deps
        self.summaries = summaries
        self.events = EventFactory(deps)
        self.lease_wait_ms = lease_wait_ms

    async def apply(
        self, record: RuntimeRecord, reaction: HealthReaction, event: HealthEvent
    ) -> tuple[RuntimeRecord, bool] | None:
        """Apply `reaction` to `record` (as just read): (record after, whether
        its status moved); None when the runtime is gone or no longer runs the
        event's container."""
        current: RuntimeRecord | None = record
        for _ in range(_TRIES):
            if current is None or not event.is_about(current.container_id):
                return None
            if wants_move(current, reaction):
                moved = await self._move_holding_lease(current.runtime_id, reaction, event)
                if moved is not None:
                    return moved
            elif not wants_write(current, reaction):
                return current, False
            else:
                written = await self.summaries.set_engine_health(
                    current.runtime_id,
                    str(reaction.summary),
                    status=current.status,
                    container_id=current.container_id,
                    at=self.deps.clock.now(),
                )
                if written is not None:
                    return written, False
            current = await self.deps.runtimes.get(record.runtime_id)
        return (current, False) if current is not None else None

    async def _move_holding_lease(
        self, runtime_id: str, reaction: HealthReaction, event: HealthEvent
    ) -> tuple[RuntimeRecord, bool] | None:
        """The status change, made under the lease on the record as it is then;
        None when the record no longer calls for it (the caller looks again)."""
        async with self._lease(runtime_id) as held:
            record = await self.deps.runtimes.get(runtime_id)
            if record is None or not wants_move(record, reaction):
                return None
            if not held:
                raise RuntimeBusy(runtime_id)
            try:
                return await self._move(record, reaction, event), True
            except CasConflict:
                return None

    def _lease(self, runtime_id: str) -> contextlib.AbstractAsyncContextManager[bool]:
        deps = self.deps
        token = deps.tokens.new_token()
        return lease.held(
            deps.leases, runtime_id, token, deps.lease_ttl_ms, wait_ms=self.lease_wait_ms
        )

    async def _move(
        self, record: RuntimeRecord, reaction: HealthReaction, event: HealthEvent
    ) -> RuntimeRecord:
        """The status change. REACTIONS only names moves the table allows;
        StatusChange would raise InvalidTransition on any other."""
        assert reaction.to_status is not None
        change = StatusChange(
            runtime_id=record.runtime_id,
            expected_status=record.status,
            expected_version=record.version,
            status=reaction.to_status,
            at=self.deps.clock.now(),
            engine_health=str(reaction.summary),
            status_deadline=None,
        )
        moved = self.events.outcome_event(
            reaction.lifecycle_event,
            record,
            outcome="success",
            actor=HEALTH_ACTOR,
            reason=str(event.event_type),
            status_from=str(record.status),
            status_to=str(reaction.to_status),
            sequence=record.version + 1,
        )
        moved = dataclasses.replace(moved, metadata=_metadata(event))
        state = self.events.state_changed(record, change, HEALTH_ACTOR)
        updated = await self.deps.runtimes.compare_and_swap(change, events=[moved, state])
        HEALTH_TRANSITIONS.labels(status_to=str(reaction.to_status)).inc()
        logger.info(
            "runtime status changed by a health event",
            extra={
                "runtime_id": record.runtime_id,
                "event_type": str(event.event_type),
                "status_from": str(record.status),
                "status_to": str(reaction.to_status),
            },
        )
        return updated


def _metadata(event: HealthEvent) -> dict[str, str]:
    """The event's details as lifecycle-event metadata (a string map)."""
    metadata = {"health_event": str(event.event_type), "container_id": event.container_id}
    for key, value in event.details.items():
        if value is not None and isinstance(value, str | int | float | bool):
            metadata[key] = str(value)
    return metadata
