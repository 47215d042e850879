"""Dict-backed fakes of RuntimeStore and OperationLog (ApiKeyStore's is in
`testing/api_keys.py`, re-exported here).

Same semantics as the SQL stores (the contract tests run against both): the
transition gate, CAS conflicts, job_ids unique per team, keyset pagination,
values stored as copies and datetimes handed back in UTC."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Collection, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from runplane.domain.errors import CasConflict, DuplicateJobId, RuntimeAlreadyExists
from runplane.domain.lifecycle_events import LifecycleEvent, OutboxEvent
from runplane.domain.placement import HOLDS_HOST
from runplane.domain.records import OperationEntry, RuntimeRecord, StatusChange, apply_change
from runplane.domain.statuses import Status, require_transition
from runplane.ports.lifecycle import RuntimePage
from runplane.testing.api_keys import InMemoryApiKeyStore as InMemoryApiKeyStore

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    _D = TypeVar("_D", bound=DataclassInstance)


def _stored_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: runplane stores timezone-aware UTC")
        return value.astimezone(UTC)
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def _stored(record: _D) -> _D:
    """A copy as a database would hand it back: no shared dicts, datetimes in UTC."""
    return replace(
        record, **{f.name: _stored_value(getattr(record, f.name)) for f in fields(record)}
    )


class InMemoryOutbox:
    """The outbox of a fake store: events appended with their writes."""

    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []
        self._sent: set[int] = set()
        self._sequence = itertools.count(1)

    def add(self, events: Sequence[LifecycleEvent]) -> None:
        for event in events:
            self.events.append(
                OutboxEvent(
                    seq=next(self._sequence),
                    event_id=event.id,
                    runtime_id=event.runtime_id,
                    team_id=event.team_id,
                    type=event.type,
                    durable=event.durable,
                    payload=event.to_json(),
                    created_at=_stored_value(event.time),
                )
            )

    async def pending(self, *, limit: int = 500) -> list[OutboxEvent]:
        return [e for e in self.events if e.seq not in self._sent][:limit]

    async def mark_sent(self, seqs: Sequence[int], at: datetime) -> None:
        self._sent.update(seqs)

    async def oldest_pending_at(self) -> datetime | None:
        """The earliest event time among the pending events (not the lowest seq's:
        events are not always committed in the order of their times)."""
        return min((e.created_at for e in await self.pending(limit=len(self.events))), default=None)


class InMemoryOperationLog:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, OperationEntry]] = {}
        self._by_job_id: dict[tuple[str | None, str], str] = {}
        """(team_id, job_id) -> operation_id; None is the namespace of no team."""
        self._sequence = itertools.count()
        self.outbox = InMemoryOutbox()

    async def append(self, entry: OperationEntry, *, events: Sequence[LifecycleEvent] = ()) -> None:
        self.check_appendable(entry)
        self.add(entry)
        self.outbox.add(events)

    def check_appendable(self, entry: OperationEntry) -> None:
        """Raise (DuplicateJobId, or ValueError for a reused operation_id) if
        `entry` cannot be appended."""
        if entry.job_id is not None and (entry.team_id, entry.job_id) in self._by_job_id:
            raise DuplicateJobId(entry.job_id)
        if entry.operation_id in self._entries:
            raise ValueError(f"operation {entry.operation_id!r} already exists")

    def add(self, entry: OperationEntry) -> None:
        """Append a checked entry without awaiting (the runtime store's CAS uses it)."""
        self._entries[entry.operation_id] = (next(self._sequence), _stored(entry))
        if entry.job_id is not None:
            self._by_job_id[entry.team_id, entry.job_id] = entry.operation_id

    async def list_for_runtime(
        self, runtime_id: str, *, team_id: str | None = None, limit: int = 100
    ) -> list[OperationEntry]:
        """Newest first: by finished_at, then by the order they were appended."""
        matching = [
            item
            for item in self._entries.values()
            if item[1].runtime_id == runtime_id and team_id in (None, item[1].team_id)
        ]
        matching.sort(key=lambda item: (item[1].finished_at, item[0]), reverse=True)
        return [_stored(entry) for _, entry in matching[:limit]]

    async def get(self, operation_id: str) -> OperationEntry | None:
        item = self._entries.get(operation_id)
        return None if item is None else _stored(item[1])

    async def find_by_job_id(self, team_id: str | None, job_id: str) -> OperationEntry | None:
        operation_id = self._by_job_id.get((team_id, job_id))
        return None if operation_id is None else await self.get(operation_id)


def _matches(record: RuntimeRecord, change: StatusChange) -> bool:
    if (record.status, record.version) != (change.expected_status, change.expected_version):
        return False
    return not change.checks_container or record.container_id == change.expected_container_id


class InMemoryRuntimeStore:
    def __init__(self, log: InMemoryOperationLog) -> None:
        self._log = log
        self._records: dict[str, RuntimeRecord] = {}

    async def get(self, runtime_id: str) -> RuntimeRecord | None:
        record = self._records.get(runtime_id)
        return None if record is None else _stored(record)

    async def get_for_job(self, runtime_id: str, job_id: str) -> tuple[RuntimeRecord | None, bool]:
        record = await self.get(runtime_id)
        team_id = None if record is None else record.team_id
        return record, (team_id, job_id) in self._log._by_job_id

    async def create(self, record: RuntimeRecord, *, events: Sequence[LifecycleEvent] = ()) -> None:
        if record.runtime_id in self._records:
            raise RuntimeAlreadyExists(record.runtime_id)
        self._records[record.runtime_id] = _stored(record)
        self._log.outbox.add(events)

    async def list(
        self,
        *,
        status: Status | None = None,
        team_id: str | None = None,
        host_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> RuntimePage:
        """Ordered by runtime_id. `next_cursor` is the page's last runtime_id when
        more records follow, None on the last page."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        matching = [
            record
            for runtime_id, record in sorted(self._records.items())
            if (status is None or record.status == status)
            and (team_id is None or record.team_id == team_id)
            and (host_id is None or record.host_id == host_id)
            and (after is None or runtime_id > after)
        ]
        records = [_stored(record) for record in matching[:limit]]
        more = len(matching) > limit
        return RuntimePage(records, records[-1].runtime_id if more else None)

    async def count_for_team(self, team_id: str, statuses: Collection[Status]) -> int:
        wanted = frozenset(statuses)
        return sum(1 for r in self._records.values() if r.team_id == team_id and r.status in wanted)

    async def any_in(self, statuses: Collection[Status]) -> bool:
        wanted = frozenset(statuses)
        return any(record.status in wanted for record in self._records.values())

    async def count_live_by_host(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self._records.values():
            if record.host_id is not None and record.status in HOLDS_HOST:
                counts[record.host_id] = counts.get(record.host_id, 0) + 1
        return counts

    async def compare_and_swap(
        self,
        change: StatusChange,
        *,
        entry: OperationEntry | None = None,
        events: Sequence[LifecycleEvent] = (),
    ) -> RuntimeRecord:
        require_transition(change.expected_status, change.status)
        record = self._records.get(change.runtime_id)
        if record is None or not _matches(record, change):
            raise CasConflict(change.runtime_id, change.expected_status.value)
        if entry is not None:
            self._log.check_appendable(entry)
        updated = _stored(apply_change(record, change))
        self._records[change.runtime_id] = updated
        if entry is not None:
            self._log.add(entry)
        self._log.outbox.add(events)
        return _stored(updated)
