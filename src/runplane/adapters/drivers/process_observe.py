"""One look at a process container: its files and /proc say whether its process
is running, paused, ended (and how), or gone."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runplane.adapters.drivers.process_files import (
    ContainerFiles,
    live_process,
    parse_container_id,
    read_json,
)
from runplane.domain.drivers import ContainerInfo, ContainerState


@dataclass(frozen=True, slots=True)
class Observation:
    """One look at a container. `pgid` is set while its process is live;
    `settling` while it has ended but its supervisor has not yet recorded how."""

    info: ContainerInfo
    pgid: int | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    settling: bool = False
    start_ticks: int = 0


def observe(containers: Path, container_id: str) -> Observation:
    if parse_container_id(container_id) is None:
        return missing(container_id, "not a process container id")
    files = ContainerFiles(containers / container_id)
    meta = read_json(files.meta)
    if meta is None:
        return missing(container_id, "no such container")
    spec: dict[str, Any] = meta.get("spec", {})
    exited = read_json(files.exit)
    state = read_json(files.state)
    if exited is not None:
        return Observation(exited_info(container_id, exited), spec=spec)
    if state is None:
        return missing(container_id, "the container has no state file")
    stat = live_process(state["pid"], state["start_ticks"])
    if stat is not None and not stat.zombie:
        status = ContainerState.PAUSED if stat.stopped else ContainerState.RUNNING
        info = ContainerInfo(container_id, status)
        return Observation(info, state["pid"], spec, start_ticks=state["start_ticks"])
    # The process ended; its supervisor records how next, unless it is gone too.
    if read_json(files.exit) is not None:
        return observe(containers, container_id)
    supervisor = live_process(state["supervisor_pid"], state["supervisor_start_ticks"])
    if supervisor is None or supervisor.zombie:
        return missing(container_id, "the process and its supervisor are gone")
    info = ContainerInfo(
        container_id, ContainerState.EXITED, detail="exited; exit status not recorded yet"
    )
    return Observation(info, spec=spec, settling=True)


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
