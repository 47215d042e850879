"""Turning health events into runtime state (what the offset-mode consumer of
`runtime:health_events` does with each event; workers/health_consumer.py
reads the stream).

For each event (REACTIONS in domain/health/reactions.py):
1. the record's `engine_health` becomes the event's summary;
2. `container_exited` / `container_oom` / `container_disappeared` move a
   `running` record to `engine_unreachable`, `probe_recovered` moves an
   `engine_unreachable` one back to `running`: a CAS that commits the durable
   `runtime.unreachable` / `runtime.recovered` event and `runtime.state.changed`
   with it. These are not operations: no operation-log entry. When the record is
   in another status (a CAS conflict) only the summary is written;
3. a `runtime:snapshots` entry is published when the runtime's (status,
   summary) differs from the last one published for it. What was published is
   remembered in memory: after a restart, each runtime's first event publishes
   once.

The consumer applies a whole read at once (batch.py: `apply_batch`): one read
of the batch's records, each runtime's events folded in order, so repeats
cost nothing; a summary-only change is written once per batch with the last
summary, each status change as above, and the snapshots due (each status
change, then the final (status, summary) if it differs from the last
published) in one pipeline. `handle` applies one event (what the consumer falls
back to for events a batch could not apply).

An event that changes nothing writes nothing (the common case: repeats), and
a summary-only one (no status change asked) that changes nothing on the record
as last read or written a moment ago (last_seen.py: trusted for a second) does
not even read it: a burst of repeats costs the database one read a second. A
summary is written without a version bump, a status change holding the
runtime's lease (see writes.py). Events for another container than the
record's (a late report about a container a restart replaced), unknown types,
unknown runtimes and malformed entries are logged and passed over. A record in
a transient status belongs to the operation in flight: its summary is left
alone. An unreachable database raises StoreUnavailable, a lease held too long
RuntimeBusy: the entry is retried."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from runplane.domain.health.events import HealthEvent
from runplane.domain.health.reactions import REACTIONS
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.health import EngineHealthStore, SnapshotPublisher
from runplane.services.health.batch import BatchApply, UnreachableHook
from runplane.services.health.last_seen import DEFAULT_TRUST_S, LastSeen
from runplane.services.health.published import SNAPSHOTS_PUBLISHED, Published
from runplane.services.health.writes import HealthWrites, wants_write
from runplane.services.lifecycle.dependencies import Dependencies

logger = logging.getLogger(__name__)

__all__ = ["SNAPSHOTS_PUBLISHED", "HealthEventApplier", "UnreachableHook"]


class HealthEventApplier:
    def __init__(
        self,
        deps: Dependencies,
        summaries: EngineHealthStore,
        snapshots: SnapshotPublisher,
        *,
        on_unreachable: UnreachableHook | None = None,
        lease_wait_ms: int = 500,
        trust_record_s: float = DEFAULT_TRUST_S,
    ) -> None:
        self.runtimes = deps.runtimes
        self.clock = deps.clock
        self.writes = HealthWrites(deps, summaries, lease_wait_ms=lease_wait_ms)
        self.on_unreachable = on_unreachable
        self.last_seen = LastSeen(deps.clock, trust_s=trust_record_s)
        self.published = Published(snapshots, deps.clock)
        self._batch = BatchApply(
            summaries, self.writes, self.last_seen, self.published, deps.clock, on_unreachable
        )

    @property
    def snapshots(self) -> SnapshotPublisher:
        return self.published.publisher

    @snapshots.setter
    def snapshots(self, publisher: SnapshotPublisher) -> None:
        self.published.publisher = publisher

    async def apply_batch(self, events: Sequence[HealthEvent]) -> list[bool]:
        """Apply `events` (stream order) at once: which of them are applied; the
        others are to be applied one by one (`handle`), in order."""
        return await self._batch(events)

    async def handle(self, event: HealthEvent) -> RuntimeRecord | None:
        """Apply one event; the record as it stands afterwards (None: passed over)."""
        known = self.last_seen.recall(event.runtime_id)
        if known is not None and _changes_nothing(known, event):
            await self.published.publish_if_changed(known)  # a failed publish is retried here
            return known
        self.last_seen.forget(event.runtime_id)
        record = await self._apply(event)
        if record is not None:
            self.last_seen.note(record)
        return record

    async def _apply(self, event: HealthEvent) -> RuntimeRecord | None:
        fields = {"runtime_id": event.runtime_id, "event_type": str(event.event_type)}
        record = await self.runtimes.get(event.runtime_id)
        if record is None:
            logger.warning("health event for an unknown runtime passed over", extra=fields)
            return None
        if not event.is_about(record.container_id):
            logger.info("health event about a replaced container passed over", extra=fields)
            self.last_seen.note(record)
            return None
        reaction = REACTIONS[event.event_type]
        moved = False
        if wants_write(record, reaction):
            outcome = await self.writes.apply(record, reaction, event)
            if outcome is None:
                logger.info("health event about a replaced container passed over", extra=fields)
                return None
            record, moved = outcome
        await self.published.publish_if_changed(record)
        if moved and record.status is Status.ENGINE_UNREACHABLE and self.on_unreachable:
            await self.on_unreachable(record, event)
        return record


def _changes_nothing(record: RuntimeRecord, event: HealthEvent) -> bool:
    """Whether applying `event` to `record` would leave it as it is. Never said
    of an event that may change a status (an end, a recovery): a status change
    is not decided on memory, since an operation may have made it due meanwhile
    (a paused runtime resumed)."""
    reaction = REACTIONS[event.event_type]
    if reaction.from_status is not None:
        return False
    return event.is_about(record.container_id) and not wants_write(record, reaction)
