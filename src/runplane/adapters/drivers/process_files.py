"""What a process runtime's supervisor and the `process` driver share: the
container id format, the files under the state dir, and the /proc reads that
tell a live process from a reused pid. The formats themselves are defined in
`supervisor_files`, which the supervisor imports instead of this module.

Layout, one folder per container, named after its id::

    <state_dir>/containers/<container_id>/
        meta.json        runtime_id, normalised spec, working directory
        state.json       child pid + start ticks, supervisor pid + start ticks
        exit.json        exit_code, signal, finished_at (once the child ended)
        output.log       the child's stdout and stderr
        supervisor.log   the supervisor's own stderr
    <state_dir>/containers/.launch-<token>/         a start in progress
    <state_dir>/containers/.launch-<token>.json     the supervisor's answer to it
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runplane.adapters.drivers.supervisor_files import (
    EXIT_FILE,
    LOG_FILE,
    META_FILE,
    STATE_FILE,
    SUPERVISOR_LOG_FILE,
    launch_result_name,
    proc_stat,
)
from runplane.adapters.drivers.supervisor_files import (
    make_container_id as make_container_id,  # part of this module's API
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


def launch_result_path(launch_dir: Path) -> Path:
    return launch_dir.with_name(launch_result_name(launch_dir.name))


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
    def log(self) -> Path:
        return self.root / LOG_FILE

    @property
    def supervisor_log(self) -> Path:
        return self.root / SUPERVISOR_LOG_FILE


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file and rename it, so a reader sees all or nothing.

    No fsync: these files describe live processes, which a host crash ends too.
    Mode 0600, because a spec's env may carry secrets."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The object in `path`, or None when it is absent or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def runtime_of(files: ContainerFiles) -> str | None:
    """The runtime a container was started for: runplane's mark on it, kept in
    its state file (and its meta file, written before the process started)."""
    for path in (files.state, files.meta):
        runtime_id = (read_json(path) or {}).get("runtime_id")
        if isinstance(runtime_id, str) and runtime_id:
            return runtime_id
    return None


@dataclass(frozen=True, slots=True)
class ProcStat:
    """A live (or zombie) process: its one-letter state and its start time in
    clock ticks since boot, the value that tells it from a later reuse of its pid."""

    state: str
    start_ticks: int

    @property
    def stopped(self) -> bool:
        return self.state in ("T", "t")

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def read_proc_stat(pid: int) -> ProcStat | None:
    stat = proc_stat(pid)
    return None if stat is None else ProcStat(state=stat[0], start_ticks=stat[1])


def live_process(pid: int, start_ticks: int) -> ProcStat | None:
    """The process `pid` if it is still the one that started at `start_ticks`."""
    stat = read_proc_stat(pid)
    if stat is None or stat.start_ticks != start_ticks:
        return None
    return stat
