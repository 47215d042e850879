"""Runtime records and their operation log: where every status change is written."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.domain.records import OperationEntry, RuntimeRecord, StatusChange
from runplane.domain.statuses import Status


@dataclass(frozen=True, slots=True)
class RuntimePage:
    records: list[RuntimeRecord]
    next_cursor: str | None


class RuntimeStore(Protocol):
    """Runtime records. Every status write is a compare-and-swap (StatusChange),
    gated by the transition table in the store itself."""

    async def get(self, runtime_id: str) -> RuntimeRecord | None: ...

    async def get_for_job(self, runtime_id: str, job_id: str) -> tuple[RuntimeRecord | None, bool]:
        """The record (None if absent), and whether `job_id` is already claimed
        by an operation-log entry of the record's team (no record: of no team),
        read together."""

    async def create(self, record: RuntimeRecord, *, events: Sequence[LifecycleEvent] = ()) -> None:
        """Insert a new record (and its events into the outbox, in the same
        transaction); raises RuntimeAlreadyExists if the id is taken."""

    async def list(
        self,
        *,
        status: Status | None = None,
        team_id: str | None = None,
        host_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> RuntimePage:
        """Ordered by runtime_id; `after` is the previous page's `next_cursor`;
        `host_id`: only the records placed on that host."""

    async def count_for_team(self, team_id: str, statuses: Collection[Status]) -> int:
        """How many of the team's records are in one of `statuses` (its quotas)."""

    async def any_in(self, statuses: Collection[Status]) -> bool:
        """Whether any record is in one of `statuses` (one cheap look, for a
        check that nearly always finds none)."""

    async def count_live_by_host(self) -> dict[str, int]:
        """How many records each host holds in a status of
        `domain.placement.HOLDS_HOST` (placement's load); hosts with none, and
        records with no host, are left out."""

    async def compare_and_swap(
        self,
        change: StatusChange,
        *,
        entry: OperationEntry | None = None,
        events: Sequence[LifecycleEvent] = (),
    ) -> RuntimeRecord:
        """Apply `change`, append `entry` and put `events` in the outbox, in one
        transaction. Raises InvalidTransition (nothing written) when the transition
        table does not allow `expected_status -> status`, whatever built `change`;
        CasConflict when no row matches (wrong status, version or container_id);
        and DuplicateJobId (nothing written) when entry.job_id is already taken."""


class OperationLog(Protocol):
    """One entry per operation call. An entry's `team_id` is the team the call
    was made for (the caller's; an admin's or the system's call takes the
    runtime's team), None for a call of no team (an admin's call on a runtime
    that does not exist). Job ids are unique per team: (team_id, job_id), with
    the calls of no team as one more namespace."""

    async def append(self, entry: OperationEntry, *, events: Sequence[LifecycleEvent] = ()) -> None:
        """Append `entry` (and put `events` in the outbox, same transaction).
        Raises DuplicateJobId when entry.job_id is already taken in its team."""

    async def list_for_runtime(
        self, runtime_id: str, *, team_id: str | None = None, limit: int = 100
    ) -> list[OperationEntry]:
        """Newest first; only the entries of `team_id` when it is given."""

    async def get(self, operation_id: str) -> OperationEntry | None: ...

    async def find_by_job_id(self, team_id: str | None, job_id: str) -> OperationEntry | None:
        """The entry that claimed `job_id` in `team_id` (None: the calls of no team)."""
