"""SnapshotStore contract: SQLite and Postgres answer alike, and a snapshot's
row and its event commit together."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.snapshot_store import SqlSnapshotStore
from runplane.domain.lifecycle_events import Actor, LifecycleEvent
from runplane.domain.snapshots import Snapshot
from runplane.ports.lifecycle_events import Outbox
from runplane.ports.snapshots import SnapshotStore
from tests.support.store_backends import T0, PostgresBackend, SqliteBackend, Stores


@dataclass(frozen=True, slots=True)
class Parts:
    snapshots: SnapshotStore
    outbox: Outbox


def snap(snapshot_id: str, team_id: str = "alpha") -> Snapshot:
    return Snapshot(
        snapshot_id=snapshot_id,
        team_id=team_id,
        runtime_id="alpha:rt",
        driver="process",
        host_id="h-1",
        ref=snapshot_id,
        spec={"command": ["sleep", "1"], "env": {"A": "b"}},
        size_bytes=12,
        created_at=T0,
    )


def event(kind: str, n: int) -> LifecycleEvent:
    return LifecycleEvent(
        f"ev-{kind}-{n}", f"runtime.snapshot.{kind}", "alpha:rt", T0, n, "success", "alpha",
        Actor("system"),
    )  # fmt: skip


class SnapshotStoreContract:
    async def test_a_snapshot_comes_back_whole_with_its_event(self, parts: Parts) -> None:
        await parts.snapshots.add(snap("snap-a"), events=[event("create", 1)])
        assert await parts.snapshots.get("snap-a") == snap("snap-a")
        assert await parts.snapshots.get("snap-b") is None
        assert [e.type for e in await parts.outbox.pending()] == ["runtime.snapshot.create"]

    async def test_lists_by_team_in_id_order_with_a_cursor(self, parts: Parts) -> None:
        for snapshot_id, team in [("snap-c", "alpha"), ("snap-a", "alpha"), ("snap-b", "beta")]:
            await parts.snapshots.add(snap(snapshot_id, team))
        alpha = await parts.snapshots.list(team_id="alpha")
        assert [s.snapshot_id for s in alpha] == ["snap-a", "snap-c"]
        every = await parts.snapshots.list(team_id=None, limit=2)
        assert [s.snapshot_id for s in every] == ["snap-a", "snap-b"]
        rest = await parts.snapshots.list(team_id=None, after="snap-b")
        assert [s.snapshot_id for s in rest] == ["snap-c"]

    async def test_a_delete_commits_with_its_event_once(self, parts: Parts) -> None:
        await parts.snapshots.add(snap("snap-a"))
        assert await parts.snapshots.delete("snap-a", events=[event("delete", 2)])
        assert not await parts.snapshots.delete("snap-a", events=[event("delete", 3)])
        assert await parts.snapshots.get("snap-a") is None
        assert [e.event_id for e in await parts.outbox.pending()] == ["ev-delete-2"]


class TestSqliteSnapshotStore(SqliteBackend, SnapshotStoreContract):
    @pytest.fixture
    def parts(self, stores: Stores, database: SqlDatabase) -> Parts:
        return Parts(SqlSnapshotStore(database), stores.outbox)


class TestPostgresSnapshotStore(PostgresBackend, SnapshotStoreContract):
    @pytest.fixture
    def parts(self, stores: Stores, database: SqlDatabase) -> Parts:
        return Parts(SqlSnapshotStore(database), stores.outbox)
