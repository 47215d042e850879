"""SqlHealthSnapshotStore: the health_snapshots rows, upserted in one statement
(INSERT ... ON CONFLICT DO UPDATE on SQLite and Postgres alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.health_tables import health_snapshots
from runplane.domain.health.events import HealthEventType
from runplane.domain.health.reactions import HealthSnapshot, HealthSummary

_UPDATED = ("container_id", "event_type", "summary", "details", "observed_at")


def _values(snapshot: HealthSnapshot) -> dict[str, Any]:
    return {
        "runtime_id": snapshot.runtime_id,
        "container_id": snapshot.container_id,
        "event_type": str(snapshot.event_type),
        "summary": str(snapshot.summary),
        "details": snapshot.details,
        "observed_at": snapshot.observed_at,
    }


class SqlHealthSnapshotStore:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def upsert(self, snapshot: HealthSnapshot) -> None:
        async with self._database.writing() as connection:
            await connection.execute(self._upsert(_values(snapshot)))

    async def get(self, runtime_id: str) -> HealthSnapshot | None:
        query = select(health_snapshots).where(health_snapshots.c.runtime_id == runtime_id)
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).mappings().first()
        if row is None:
            return None
        return HealthSnapshot(
            runtime_id=row["runtime_id"],
            container_id=row["container_id"],
            event_type=HealthEventType(row["event_type"]),
            summary=HealthSummary(row["summary"]),
            observed_at=row["observed_at"],
            details=dict(row["details"]),
        )

    def _upsert(self, values: dict[str, Any]) -> Insert:
        key = [health_snapshots.c.runtime_id]
        if self._database.backend == "postgresql":
            pg = postgresql.insert(health_snapshots).values(**values)
            return pg.on_conflict_do_update(
                index_elements=key, set_={name: pg.excluded[name] for name in _UPDATED}
            )
        lite = sqlite.insert(health_snapshots).values(**values)
        return lite.on_conflict_do_update(
            index_elements=key, set_={name: lite.excluded[name] for name in _UPDATED}
        )
