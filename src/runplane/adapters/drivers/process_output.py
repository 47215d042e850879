"""The process driver's `logs` and `metrics` (mixed into `ProcessDriver`): its
runtimes' output segments, read from the state dir, and their resources,
sampled on this host with psutil while someone watches."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from runplane.adapters.drivers.output_settings import OutputSettings
from runplane.adapters.drivers.process_files import (
    ContainerFiles,
    live_process,
    parse_container_id,
    read_json,
    runtime_of,
)
from runplane.adapters.drivers.process_logs import read_output
from runplane.adapters.drivers.process_metrics import read_resources
from runplane.adapters.drivers.process_user import RuntimeSandbox
from runplane.adapters.drivers.resource_history import Reading, ResourceHistory
from runplane.adapters.drivers.runtime_series import exporter
from runplane.adapters.drivers.supervisor_output import segment_name, segments
from runplane.domain.errors import ContainerGone
from runplane.domain.runtime_output import LogChunk, LogQuery, MetricsWindow


class ProcessOutput:
    _containers: Path
    _sandbox: RuntimeSandbox
    _output: OutputSettings
    _history: ResourceHistory | None = None

    def log_settings(self) -> dict[str, int]:
        """What the supervisor is told (the launch's meta file)."""
        return {"max_bytes": self._output.log_max_bytes, "files": self._output.log_files}

    def log_path(self, container_id: str) -> Path:
        """The container's newest output segment (it may not exist)."""
        folder = self._folder(container_id)
        found = segments(str(folder))
        return folder / segment_name(found[-1] if found else 0)

    async def logs(self, container_id: str, query: LogQuery) -> LogChunk:
        folder = self._folder(container_id)
        return await asyncio.to_thread(_read_logs, folder, container_id, query)

    async def metrics(self, container_id: str, window_s: float) -> MetricsWindow:
        self._folder(container_id)
        return await self.resource_history().window(container_id, window_s)

    def resource_history(self) -> ResourceHistory:
        if self._history is None:
            settings = self._output
            self._history = ResourceHistory(
                self._read_resources,
                interval_s=settings.metrics_interval_s,
                watch_s=settings.metrics_watch_s,
                everything=self._running_containers if settings.metrics_per_runtime else None,
                export=exporter("process") if settings.metrics_per_runtime else None,
            )
        return self._history

    async def _read_resources(self, container_ids: Sequence[str]) -> dict[str, Reading | None]:
        work_dirs = {cid: self._work_dir(cid) for cid in container_ids}
        return await asyncio.to_thread(read_resources, container_ids, work_dirs)

    def _work_dir(self, container_id: str) -> Path | None:
        runtime_id = runtime_of(ContainerFiles(self._containers / container_id))
        return self._sandbox.work_dir(runtime_id) if runtime_id is not None else None

    async def _running_containers(self) -> dict[str, str]:
        return await asyncio.to_thread(self._live_names)

    def _live_names(self) -> dict[str, str]:
        try:
            names = os.listdir(self._containers)
        except FileNotFoundError:
            return {}
        found = {}
        for name in names:
            if parse_container_id(name) is not None and _running(name):
                runtime_id = runtime_of(ContainerFiles(self._containers / name))
                if runtime_id is not None:
                    found[name] = runtime_id
        return found

    def _folder(self, container_id: str) -> Path:
        if parse_container_id(container_id) is None:
            raise ContainerGone(container_id)
        return self._containers / container_id


def _read_logs(folder: Path, container_id: str, query: LogQuery) -> LogChunk:
    if not folder.is_dir():
        raise ContainerGone(container_id)
    # Taken before the read: a read that finds the runtime ended has all it wrote.
    producing = _producing(folder, container_id)
    return read_output(folder, query, running=producing)


def _producing(folder: Path, container_id: str) -> bool:
    """Whether more output may come: until the supervisor has written the last
    of it, which it does before recording the end."""
    files = ContainerFiles(folder)
    if files.exit.exists():
        return False
    if _running(container_id):
        return True
    state = read_json(files.state) or {}
    pid, ticks = state.get("supervisor_pid"), state.get("supervisor_start_ticks")
    supervisor = (
        live_process(pid, ticks) if isinstance(pid, int) and isinstance(ticks, int) else None
    )
    return supervisor is not None and not supervisor.zombie


def _running(container_id: str) -> bool:
    parsed = parse_container_id(container_id)
    stat = live_process(*parsed) if parsed is not None else None
    return stat is not None and not stat.zombie
