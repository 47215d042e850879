"""What health monitoring depends on: health events, engine event watchers,
snapshots, engine-health summaries and probes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

from runplane.domain.health.events import HealthEvent
from runplane.domain.health.probes import ProbeResult, ProbeTarget
from runplane.domain.health.reactions import HealthSnapshot, RuntimeSnapshot
from runplane.domain.health.spec import HealthCheck
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status


class HealthEventPublisher(Protocol):
    async def publish(self, event: HealthEvent) -> None:
        """Append to `runtime:health_events`; raises StoreUnavailable if Redis is down."""


class EngineEventWatcher(Protocol):
    """Follows a container engine's event stream and publishes what it tells
    as health events (the docker driver's watcher)."""

    async def watch(self) -> None:
        """One connection: catch up on what was missed, then follow the events
        until the stream ends (returns) or fails (raises). Called again to
        reconnect; cancelled to stop."""


class SummaryWrite(NamedTuple):
    """One guarded summary write: `summary` if the record is still in
    `status` with `container_id`."""

    runtime_id: str
    summary: str
    status: Status
    container_id: str | None


class EngineHealthStore(Protocol):
    """Writes a record's `engine_health` summary alone (belongs on RuntimeStore)."""

    async def set_engine_health(
        self,
        runtime_id: str,
        summary: str,
        *,
        status: Status,
        container_id: str | None,
        at: datetime,
    ) -> RuntimeRecord | None:
        """Set `engine_health` (and `updated_at`) if the record is still in
        `status` with `container_id`; the updated record, or None when it is
        not. Not a status write: `version` and `last_op_at` stay, so an
        operation's CAS is never spoilt by it."""

    async def set_engine_healths(
        self, writes: Sequence[SummaryWrite], *, at: datetime
    ) -> dict[str, RuntimeRecord]:
        """Each write as `set_engine_health`, all in one transaction: the records
        written, by runtime id (one whose guard missed is left out)."""

    async def records(self, runtime_ids: Collection[str]) -> dict[str, RuntimeRecord]:
        """The records of `runtime_ids` in one read (unknown ids are left out):
        what a batch of health events is folded onto."""


class HealthSnapshotStore(Protocol):
    """One row per runtime: the latest health event the monitor reported."""

    async def upsert(self, snapshot: HealthSnapshot) -> None:
        """Insert or replace the runtime's row."""

    async def get(self, runtime_id: str) -> HealthSnapshot | None: ...


class SnapshotPublisher(Protocol):
    async def publish(self, snapshot: RuntimeSnapshot) -> None:
        """Append to `runtime:snapshots`; raises StoreUnavailable if Redis is down."""

    async def publish_many(self, snapshots: Sequence[RuntimeSnapshot]) -> None:
        """Append each, in order, in one round trip; StoreUnavailable as `publish`."""


class HealthEventReader(Protocol):
    async def recent(self, runtime_id: str, *, limit: int = 20) -> list[HealthEvent]:
        """The runtime's latest health events, newest first (a bounded look back:
        older events may be missing from a busy stream)."""


class Prober(Protocol):
    async def probe(self, check: HealthCheck, target: ProbeTarget) -> ProbeResult:
        """Run one probe, bounded by `check.timeout_s`; never raises for a
        failing target (that is a result with ok=False)."""
