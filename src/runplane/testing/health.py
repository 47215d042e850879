"""In-memory health: published events, snapshot rows, runtime snapshots, a
health event reader and engine-health summaries; the fakes of `ports.health`."""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from runplane.domain.health.events import HealthEvent
from runplane.domain.health.reactions import (
    HealthSnapshot,
    MalformedHealthEvent,
    RuntimeSnapshot,
    decode_health_event,
)
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.health import SummaryWrite
from runplane.testing.stores import InMemoryRuntimeStore


class InMemoryHealthEvents:
    def __init__(self) -> None:
        self.events: list[HealthEvent] = []

    async def publish(self, event: HealthEvent) -> None:
        event.as_fields()  # what the stream could not carry (details not JSON) is refused
        self.events.append(event)


class InMemoryHealthSnapshotStore:
    def __init__(self) -> None:
        self.rows: dict[str, HealthSnapshot] = {}

    async def upsert(self, snapshot: HealthSnapshot) -> None:
        """Stored as the SQL row comes back: a copy, `observed_at` in UTC."""
        observed_at = snapshot.observed_at
        if observed_at.tzinfo is None or observed_at.utcoffset() is None:
            raise ValueError(f"naive datetime {observed_at!r}: runplane stores timezone-aware UTC")
        self.rows[snapshot.runtime_id] = replace(
            snapshot,
            observed_at=observed_at.astimezone(UTC),
            details=copy.deepcopy(snapshot.details),
        )

    async def get(self, runtime_id: str) -> HealthSnapshot | None:
        row = self.rows.get(runtime_id)
        return None if row is None else replace(row, details=copy.deepcopy(row.details))


class InMemorySnapshotPublisher:
    def __init__(self) -> None:
        self.snapshots: list[RuntimeSnapshot] = []

    async def publish(self, snapshot: RuntimeSnapshot) -> None:
        self.snapshots.append(snapshot)

    async def publish_many(self, snapshots: Sequence[RuntimeSnapshot]) -> None:
        for snapshot in snapshots:
            await self.publish(snapshot)  # so a subclass's failing publish fails it too

    def of(self, runtime_id: str) -> list[RuntimeSnapshot]:
        return [s for s in self.snapshots if s.runtime_id == runtime_id]


class InMemoryHealthEventReader:
    """Reads what an InMemoryHealthEvents publisher holds, as the Redis reader
    reads the stream: each event as its flat fields decode (times in whole
    milliseconds, details a JSON copy), and one that does not decode passed over."""

    def __init__(self, events: InMemoryHealthEvents) -> None:
        self._events = events

    async def recent(self, runtime_id: str, *, limit: int = 20) -> list[HealthEvent]:
        mine: list[HealthEvent] = []
        for event in reversed(self._events.events):
            if len(mine) >= limit:
                break
            if event.runtime_id != runtime_id:
                continue
            try:
                mine.append(decode_health_event(event.as_fields()))
            except MalformedHealthEvent:
                continue
        return mine


class InMemoryEngineHealthStore:
    """Writes `engine_health` into an InMemoryRuntimeStore's records, as the SQL
    store's guarded UPDATE does (version untouched). It reaches into the store
    until RuntimeStore grows `set_engine_health` of its own."""

    def __init__(self, runtimes: InMemoryRuntimeStore) -> None:
        self._runtimes = runtimes

    async def set_engine_health(
        self,
        runtime_id: str,
        summary: str,
        *,
        status: Status,
        container_id: str | None,
        at: datetime,
    ) -> RuntimeRecord | None:
        records = self._runtimes._records  # private: see the class docstring
        record = records.get(runtime_id)
        if record is None or record.status != status or record.container_id != container_id:
            return None
        records[runtime_id] = replace(record, engine_health=summary, updated_at=at)
        return await self._runtimes.get(runtime_id)

    async def set_engine_healths(
        self, writes: Sequence[SummaryWrite], *, at: datetime
    ) -> dict[str, RuntimeRecord]:
        written = {}
        for w in writes:
            record = await self.set_engine_health(
                w.runtime_id, w.summary, status=w.status, container_id=w.container_id, at=at
            )
            if record is not None:
                written[w.runtime_id] = record
        return written

    async def records(self, runtime_ids: Collection[str]) -> dict[str, RuntimeRecord]:
        found = {}
        for runtime_id in runtime_ids:
            record = await self._runtimes.get(runtime_id)
            if record is not None:
                found[runtime_id] = record
        return found
