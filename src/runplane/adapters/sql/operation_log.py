"""SqlOperationLog: one row per operation call; `job_id` is unique per team."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, RowMapping, Select, bindparam, insert, select
from sqlalchemy import exc as sa_exc

from runplane.adapters.sql.direct import DirectStatement
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.outbox import insert_events
from runplane.adapters.sql.tables import as_row, operations
from runplane.domain.errors import DuplicateJobId, ErrorCode
from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.records import OperationEntry
from runplane.domain.statuses import Status

_E = TypeVar("_E")


def _optional(kind: Callable[[str], _E], value: str | None) -> _E | None:
    return None if value is None else kind(value)


def row_to_entry(row: Mapping[str, Any] | RowMapping) -> OperationEntry:
    return OperationEntry(
        operation_id=row["operation_id"],
        runtime_id=row["runtime_id"],
        op=OpKind(row["op"]),
        op_source=OpSource(row["op_source"]),
        outcome=Outcome(row["outcome"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        team_id=row["team_id"],
        error_code=_optional(ErrorCode, row["error_code"]),
        error_message=row["error_message"],
        job_id=row["job_id"],
        source_ref=row["source_ref"],
        reason=row["reason"],
        status_from=_optional(Status, row["status_from"]),
        status_to=_optional(Status, row["status_to"]),
        container_id=row["container_id"],
        actor=row["actor"],
        details=dict(row["details"]),
    )


_BY_OPERATION_ID = select(operations).where(operations.c.operation_id == bindparam("operation_id"))
_BY_JOB_ID = DirectStatement(
    select(operations).where(
        (operations.c.job_team == bindparam("job_team"))
        & (operations.c.job_id == bindparam("job_id"))
    ),
    returns=tuple(operations.c),
)
"""Compiled once, run on the DBAPI cursor (direct.py): every job looks its job_id up."""


@functools.lru_cache(maxsize=8)
def _insert(columns: tuple[str, ...]) -> DirectStatement:
    """The INSERT of an entry's columns (seq is the database's), compiled once."""
    return DirectStatement(insert(operations).inline(), column_keys=columns)


def job_team(team_id: str | None) -> str:
    """The `job_team` column of an entry of `team_id`: "" for no team."""
    return team_id or ""


def entry_row(entry: OperationEntry) -> dict[str, Any]:
    """`entry`'s column values (seq is the database's)."""
    return as_row(entry) | {"job_team": job_team(entry.team_id)}


def insert_entry(connection: Connection, entry: OperationEntry) -> None:
    """Insert `entry` in the caller's transaction; a job_id taken in its team
    raises DuplicateJobId, and the caller's transaction then rolls back."""
    row = entry_row(entry)
    try:
        _insert(tuple(row)).execute_many(connection, (row,))
    except sa_exc.IntegrityError as exc:
        duplicate = taken_job_id(entry, exc)
        if duplicate is None:
            raise
        raise duplicate from exc


def taken_job_id(entry: OperationEntry, exc: sa_exc.IntegrityError) -> DuplicateJobId | None:
    """DuplicateJobId when inserting `entry` failed with `exc` because its
    job_id is taken in its team, else None."""
    if entry.job_id is not None and "job_id" in str(exc.orig):
        return DuplicateJobId(entry.job_id)
    return None


class SqlOperationLog:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def append(self, entry: OperationEntry, *, events: Sequence[LifecycleEvent] = ()) -> None:
        def work(connection: Connection) -> None:
            insert_entry(connection, entry)
            insert_events(connection, events)

        await self._database.write(work)

    async def list_for_runtime(
        self, runtime_id: str, *, team_id: str | None = None, limit: int = 100
    ) -> list[OperationEntry]:
        """Newest first: by finished_at, then by the order they were appended."""
        query = select(operations).where(operations.c.runtime_id == runtime_id)
        if team_id is not None:
            query = query.where(operations.c.team_id == team_id)
        query = query.order_by(operations.c.finished_at.desc(), operations.c.seq.desc()).limit(
            limit
        )
        rows = await self._database.read(
            lambda connection: connection.execute(query).mappings().all()
        )
        return [row_to_entry(row) for row in rows]

    async def get(self, operation_id: str) -> OperationEntry | None:
        return await self._find_one(_BY_OPERATION_ID, {"operation_id": operation_id})

    async def find_by_job_id(self, team_id: str | None, job_id: str) -> OperationEntry | None:
        parameters = {"job_team": job_team(team_id), "job_id": job_id}
        if (native := self._database.native) is not None:
            async with native.reading() as connection:
                row = await _BY_JOB_ID.first_native(connection, parameters)
        else:
            row = await self._database.read_point(lambda c: _BY_JOB_ID.first(c, parameters))
        return None if row is None else row_to_entry(row)

    async def _find_one(
        self, query: Select[Any], parameters: dict[str, Any]
    ) -> OperationEntry | None:
        row = await self._database.read(
            lambda connection: connection.execute(query, parameters).mappings().first()
        )
        return None if row is None else row_to_entry(row)
