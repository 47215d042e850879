"""SqlSnapshotStore: snapshot records, with their events in the outbox."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, RowMapping, delete, insert, select

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.outbox import insert_events
from runplane.adapters.sql.tables import snapshots
from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.domain.snapshots import Snapshot


def _row_to_snapshot(row: RowMapping) -> Snapshot:
    return Snapshot(
        snapshot_id=row["snapshot_id"],
        team_id=row["team_id"],
        runtime_id=row["runtime_id"],
        driver=row["driver"],
        host_id=row["host_id"],
        ref=row["ref"],
        spec=dict(row["spec"]),
        size_bytes=row["size_bytes"],
        created_at=row["created_at"],
    )


class SqlSnapshotStore:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def add(self, snapshot: Snapshot, *, events: Sequence[LifecycleEvent] = ()) -> None:
        row = {
            "snapshot_id": snapshot.snapshot_id,
            "team_id": snapshot.team_id,
            "runtime_id": snapshot.runtime_id,
            "driver": snapshot.driver,
            "host_id": snapshot.host_id,
            "ref": snapshot.ref,
            "spec": snapshot.spec,
            "size_bytes": snapshot.size_bytes,
            "created_at": snapshot.created_at,
        }

        def run(connection: Connection) -> None:
            connection.execute(insert(snapshots), [row])
            insert_events(connection, events)

        await self._database.write(run)

    async def get(self, snapshot_id: str) -> Snapshot | None:
        query = select(snapshots).where(snapshots.c.snapshot_id == snapshot_id)
        row = await self._database.read(lambda c: c.execute(query).mappings().first())
        return None if row is None else _row_to_snapshot(row)

    async def list(
        self, *, team_id: str | None, after: str | None = None, limit: int = 100
    ) -> list[Snapshot]:
        query = select(snapshots).order_by(snapshots.c.snapshot_id).limit(limit)
        if team_id is not None:
            query = query.where(snapshots.c.team_id == team_id)
        if after is not None:
            query = query.where(snapshots.c.snapshot_id > after)
        rows = await self._database.read(lambda c: c.execute(query).mappings().all())
        return [_row_to_snapshot(row) for row in rows]

    async def delete(self, snapshot_id: str, *, events: Sequence[LifecycleEvent] = ()) -> bool:
        statement = delete(snapshots).where(snapshots.c.snapshot_id == snapshot_id)

        def run(connection: Connection) -> bool:
            deleted = connection.execute(statement).rowcount
            if deleted:
                insert_events(connection, events)
            return bool(deleted)

        return await self._database.write(run)
