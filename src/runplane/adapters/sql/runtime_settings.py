"""SqlRuntimeSettings: labels, timeouts and idle rules of runtime rows
(ports/runtime_settings.py). Labels live twice, written in one transaction:
as JSON on the runtime row (read with the record) and as `runtime_labels`
rows (selected through their (key, value) index)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    delete,
    or_,
    select,
    update,
)

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.label_tables import runtime_labels
from runplane.adapters.sql.record_cache import RecordCache, read_page
from runplane.adapters.sql.runtime_store import insert_labels, row_to_record
from runplane.adapters.sql.tables import runtimes
from runplane.domain.records import Keep, RuntimeRecord
from runplane.domain.runtime_settings import IdleRule, LabelTerm, Match
from runplane.domain.statuses import Status
from runplane.ports.lifecycle import RuntimePage


def term_clause(term: LabelTerm) -> ColumnElement[bool]:
    """One selector term as a condition on `runtimes` (a subquery on the
    label rows' (key, value) index)."""
    holders = select(runtime_labels.c.runtime_id).where(runtime_labels.c.key == term.key)
    if term.match in (Match.EQUALS, Match.NOT_EQUALS):
        holders = holders.where(runtime_labels.c.value == term.value)
    if term.match in (Match.EQUALS, Match.EXISTS):
        return runtimes.c.runtime_id.in_(holders)
    return runtimes.c.runtime_id.not_in(holders)


class SqlRuntimeSettings:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database
        self._cache = RecordCache(size=20_000)

    async def _returning(self, statement: Any, also: Any = None) -> RuntimeRecord | None:
        def work(connection: Connection) -> Any:
            row = connection.execute(statement.returning(*runtimes.c)).mappings().first()
            if row is not None and also is not None:
                also(connection)
            return row

        row = await self._database.write(work)
        return None if row is None else row_to_record(row)

    async def set_timeout(
        self,
        runtime_id: str,
        *,
        expected: datetime | None,
        timeout_at: datetime | None,
        on_timeout: str | Keep | None,
        at: datetime,
    ) -> RuntimeRecord | None:
        current = runtimes.c.timeout_at
        values: dict[str, Any] = {"timeout_at": timeout_at, "updated_at": at}
        if on_timeout is not Keep.KEEP:
            values["on_timeout"] = on_timeout
        statement = (
            update(runtimes)
            .where(runtimes.c.runtime_id == runtime_id)
            .where(current.is_(None) if expected is None else current == expected)
            .values(values)
        )
        return await self._returning(statement)

    async def update(
        self,
        runtime_id: str,
        *,
        labels: dict[str, str] | Keep = Keep.KEEP,
        idle: IdleRule | Keep | None = Keep.KEEP,
        at: datetime,
    ) -> RuntimeRecord | None:
        values: dict[str, Any] = {"updated_at": at}
        if labels is not Keep.KEEP:
            values["labels"] = labels
        if idle is not Keep.KEEP:
            values["idle_after_s"] = None if idle is None else idle.after_s
            values["idle_action"] = None if idle is None else str(idle.action)
            if idle is not None:  # a new rule counts from now, not from the start
                values["active_at"] = at
        statement = update(runtimes).where(runtimes.c.runtime_id == runtime_id).values(values)

        def relabel(connection: Connection) -> None:
            if labels is Keep.KEEP:
                return
            connection.execute(
                delete(runtime_labels).where(runtime_labels.c.runtime_id == runtime_id)
            )
            insert_labels(connection, runtime_id, labels)

        return await self._returning(statement, relabel)

    async def mark_active(self, runtime_ids: Sequence[str], at: datetime) -> None:
        if not runtime_ids:
            return
        statement = (
            update(runtimes)
            .where(runtimes.c.runtime_id.in_(list(runtime_ids)))
            .where(or_(runtimes.c.active_at.is_(None), runtimes.c.active_at < at))
            .values(active_at=at, updated_at=at)
        )
        await self._database.write(lambda connection: connection.execute(statement))

    async def due_timeouts(self, now: datetime, *, limit: int = 100) -> list[RuntimeRecord]:
        query = (
            select(runtimes)
            .where(runtimes.c.timeout_at <= now)  # ix_runtimes_timeout_at
            .order_by(runtimes.c.timeout_at)
            .limit(limit)
        )
        return await self._records(query)

    async def idle_watched(self, *, limit: int = 10_000) -> list[RuntimeRecord]:
        query = (
            select(runtimes)
            .where(runtimes.c.status == Status.RUNNING.value)
            .where(runtimes.c.idle_after_s.is_not(None))  # ix_runtimes_status_idle_after_s
            .order_by(runtimes.c.runtime_id)
            .limit(limit)
        )
        return await self._cached(query)

    async def _cached(self, query: Select[Any]) -> list[RuntimeRecord]:
        """The records of `query`, reusing those already built whose row has
        not changed (record_cache.py): the idle round reads the same rows
        every second."""
        rows, slots = await self._database.read(
            lambda connection: read_page(connection, query, self._cache)
        )
        built = {row["runtime_id"]: row_to_record(row) for row in rows}
        records: list[RuntimeRecord] = []
        for slot in slots:
            record = built.get(slot) if isinstance(slot, str) else slot
            if record is not None:
                records.append(record)
                self._cache.keep(record)
        return records

    async def _records(self, query: Select[Any]) -> list[RuntimeRecord]:
        rows = await self._database.read(
            lambda connection: connection.execute(query).mappings().all()
        )
        return [row_to_record(row) for row in rows]

    async def list(
        self,
        selector: Sequence[LabelTerm],
        *,
        status: Status | None = None,
        team_id: str | None = None,
        host_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> RuntimePage:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = select(runtimes).order_by(runtimes.c.runtime_id).limit(limit + 1)
        for term in selector:
            query = query.where(term_clause(term))
        if status is not None:
            query = query.where(runtimes.c.status == status.value)
        if team_id is not None:
            query = query.where(runtimes.c.team_id == team_id)
        if host_id is not None:
            query = query.where(runtimes.c.host_id == host_id)
        if after is not None:
            query = query.where(runtimes.c.runtime_id > after)
        records = await self._cached(query)
        if len(records) <= limit:
            return RuntimePage(records, None)
        return RuntimePage(records[:limit], records[limit - 1].runtime_id)
