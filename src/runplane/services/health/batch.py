"""A batch of health events applied at once (what the consumer does with each
read of `runtime:health_events`; applier.py has the rules of one event).

The batch's records are read in one SELECT (but for runtimes whose events here
ask for no status change and whose record was seen less than a second ago:
last_seen.py). Each runtime's events are then folded onto its record in stream
order, in memory: an event that changes nothing is dropped, a summary-only
change replaces the summary to be written, and a status change (running <->
engine_unreachable) is made at once, as one event would make it (under the
runtime's lease, a CAS with its lifecycle events, the unreachable hook after
it), since it must not be decided on a record read a while ago; runtimes with
status changes to make are folded side by side. What is left of each
runtime's summary is written at the end, the batch's in one transaction (each
guarded by status and container, no version bump), and the snapshots due are
published in one pipeline: one per status change, and the runtime's final
(status, summary) when it differs from the last published. So a burst of
repeats costs one read per batch and nothing else.

An event is applied once its effect is in the database (or it had none). When
a runtime's fold cannot finish (the database unreachable, its lease held too
long, its record changed behind the fold: the guarded write missed, a moved
or replaced container), its events from the first whose effect is not
written are reported unapplied; the consumer runs them one by one, with the
retries and dead letters of one event."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from runplane.domain.errors import StoreUnavailable
from runplane.domain.health.events import HealthEvent
from runplane.domain.health.reactions import REACTIONS
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.health import EngineHealthStore, SummaryWrite
from runplane.ports.system import Clock
from runplane.services.health.last_seen import LastSeen
from runplane.services.health.published import Published
from runplane.services.health.writes import HealthWrites, RuntimeBusy, wants_move, wants_write

logger = logging.getLogger(__name__)

UnreachableHook = Callable[[RuntimeRecord, HealthEvent], Awaitable[object]]
"""Called after a health event moved a runtime to engine_unreachable."""


@dataclass(slots=True)
class _Fold:
    """One runtime's events folded onto its record."""

    stored: RuntimeRecord
    """The record as the database has it (as read, or as the last move left it)."""
    current: RuntimeRecord
    """`stored` with the summary of the events folded since."""
    indices: list[int]
    settled: int = 0
    """How many of `indices` are applied for good."""
    shown: list[RuntimeRecord] = field(default_factory=list)
    """The records to publish snapshots of, in order."""
    complete: bool = True
    touched: bool = False
    """Whether an event named the record's container (else nothing is shown)."""


class BatchApply:
    def __init__(
        self,
        summaries: EngineHealthStore,
        writes: HealthWrites,
        last_seen: LastSeen,
        published: Published,
        clock: Clock,
        on_unreachable: UnreachableHook | None,
        *,
        concurrency: int = 16,
    ) -> None:
        self.summaries = summaries
        self.writes = writes
        self.last_seen = last_seen
        self.published = published
        self.clock = clock
        self.on_unreachable = on_unreachable
        self.concurrency = concurrency

    async def __call__(self, events: Sequence[HealthEvent]) -> list[bool]:
        """Apply `events`; which of them are applied (the others: to run one by one)."""
        applied = [False] * len(events)
        by_runtime: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            by_runtime.setdefault(event.runtime_id, []).append(index)
        records = self._known(by_runtime, events)
        unread = [runtime_id for runtime_id in by_runtime if runtime_id not in records]
        try:
            if unread:
                records.update(await self.summaries.records(unread))
        except StoreUnavailable as exc:
            logger.warning("health events batch not read", extra={"error": str(exc)})
            return applied
        folds: list[_Fold] = []
        for runtime_id, indices in by_runtime.items():
            record = records.get(runtime_id)
            if record is None:
                logger.warning(
                    "health events for an unknown runtime passed over",
                    extra={"runtime_id": runtime_id, "count": len(indices)},
                )
                self.last_seen.forget(runtime_id)
                for index in indices:
                    applied[index] = True
                continue
            folds.append(_Fold(record, record, indices))
        try:
            await self._fold_all(folds, events)
            await self._write_summaries(folds)
        except BaseException:
            for runtime_id in by_runtime:  # moves may have been made: trust no memory
                self.last_seen.forget(runtime_id)
            raise
        shown: list[RuntimeRecord] = []
        for fold in folds:
            for index in fold.indices[: fold.settled]:
                applied[index] = True
            shown.extend(fold.shown)
            if fold.complete:
                self.last_seen.note(fold.stored)
            else:
                self.last_seen.forget(fold.stored.runtime_id)
        await self.published.publish_changed(shown)
        return applied

    def _known(
        self, by_runtime: dict[str, list[int]], events: Sequence[HealthEvent]
    ) -> dict[str, RuntimeRecord]:
        """The records remembered (last_seen.py) of the runtimes whose events
        here ask for no status change and name no other container: theirs
        need not be read again. An event about another container is read
        about: the memory may predate a restart that made it (the new
        container's start would be passed over as a replaced one's)."""
        known = {}
        for runtime_id, indices in by_runtime.items():
            if any(_may_move(events[i]) for i in indices):
                continue  # a status change is not decided on memory
            record = self.last_seen.recall(runtime_id)
            if record is not None and all(events[i].is_about(record.container_id) for i in indices):
                known[runtime_id] = record
        return known

    async def _fold_all(self, folds: list[_Fold], events: Sequence[HealthEvent]) -> None:
        """Fold each runtime's events, runtimes side by side (`concurrency` at
        a time): their status changes wait on leases and commits, not on each
        other."""
        slots = asyncio.Semaphore(self.concurrency)

        async def fold_one(fold: _Fold) -> None:
            async with slots:
                await self._fold(fold, events)

        async with asyncio.TaskGroup() as group:
            for fold in folds:
                if any(_may_move(events[i]) for i in fold.indices):
                    group.create_task(fold_one(fold))
                else:  # nothing to wait for: no task
                    await self._fold(fold, events)

    async def _fold(self, fold: _Fold, events: Sequence[HealthEvent]) -> None:
        for position, index in enumerate(fold.indices):
            event = events[index]
            current = fold.current
            if not event.is_about(current.container_id):
                logger.info(
                    "health event about a replaced container passed over",
                    extra={"runtime_id": event.runtime_id, "event_type": str(event.event_type)},
                )
                continue
            fold.touched = True
            reaction = REACTIONS[event.event_type]
            if wants_move(current, reaction):
                try:
                    outcome = await self.writes.apply(current, reaction, event)
                except (StoreUnavailable, RuntimeBusy):
                    outcome = None
                if outcome is None:  # left to the one-by-one path, which logs why
                    fold.complete = False
                    return
                record, moved = outcome
                fold.stored = fold.current = record
                fold.settled = position + 1
                fold.shown.append(record)
                if moved and record.status is Status.ENGINE_UNREACHABLE:
                    await self._unreachable(record, event)
            elif wants_write(current, reaction):
                fold.current = dataclasses.replace(current, engine_health=str(reaction.summary))

    async def _unreachable(self, record: RuntimeRecord, event: HealthEvent) -> None:
        hook = self.on_unreachable
        if hook is None:
            return
        try:
            await hook(record, event)
        except Exception:
            # The move is made: one event would not call the hook again either.
            logger.exception("unreachable hook failed", extra={"runtime_id": record.runtime_id})

    async def _write_summaries(self, folds: list[_Fold]) -> None:
        """The summary each fold is left with, written in one transaction where
        it differs from the stored one."""
        due = [f for f in folds if f.complete and f.current.engine_health != f.stored.engine_health]
        writes = [
            SummaryWrite(
                f.stored.runtime_id,
                f.current.engine_health or "",
                f.stored.status,
                f.stored.container_id,
            )
            for f in due
        ]
        try:
            written = await self.summaries.set_engine_healths(writes, at=self.clock.now())
        except StoreUnavailable:
            written = {}
        for fold in due:
            record = written.get(fold.stored.runtime_id)
            if record is None:  # changed behind the fold (or not written): one by one
                fold.complete = False
            else:
                fold.stored = record
        for fold in folds:
            if fold.complete:
                fold.settled = len(fold.indices)
                if fold.touched:
                    fold.shown.append(fold.stored)


def _may_move(event: HealthEvent) -> bool:
    return REACTIONS[event.event_type].from_status is not None
