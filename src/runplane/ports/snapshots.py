"""Snapshots: their records, and the drivers that can take them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.domain.snapshots import Snapshot, TakenSnapshot


class SnapshotStore(Protocol):
    async def add(self, snapshot: Snapshot, *, events: Sequence[LifecycleEvent] = ()) -> None:
        """Insert it, with its events in the outbox, in one transaction."""

    async def get(self, snapshot_id: str) -> Snapshot | None: ...

    async def list(
        self, *, team_id: str | None, after: str | None = None, limit: int = 100
    ) -> list[Snapshot]:
        """By id; `team_id` None: every team's."""

    async def delete(self, snapshot_id: str, *, events: Sequence[LifecycleEvent] = ()) -> bool:
        """Delete it, with its events in the outbox; False if it was not there."""


@runtime_checkable
class SnapshotDriver(Protocol):
    """A driver that can take snapshots (process and docker, on this host)."""

    async def snapshot(self, container_id: str, snapshot_id: str) -> TakenSnapshot: ...

    async def delete_snapshot(self, ref: str) -> None:
        """Remove what `snapshot` made; nothing there is no error."""
