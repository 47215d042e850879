"""One look at a process container: its files and /proc say whether its process
is running, paused, ended (and how), or gone."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runplane.adapters.drivers.process_files import (
    ContainerFiles,
    ProcStat,
    live_process,
    parse_container_id,
    read_json,
    read_meta,
)
from runplane.domain.drivers import ContainerInfo, ContainerState


@dataclass(frozen=True, slots=True)
class Observation:
    """One look at a container. `pgid` is set while its process is live;
    `settling` while it has ended but its supervisor (`supervisor`: its pid
    and start ticks, when known) has not yet recorded how."""

    info: ContainerInfo
    pgid: int | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    settling: bool = False
    start_ticks: int = 0
    supervisor: tuple[int, int] | None = None


def observe(containers: Path, container_id: str) -> Observation:
    if parse_container_id(container_id) is None:
        return missing(container_id, "not a process container id")
    files = ContainerFiles(containers / container_id)
    state = read_json(files.state)
    meta = read_meta(files, state)
    if meta is None:
        return missing(container_id, "no such container")
    spec: dict[str, Any] = meta.get("spec", {})
    exited = read_json(files.exit)
    if exited is not None:
        return Observation(exited_info(container_id, exited), spec=spec)
    if state is None:
        return missing(container_id, "the container has no state file")
    stat = live_process(state["pid"], state["start_ticks"])
    supervisor = state["supervisor_pid"], state["supervisor_start_ticks"]
    if stat is not None and not stat.zombie:
        status = ContainerState.PAUSED if stat.stopped else ContainerState.RUNNING
        info = ContainerInfo(container_id, status)
        ticks = state["start_ticks"]
        return Observation(info, state["pid"], spec, start_ticks=ticks, supervisor=supervisor)
    # The process ended; its supervisor records how next, unless it is gone too.
    if read_json(files.exit) is not None:
        return observe(containers, container_id)
    stat = live_process(*supervisor)
    if stat is None or stat.zombie:
        return missing(container_id, "the process and its supervisor are gone")
    info = ContainerInfo(
        container_id, ContainerState.EXITED, detail="exited; exit status not recorded yet"
    )
    return Observation(info, spec=spec, settling=True, supervisor=supervisor)


def missing(container_id: str, detail: str) -> Observation:
    return Observation(ContainerInfo(container_id, ContainerState.MISSING, detail=detail))


def exited_info(container_id: str, record: dict[str, Any]) -> ContainerInfo:
    exit_code, sig = record.get("exit_code"), record.get("signal")
    detail = f"killed by {signal_name(sig)}" if sig else f"exited with code {exit_code}"
    return ContainerInfo(container_id, ContainerState.EXITED, exit_code, sig, detail)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True, slots=True)
class _Seen:
    pid: int
    start_ticks: int
    state_ino: int
    spec: dict[str, Any]
    supervisor: tuple[int, int] | None
    state_path: str  # strings made once: a Path per look costs more than the look
    exit_path: str
    proc_stat: str


class Glances:
    """A cheap look at a container already seen running. Its meta and state
    files are written once, before and as its process starts, so after one full
    `observe` a live process needs only its exit file's absence, its state
    file's inode (the folder was not removed or replaced) and its /proc stat:
    no file read, no JSON, no thread hand-off. Anything else (an exit file, a
    process gone or reused, a missing state file) falls back to `observe`."""

    def __init__(self, containers: Path) -> None:
        self._containers = containers
        self._seen: dict[str, _Seen] = {}

    def quick(self, container_id: str) -> Observation | None:
        seen = self._seen.get(container_id)
        if seen is None:
            return None
        same = _same_folder(seen)
        ended = not same or os.path.lexists(seen.exit_path)
        stat = None if ended else live_process(seen.pid, seen.start_ticks, seen.proc_stat)
        if stat is None or stat.zombie:
            self._seen.pop(container_id, None)
            return None
        return _running(container_id, seen, stat)

    def after_end(self, container_id: str) -> Observation | None:
        """A look after the wait for a container's process ended, without a
        thread hand-off: its exit file, read inline (one small file), or, while
        its supervisor still records the end, that supervisor to wait on. None
        where only a full look can tell (not seen, folder replaced, supervisor
        unknown or gone)."""
        seen = self._seen.get(container_id)
        if seen is None:
            return None
        same = _same_folder(seen)
        record = read_json(seen.exit_path) if same else None
        if record is not None:
            self._seen.pop(container_id, None)
            return Observation(exited_info(container_id, record), spec=seen.spec)
        stat = live_process(seen.pid, seen.start_ticks, seen.proc_stat) if same else None
        if stat is not None and not stat.zombie:
            return _running(container_id, seen, stat)  # woken early (a stray wake)
        supervisor = seen.supervisor if same else None
        if supervisor is None or _gone(live_process(*supervisor)):
            self._seen.pop(container_id, None)
            return None
        info = ContainerInfo(
            container_id, ContainerState.EXITED, detail="exited; exit status not recorded yet"
        )
        return Observation(info, spec=seen.spec, settling=True, supervisor=supervisor)

    def remember(self, observed: Observation) -> Observation:
        container_id = observed.info.container_id
        if observed.pgid is None:
            self._seen.pop(container_id, None)
            return observed
        self._keep(
            container_id, observed.pgid, observed.start_ticks, observed.spec, observed.supervisor
        )
        return observed

    def seed(
        self, container_id: str, spec: dict[str, Any], supervisor: tuple[int, int] | None
    ) -> None:
        """A container whose supervisor has just answered: its process was
        running with `spec` (its meta file's) when it did, so even its first
        look can be the quick one. One stat, inline."""
        parsed = parse_container_id(container_id)
        if parsed is not None:
            self._keep(container_id, *parsed, spec, supervisor)

    def _keep(
        self,
        container_id: str,
        pid: int,
        ticks: int,
        spec: dict[str, Any],
        supervisor: tuple[int, int] | None,
    ) -> None:
        files = ContainerFiles(self._containers / container_id)
        try:
            ino = os.stat(files.state).st_ino
        except OSError:
            return
        paths = (str(files.state), str(files.exit), f"/proc/{pid}/stat")
        self._seen[container_id] = _Seen(pid, ticks, ino, spec, supervisor, *paths)

    def forget(self, container_id: str) -> None:
        self._seen.pop(container_id, None)


def _running(container_id: str, seen: _Seen, stat: ProcStat) -> Observation:
    status = ContainerState.PAUSED if stat.stopped else ContainerState.RUNNING
    info = ContainerInfo(container_id, status)
    return Observation(
        info, seen.pid, seen.spec, start_ticks=seen.start_ticks, supervisor=seen.supervisor
    )


def _same_folder(seen: _Seen) -> bool:
    """Its state file is the one seen: the folder was not removed or replaced."""
    try:
        return os.stat(seen.state_path).st_ino == seen.state_ino
    except OSError:
        return False


def _gone(stat: ProcStat | None) -> bool:
    return stat is None or stat.zombie
