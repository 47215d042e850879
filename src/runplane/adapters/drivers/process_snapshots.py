"""Snapshots of process runtimes: a copy of the runtime's working directory,
kept under the driver's state dir, copied again into the work dir of each
runtime started from it (so the snapshot stays as it was taken)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.process_files import ContainerFiles, runtime_of
from runplane.domain.drivers import StartedContainer
from runplane.domain.errors import DriverError
from runplane.domain.snapshots import SNAPSHOT_SPEC_KEY, TakenSnapshot, is_valid_snapshot_id

SNAPSHOTS_DIR = "snapshots"


def tree_size(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


class SnapshottingProcessDriver(ProcessDriver):
    """The process driver, able to take snapshots and start from them."""

    def __init__(self, state_dir: Path, **options: Any) -> None:
        super().__init__(state_dir, **options)
        self._snapshots = Path(state_dir).resolve() / SNAPSHOTS_DIR

    def _snapshot_dir(self, snapshot_id: str) -> Path:
        if not is_valid_snapshot_id(snapshot_id):  # never a path of a caller's choosing
            raise DriverError(f"{snapshot_id!r} is not a snapshot id")
        return self._snapshots / snapshot_id

    async def snapshot(self, container_id: str, snapshot_id: str) -> TakenSnapshot:
        return await asyncio.to_thread(self._copy_out, container_id, snapshot_id)

    def _copy_out(self, container_id: str, snapshot_id: str) -> TakenSnapshot:
        runtime_id = runtime_of(ContainerFiles(self._containers / container_id))
        if runtime_id is None:
            raise DriverError(f"no process runtime {container_id!r} on this host")
        source = self.sandbox.work_dir(runtime_id)
        if not source.is_dir():
            raise DriverError(f"runtime {runtime_id!r} has no working directory to copy")
        target = self._snapshot_dir(snapshot_id)
        self._snapshots.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            # Symlinks are copied as links, never followed out of the work dir.
            shutil.copytree(source, partial, symlinks=True)
            partial.rename(target)  # all or nothing: a crash leaves only .partial
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise DriverError(f"cannot copy the working directory: {exc}") from exc
        return TakenSnapshot(snapshot_id, tree_size(target))

    async def delete_snapshot(self, ref: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._snapshot_dir(ref), True)

    async def start(self, runtime_id: str, spec: dict[str, Any]) -> StartedContainer:
        snapshot_id = spec.get(SNAPSHOT_SPEC_KEY)
        if snapshot_id is not None:
            await asyncio.to_thread(self._copy_in, runtime_id, snapshot_id)
        return await super().start(runtime_id, spec)

    def _copy_in(self, runtime_id: str, snapshot_id: str) -> None:
        """Fill the runtime's work dir from the snapshot. It is empty at each start
        (it goes with the runtime's last container); a non-empty one is left as is."""
        source = self._snapshot_dir(snapshot_id)
        if not source.is_dir():
            raise DriverError(f"snapshot {snapshot_id!r} is not on this host")
        work_dir = self.sandbox.prepare(runtime_id)
        if any(work_dir.iterdir()):
            return
        try:
            shutil.copytree(source, work_dir, symlinks=True, dirs_exist_ok=True)
        except OSError as exc:
            raise DriverError(f"cannot copy snapshot {snapshot_id!r}: {exc}") from exc
        user = self.sandbox.user
        if user.switch:  # the runtime's user owns its files, as in a fresh work dir
            for folder, dirs, files in os.walk(work_dir):
                for name in (*dirs, *files):
                    os.chown(os.path.join(folder, name), user.uid, user.gid, follow_symlinks=False)
