"""SqlRuntimeStore: runtime records, written only by compare-and-swap."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.elements import BindParameter

from runplane.adapters.sql.cas import cas_parameters, cas_statement, compare_and_swap_native
from runplane.adapters.sql.direct import DirectStatement
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.job_read import GET_FOR_JOB, split_row
from runplane.adapters.sql.label_tables import runtime_labels
from runplane.adapters.sql.operation_log import insert_entry
from runplane.adapters.sql.outbox import insert_events
from runplane.adapters.sql.record_cache import RecordCache, read_page
from runplane.adapters.sql.tables import as_row, plain_values, runtimes
from runplane.domain.errors import CasConflict, RuntimeAlreadyExists
from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.domain.placement import HOLDS_HOST
from runplane.domain.records import OperationEntry, RuntimeRecord, StatusChange
from runplane.domain.statuses import Status, require_transition
from runplane.ports.lifecycle import RuntimePage


def insert_labels(connection: Connection, runtime_id: str, labels: dict[str, str]) -> None:
    """A new runtime's label rows (adapters/sql/label_tables.py), same transaction."""
    if labels:
        rows = [{"runtime_id": runtime_id, "key": k, "value": v} for k, v in labels.items()]
        connection.execute(insert(runtime_labels), rows)


def row_to_record(row: Mapping[str, Any] | RowMapping) -> RuntimeRecord:
    values: dict[str, Any] = dict(row)
    values["status"] = Status(values["status"])
    values["spec"] = dict(values["spec"])
    return RuntimeRecord(**values)


_LIVE_BY_HOST = (
    select(runtimes.c.host_id, func.count())
    .where(runtimes.c.host_id.is_not(None))
    .where(runtimes.c.status.in_(sorted(s.value for s in HOLDS_HOST)))
    .group_by(runtimes.c.host_id)
)
"""Placement's load, one query (ix_runtimes_host_id_status covers it)."""
_GET = DirectStatement(
    select(runtimes).where(runtimes.c.runtime_id == bindparam("runtime_id")),
    returns=tuple(runtimes.c),
)


@functools.cache
def _any_in(statuses: tuple[str, ...]) -> DirectStatement:
    """One record in any of `statuses`, through the status index. Each status
    its own bind (with its value), so the statement compiles once (direct.py)."""
    binds: list[BindParameter[str]] = [
        bindparam(f"status_{i}", value) for i, value in enumerate(statuses)
    ]
    return DirectStatement(
        select(runtimes.c.runtime_id).where(runtimes.c.status.in_(binds)).limit(1),
        returns=(runtimes.c.runtime_id,),
    )


class SqlRuntimeStore:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database
        self._cache = RecordCache()

    async def get(self, runtime_id: str) -> RuntimeRecord | None:
        parameters = {"runtime_id": runtime_id}
        if (native := self._database.native) is not None:
            async with native.reading() as connection:
                row = await _GET.first_native(connection, parameters)
        else:
            row = await self._database.read_point(lambda c: _GET.first(c, parameters))
        return None if row is None else row_to_record(row)

    async def get_for_job(self, runtime_id: str, job_id: str) -> tuple[RuntimeRecord | None, bool]:
        parameters = {"runtime_id": runtime_id, "job_id": job_id}
        if (native := self._database.native) is not None:
            async with native.reading() as connection:
                found = await GET_FOR_JOB.first_native(connection, parameters)
        else:
            found = await self._database.read_point(lambda c: GET_FOR_JOB.first(c, parameters))
        row, claimed = split_row(found)
        return (None if row is None else row_to_record(row)), claimed

    async def create(self, record: RuntimeRecord, *, events: Sequence[LifecycleEvent] = ()) -> None:
        def work(connection: Connection) -> None:
            connection.execute(insert(runtimes).values(**as_row(record)))
            insert_labels(connection, record.runtime_id, record.labels)
            insert_events(connection, events)

        try:
            await self._database.write(work)
        except sa_exc.IntegrityError as exc:
            raise RuntimeAlreadyExists(record.runtime_id) from exc

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
        query = select(runtimes).order_by(runtimes.c.runtime_id).limit(limit + 1)
        if status is not None:
            query = query.where(runtimes.c.status == status.value)
        if team_id is not None:
            query = query.where(runtimes.c.team_id == team_id)
        if host_id is not None:
            query = query.where(runtimes.c.host_id == host_id)
        if after is not None:
            query = query.where(runtimes.c.runtime_id > after)
        rows, slots = await self._database.read(
            lambda connection: read_page(connection, query, self._cache)
        )
        built = {row["runtime_id"]: row_to_record(row) for row in rows}
        records = []
        for slot in slots[:limit]:
            record = built.get(slot) if isinstance(slot, str) else slot
            if record is not None:
                records.append(record)
                self._cache.keep(record)
        if len(slots) <= limit:
            return RuntimePage(records, None)
        last = slots[limit - 1]  # the cursor, even if that row was deleted in between
        return RuntimePage(records, last if isinstance(last, str) else last.runtime_id)

    async def count_for_team(self, team_id: str, statuses: Collection[Status]) -> int:
        if not statuses:
            return 0
        query = (
            select(func.count())
            .select_from(runtimes)
            .where(runtimes.c.team_id == team_id)
            .where(runtimes.c.status.in_(sorted(s.value for s in statuses)))
        )
        total = await self._database.read(lambda connection: connection.execute(query).scalar())
        return int(total or 0)

    async def any_in(self, statuses: Collection[Status]) -> bool:
        values = tuple(sorted(s.value for s in statuses))
        if not values:
            return False
        statement = _any_in(values)  # one per set of statuses, kept
        if (native := self._database.native) is not None:
            async with native.reading() as connection:
                row = await statement.first_native(connection, {})
        else:
            row = await self._database.read_point(lambda c: statement.first(c, {}))
        return row is not None

    async def count_live_by_host(self) -> dict[str, int]:
        rows = await self._database.read(lambda connection: connection.execute(_LIVE_BY_HOST).all())
        return {str(host_id): int(count) for host_id, count in rows}

    async def compare_and_swap(
        self,
        change: StatusChange,
        *,
        entry: OperationEntry | None = None,
        events: Sequence[LifecycleEvent] = (),
    ) -> RuntimeRecord:
        """One transaction: the conditional UPDATE, then the entry's and the
        events' INSERTs (on Postgres one statement: cas.py). Zero rows raises
        CasConflict; a taken job_id raises DuplicateJobId and rolls the UPDATE
        back. A move the transition table refuses raises InvalidTransition
        before the database is touched."""
        require_transition(change.expected_status, change.status)
        values = plain_values(change.updated_fields())
        if (native := self._database.native) is not None:
            moved = await compare_and_swap_native(native, change, values, entry, events)
            return row_to_record(moved)
        statement = cas_statement(change, values)
        parameters = cas_parameters(change, values)

        def work(connection: Connection) -> dict[str, Any]:
            row = statement.first(connection, parameters)
            if row is None:
                raise CasConflict(change.runtime_id, change.expected_status.value)
            if entry is not None:
                insert_entry(connection, entry)
            insert_events(connection, events)
            return row

        return row_to_record(await self._database.write_point(work))
