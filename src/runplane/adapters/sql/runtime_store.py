"""SqlRuntimeStore: runtime records, written only by compare-and-swap."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, RowMapping, insert, select, update
from sqlalchemy import exc as sa_exc

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.operation_log import insert_entry
from runplane.adapters.sql.tables import as_row, plain_values, runtimes
from runplane.domain.errors import CasConflict, RuntimeAlreadyExists
from runplane.domain.records import OperationEntry, RuntimeRecord, StatusChange
from runplane.domain.statuses import Status
from runplane.ports import RuntimePage


def row_to_record(row: RowMapping) -> RuntimeRecord:
    values: dict[str, Any] = dict(row)
    values["status"] = Status(values["status"])
    values["spec"] = dict(values["spec"])
    return RuntimeRecord(**values)


def cas_predicates(change: StatusChange) -> tuple[ColumnElement[bool], ...]:
    """The row `change` expects: same id, status and version [and container_id]."""
    predicates = (
        runtimes.c.runtime_id == change.runtime_id,
        runtimes.c.status == change.expected_status.value,
        runtimes.c.version == change.expected_version,
    )
    if not change.checks_container:
        return predicates
    expected = change.expected_container_id
    container = runtimes.c.container_id
    return (*predicates, container.is_(None) if expected is None else container == expected)


class SqlRuntimeStore:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def get(self, runtime_id: str) -> RuntimeRecord | None:
        query = select(runtimes).where(runtimes.c.runtime_id == runtime_id)
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else row_to_record(row)

    async def create(self, record: RuntimeRecord) -> None:
        try:
            async with self._database.writing() as connection:
                await connection.execute(insert(runtimes).values(**as_row(record)))
        except sa_exc.IntegrityError as exc:
            raise RuntimeAlreadyExists(record.runtime_id) from exc

    async def list(
        self,
        *,
        status: Status | None = None,
        team_id: str | None = None,
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
        if after is not None:
            query = query.where(runtimes.c.runtime_id > after)
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        records = [row_to_record(row) for row in rows[:limit]]
        more = len(rows) > limit
        return RuntimePage(records, records[-1].runtime_id if more else None)

    async def compare_and_swap(
        self, change: StatusChange, *, entry: OperationEntry | None = None
    ) -> RuntimeRecord:
        """One transaction: the conditional UPDATE, then the entry's INSERT. Zero
        rows raises CasConflict; a taken job_id raises DuplicateJobId and rolls
        the UPDATE back."""
        statement = (
            update(runtimes)
            .where(*cas_predicates(change))
            .values(**plain_values(change.updated_fields()))
            .returning(*runtimes.c)
        )
        async with self._database.writing() as connection:
            row = (await connection.execute(statement)).mappings().first()
            if row is None:
                raise CasConflict(change.runtime_id, change.expected_status.value)
            if entry is not None:
                await insert_entry(connection, entry)
        return row_to_record(row)
