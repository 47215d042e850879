"""The interfaces services and workers depend on. Adapters implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from runplane.domain.dead_letters import DeadLetter
from runplane.domain.drivers import ContainerInfo, StartedContainer
from runplane.domain.event_reading import EventFilter, EventPage, StoredEvent
from runplane.domain.events import LifecycleEvent, OutboxEvent
from runplane.domain.health import HealthEvent
from runplane.domain.jobs import JobResult
from runplane.domain.keys import ApiKey
from runplane.domain.records import OperationEntry, RuntimeRecord, StatusChange
from runplane.domain.statuses import Status


@dataclass(frozen=True, slots=True)
class RuntimePage:
    records: list[RuntimeRecord]
    next_cursor: str | None


class RuntimeStore(Protocol):
    """Runtime records. Every status write is a compare-and-swap (StatusChange)."""

    async def get(self, runtime_id: str) -> RuntimeRecord | None: ...

    async def create(self, record: RuntimeRecord, *, events: Sequence[LifecycleEvent] = ()) -> None:
        """Insert a new record (and its events into the outbox, in the same
        transaction); raises RuntimeAlreadyExists if the id is taken."""

    async def list(
        self,
        *,
        status: Status | None = None,
        team_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> RuntimePage:
        """Ordered by runtime_id; `after` is the previous page's `next_cursor`."""

    async def compare_and_swap(
        self,
        change: StatusChange,
        *,
        entry: OperationEntry | None = None,
        events: Sequence[LifecycleEvent] = (),
    ) -> RuntimeRecord:
        """Apply `change`, append `entry` and put `events` in the outbox, in one
        transaction. Raises CasConflict when no row matches (wrong status, version
        or container_id), and DuplicateJobId (nothing written) when entry.job_id is
        already taken."""


class OperationLog(Protocol):
    async def append(self, entry: OperationEntry, *, events: Sequence[LifecycleEvent] = ()) -> None:
        """Append `entry` (and put `events` in the outbox, same transaction).
        Raises DuplicateJobId when entry.job_id is already taken."""

    async def list_for_runtime(self, runtime_id: str, *, limit: int = 100) -> list[OperationEntry]:
        """Newest first."""

    async def get(self, operation_id: str) -> OperationEntry | None: ...

    async def find_by_job_id(self, job_id: str) -> OperationEntry | None: ...


class Outbox(Protocol):
    """Events committed with their state changes, waiting to be published."""

    async def pending(self, *, limit: int = 500) -> list[OutboxEvent]:
        """Unpublished events, oldest (lowest seq) first."""

    async def mark_sent(self, seqs: Sequence[int], at: datetime) -> None: ...

    async def oldest_pending_at(self) -> datetime | None: ...


class EventPublisher(Protocol):
    async def publish(self, events: Sequence[OutboxEvent]) -> None:
        """Durable events to the stream and the live channel, transient ones to the
        channel only, in order. Raises StoreUnavailable if Redis is down."""


class ApiKeyStore(Protocol):
    async def add(self, key: ApiKey) -> None: ...

    async def find_by_hash(self, key_hash: str) -> ApiKey | None: ...

    async def count(self) -> int: ...


class LeaseStore(Protocol):
    """Per-runtime mutual exclusion with a time bound (Redis SET NX PX)."""

    async def try_acquire(self, runtime_id: str, token: str, ttl_ms: int) -> bool: ...

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        """Extend the lease if `token` still holds it."""

    async def release(self, runtime_id: str, token: str) -> bool:
        """Delete the lease if `token` still holds it."""


class OffsetStore(Protocol):
    """Positions of offset-mode stream consumers."""

    async def load(self, consumer: str, stream: str) -> str | None: ...

    async def save(self, consumer: str, stream: str, entry_id: str) -> None: ...


class Driver(Protocol):
    """Runs runtimes: OS processes, containers. Raises ContainerGone when the
    container no longer exists, DriverError when the engine fails."""

    name: str

    def validate_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The normalised spec; raises InvalidSpec with a readable message."""

    async def start(self, runtime_id: str, spec: dict[str, Any]) -> StartedContainer: ...

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        """Stop gracefully, then kill past the timeout. Returns the final state."""

    async def pause(self, container_id: str) -> None: ...

    async def resume(self, container_id: str) -> None: ...

    async def remove(self, container_id: str) -> None:
        """Forget the container and its files; a missing one is not an error."""

    async def inspect(self, container_id: str) -> ContainerInfo: ...

    async def list_containers(self) -> Sequence[ContainerInfo]:
        """Every container this driver manages, live or exited (for adoption)."""


class JobResultPublisher(Protocol):
    async def publish(self, result: JobResult) -> None:
        """Append to the job results stream; raises StoreUnavailable if Redis is down."""


class JobQueue(Protocol):
    """Where jobs are submitted: one stream per operation."""

    async def submit(self, op: str, fields: dict[str, str]) -> tuple[str, str]:
        """Append a job entry to the operation's stream; (stream, entry id)."""


class DeadLetterQueue(Protocol):
    """Entries that failed past their delivery cap, for an operator to act on."""

    async def list(self, *, after: str | None = None, count: int = 100) -> list[DeadLetter]: ...

    async def replay(self, dead_letter_id: str) -> str:
        """Put the entry back on its stream; the new entry id. Raises
        DeadLetterNotFound / DeadLetterUnreplayable."""

    async def drop(self, dead_letter_id: str) -> bool: ...


class HealthEventPublisher(Protocol):
    async def publish(self, event: HealthEvent) -> None:
        """Append to `runtime:health_events`; raises StoreUnavailable if Redis is down."""


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC."""


class TokenGenerator(Protocol):
    def new_token(self) -> str:
        """A unique, unguessable token (leases, ids)."""


class EventReader(Protocol):
    """The durable lifecycle event stream, read-only."""

    async def last_id(self) -> str:
        """The id of the newest entry (ZERO_ID when the stream is empty): the
        position a new subscriber without a resume id starts from."""

    async def page(self, *, after: str | None, limit: int, where: EventFilter) -> EventPage:
        """Up to `limit` matching events strictly after `after` (the start when
        None). A page looks at a bounded number of entries, so a selective
        filter may answer fewer than `limit` events with a `next_cursor`. A
        cursor older than what the stream retains goes on from its oldest entry."""

    def follow(self, *, after: str | None, where: EventFilter) -> AsyncIterator[StoredEvent]:
        """Every matching event strictly after `after` (after the newest entry
        when None), in stream order, then each new one as it is added: no gap, no
        duplicate. Ends when the reader is closed. Raises EventsTrimmed when
        entries after the position were trimmed before they were read, and
        StoreUnavailable when the stream cannot be read."""
        ...
