"""Snapshots (docs/seeds.md#snapshots): taking one from a runtime under its
lease, listing and deleting them, and the spec of a runtime made from one."""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import Callable
from typing import Any

from runplane.domain.errors import DriverError, ErrorCode, RunplaneError
from runplane.domain.lifecycle_events import LifecycleEvent
from runplane.domain.records import RuntimeRecord
from runplane.domain.snapshots import SNAPSHOT_SPEC_KEY, Snapshot, SnapshotNotFound
from runplane.domain.statuses import Status
from runplane.ports.snapshots import SnapshotDriver, SnapshotStore
from runplane.services import lease
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.event_factory import actor_of

logger = logging.getLogger(__name__)

SNAPSHOT_STATUSES = frozenset({Status.RUNNING, Status.PAUSED, Status.STOPPED})
"""A runtime whose container (or work dir) is there and is not changing."""


class SnapshotRefused(RunplaneError):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def new_snapshot_id() -> str:
    return "snap-" + secrets.token_hex(10)  # lowercase: it names a docker image


class Snapshots:
    def __init__(
        self,
        deps: Dependencies,
        store: SnapshotStore,
        *,
        new_id: Callable[[], str] = new_snapshot_id,
    ) -> None:
        self.deps = deps
        self.store = store
        self.new_id = new_id

    async def take(self, runtime_id: str, *, team_scope: str | None, actor: str) -> Snapshot:
        record = await self._visible_runtime(runtime_id, team_scope)
        driver = self._driver(record)
        token = self.deps.tokens.new_token()
        deps = self.deps
        if not await lease.acquire(deps.leases, runtime_id, token, deps.lease_ttl_ms, 0):
            raise SnapshotRefused(ErrorCode.CONFLICT, "another operation holds the runtime")
        async with lease.kept_alive(deps.leases, runtime_id, token, deps.lease_ttl_ms):
            # Re-read under the lease: the container to copy is the one it holds now.
            record = await self._visible_runtime(runtime_id, team_scope)
            assert record.container_id is not None  # checked by _visible_runtime
            snapshot_id = self.new_id()
            try:
                taken = await driver.snapshot(record.container_id, snapshot_id)
            except DriverError as exc:
                raise SnapshotRefused(ErrorCode.SERVICE_UNAVAILABLE, str(exc)) from exc
            snapshot = Snapshot(
                snapshot_id=snapshot_id,
                team_id=record.team_id,
                runtime_id=runtime_id,
                driver=record.driver,
                host_id=record.host_id or "",
                ref=taken.ref,
                spec=_template(record.spec),
                size_bytes=taken.size_bytes,
                created_at=deps.clock.now(),
            )
            try:
                await self.store.add(
                    snapshot, events=[self._event(snapshot, record, "create", actor)]
                )
            except BaseException:
                await _quietly(driver.delete_snapshot(taken.ref))  # no record, no image
                raise
        logger.info(
            "snapshot taken",
            extra={"runtime_id": runtime_id, "snapshot_id": snapshot_id, "ref": taken.ref},
        )
        return snapshot

    async def get(self, snapshot_id: str, *, team_scope: str | None) -> Snapshot:
        snapshot = await self.store.get(snapshot_id)
        if snapshot is None or (team_scope is not None and snapshot.team_id != team_scope):
            raise SnapshotNotFound(f"no snapshot {snapshot_id!r}")
        return snapshot

    async def list(
        self, *, team_scope: str | None, after: str | None, limit: int
    ) -> list[Snapshot]:
        return await self.store.list(team_id=team_scope, after=after, limit=limit)

    async def delete(self, snapshot_id: str, *, team_scope: str | None, actor: str) -> Snapshot:
        snapshot = await self.get(snapshot_id, team_scope=team_scope)
        user = await self._a_runtime_made_from(snapshot)
        if user is not None:
            # Every start of it needs the snapshot again: a process runtime's
            # work dir is filled anew, a container is made from the image.
            raise SnapshotRefused(
                ErrorCode.CONFLICT,
                f"runtime {user!r} was made from {snapshot_id!r}: remove it first",
            )
        driver = self.deps.driver_on(snapshot.host_id or None, snapshot.driver)
        if not isinstance(driver, SnapshotDriver):
            raise SnapshotRefused(ErrorCode.INVALID_STATE, _not_here(snapshot.host_id))
        try:
            await driver.delete_snapshot(snapshot.ref)
        except DriverError as exc:  # e.g. a container still runs the image
            raise SnapshotRefused(ErrorCode.CONFLICT, str(exc)) from exc
        event = self._event(snapshot, None, "delete", actor)
        await self.store.delete(snapshot_id, events=[event])
        return snapshot

    async def spec_from(
        self, snapshot_id: str, *, team_scope: str | None, overrides: dict[str, Any]
    ) -> tuple[Snapshot, dict[str, Any]]:
        """The driver and spec of a new runtime made from the snapshot: its
        template, the caller's fields over it, on the snapshot's host."""
        snapshot = await self.get(snapshot_id, team_scope=team_scope)
        spec = {**copy.deepcopy(snapshot.spec), **copy.deepcopy(overrides)}
        placement = dict(spec.get("placement") or {})
        placement["host_id"] = snapshot.host_id
        spec["placement"] = placement
        spec[SNAPSHOT_SPEC_KEY] = snapshot.snapshot_id
        return snapshot, spec

    async def _a_runtime_made_from(self, snapshot: Snapshot) -> str | None:
        """A runtime of the snapshot's team (not removed) that starts from it.
        A scan of the team's records: deletes are rare, teams' lists bounded."""
        after: str | None = None
        while True:
            page = await self.deps.runtimes.list(team_id=snapshot.team_id, after=after, limit=500)
            for record in page.records:
                if (
                    record.status is not Status.REMOVED
                    and record.spec.get(SNAPSHOT_SPEC_KEY) == snapshot.snapshot_id
                ):
                    return record.runtime_id
            if page.next_cursor is None:
                return None
            after = page.next_cursor

    async def _visible_runtime(self, runtime_id: str, team_scope: str | None) -> RuntimeRecord:
        record = await self.deps.runtimes.get(runtime_id)
        if record is None or (team_scope is not None and record.team_id != team_scope):
            raise SnapshotRefused(ErrorCode.NOT_FOUND, f"no runtime {runtime_id!r}")
        if record.status not in SNAPSHOT_STATUSES or record.container_id is None:
            raise SnapshotRefused(
                ErrorCode.INVALID_STATE,
                f"runtime {runtime_id!r} is {record.status}: a snapshot is taken of a "
                "running, paused or stopped runtime",
            )
        return record

    def _driver(self, record: RuntimeRecord) -> SnapshotDriver:
        driver = self.deps.driver_on(record.host_id, record.driver)
        if not isinstance(driver, SnapshotDriver):
            raise SnapshotRefused(ErrorCode.INVALID_STATE, _not_here(record.host_id))
        return driver

    def _event(
        self, snapshot: Snapshot, record: RuntimeRecord | None, what: str, actor: str
    ) -> LifecycleEvent:
        return LifecycleEvent(
            id=self.deps.tokens.new_token(),
            type=f"runtime.snapshot.{what}",
            runtime_id=snapshot.runtime_id,
            time=self.deps.clock.now(),
            sequence=record.version if record is not None else 0,
            outcome="success",
            team_id=snapshot.team_id,
            actor=actor_of(actor),
            source=self.deps.event_source,
            metadata={"snapshot_id": snapshot.snapshot_id, "ref": snapshot.ref},
            host_id=snapshot.host_id or None,
        )


def _template(spec: dict[str, Any]) -> dict[str, Any]:
    """What a runtime made from the snapshot starts with: the source's spec
    without what named the source's own image or snapshot."""
    template = copy.deepcopy(spec)
    template.pop(SNAPSHOT_SPEC_KEY, None)
    template.pop("image", None)  # docker: the snapshot's image replaces it
    return template


def _not_here(host_id: str | None) -> str:
    return (
        f"snapshots are taken and deleted on the instance whose embedded host holds "
        f"the runtime (host {host_id!r}); snapshots through a remote agent are not built yet"
    )


async def _quietly(work: Any) -> None:
    try:
        await work
    except Exception:
        logger.exception("snapshot left on the host after its record failed")
