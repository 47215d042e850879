"""SqlEngineHealthStore: a record's engine-health summary, written alone.

`UPDATE runtimes SET engine_health, updated_at WHERE runtime_id AND status AND
container_id`: guarded like a CAS, but not one — the version stays, since the
summary is an observation, not a status change an operation could race.
`set_engine_healths` makes a batch's writes in one transaction, `records`
reads a batch's records in one SELECT (chunked below SQLite's
bound-parameter limit)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Connection, Update, select, update

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.runtime_store import row_to_record
from runplane.adapters.sql.tables import runtimes
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.ports.health import SummaryWrite

_CHUNK = 500


class SqlEngineHealthStore:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def set_engine_health(
        self,
        runtime_id: str,
        summary: str,
        *,
        status: Status,
        container_id: str | None,
        at: datetime,
    ) -> RuntimeRecord | None:
        written = await self.set_engine_healths(
            [SummaryWrite(runtime_id, summary, status, container_id)], at=at
        )
        return written.get(runtime_id)

    async def set_engine_healths(
        self, writes: Sequence[SummaryWrite], *, at: datetime
    ) -> dict[str, RuntimeRecord]:
        def work(connection: Connection) -> dict[str, RuntimeRecord]:
            written = {}
            for write in writes:
                row = connection.execute(_guarded(write, at)).mappings().first()
                if row is not None:
                    written[write.runtime_id] = row_to_record(row)
            return written

        if not writes:
            return {}
        return await self._database.write(work)

    async def records(self, runtime_ids: Collection[str]) -> dict[str, RuntimeRecord]:
        ids = list(dict.fromkeys(runtime_ids))
        chunks = [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]

        def work(connection: Connection) -> list[RuntimeRecord]:
            found: list[RuntimeRecord] = []
            for chunk in chunks:
                query = select(runtimes).where(runtimes.c.runtime_id.in_(chunk))
                found.extend(row_to_record(r) for r in connection.execute(query).mappings())
            return found

        if not chunks:
            return {}
        return {record.runtime_id: record for record in await self._database.read(work)}


def _guarded(write: SummaryWrite, at: datetime) -> Update:
    container = runtimes.c.container_id
    return (
        update(runtimes)
        .where(
            runtimes.c.runtime_id == write.runtime_id,
            runtimes.c.status == write.status.value,
            container.is_(None) if write.container_id is None else container == write.container_id,
        )
        .values(engine_health=write.summary, updated_at=at)
        .returning(*runtimes.c)
    )
