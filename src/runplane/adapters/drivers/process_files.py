"""What a process runtime's supervisor and the `process` driver share: the
container id format, the files under the state dir, and the /proc reads that
tell a live process from a reused pid.

Layout, one folder per container, named after its id::

    <state_dir>/containers/<container_id>/
        state.json       the meta (runtime_id, normalised spec, working
                         directory, environment), then the child's pid and
                         start ticks and the supervisor's
        meta.json        the meta, only when too large to travel in the
                         launch request (the state file then lacks it), and
                         in containers started by earlier runplane versions
        exit.json        exit_code, signal, finished_at (once the child ended)
        output.<offset>.log  the child's stdout and stderr (supervisor_output)
        supervisor.log   why the supervisor failed, if it did before the start
    <state_dir>/containers/.launch-<token>/         a start in progress
    <state_dir>/containers/.launcher.log            the launcher's own stderr
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runplane.adapters.drivers.supervisor_files import (
    EXIT_FILE,
    META_FILE,
    STATE_FILE,
    SUPERVISOR_LOG_FILE,
    ProcStat,
    live_process,
    make_container_id,
    read_json,
    read_proc_stat,
    write_json_atomic,
    write_json_new,
)

CONTAINER_ID_PATTERN = re.compile(r"^p-([0-9]+)-([0-9]+)$")
LAUNCH_PREFIX = ".launch-"


def parse_container_id(container_id: str) -> tuple[int, int] | None:
    """(pid, start ticks), or None when the id is not a process container id."""
    match = CONTAINER_ID_PATTERN.fullmatch(container_id)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def containers_dir(state_dir: Path) -> Path:
    return state_dir / "containers"


@dataclass(frozen=True, slots=True)
class ContainerFiles:
    root: Path

    @property
    def meta(self) -> Path:
        return self.root / META_FILE

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE

    @property
    def exit(self) -> Path:
        return self.root / EXIT_FILE

    @property
    def supervisor_log(self) -> Path:
        return self.root / SUPERVISOR_LOG_FILE


def read_meta(files: ContainerFiles, state: dict[str, Any] | None) -> dict[str, Any] | None:
    """The container's meta: in its state file (`state`, read already), or
    else in its meta file."""
    if state is not None and "spec" in state:
        return state
    return read_json(files.meta)


def runtime_of(files: ContainerFiles) -> str | None:
    """The runtime a container was started for: runplane's mark on it, kept in
    its state file (and its meta file, written before the process started)."""
    for path in (files.state, files.meta):
        runtime_id = (read_json(path) or {}).get("runtime_id")
        if isinstance(runtime_id, str) and runtime_id:
            return runtime_id
    return None


__all__ = [
    "CONTAINER_ID_PATTERN",
    "EXIT_FILE",
    "LAUNCH_PREFIX",
    "META_FILE",
    "STATE_FILE",
    "SUPERVISOR_LOG_FILE",
    "ContainerFiles",
    "ProcStat",
    "containers_dir",
    "live_process",
    "make_container_id",
    "parse_container_id",
    "read_json",
    "read_meta",
    "read_proc_stat",
    "runtime_of",
    "write_json_atomic",
    "write_json_new",
]
