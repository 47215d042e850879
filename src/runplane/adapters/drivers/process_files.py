"""What a process runtime's supervisor and the `process` driver share: the
container id format, the files under the state dir, and the /proc reads that
tell a live process from a reused pid.

Layout, one folder per container, named after its id::

    <state_dir>/containers/<container_id>/
        meta.json        runtime_id, normalised spec, working directory
        state.json       child pid + start ticks, supervisor pid + start ticks
        exit.json        exit_code, signal, finished_at (once the child ended)
        output.<offset>.log  the child's stdout and stderr (supervisor_output)
        supervisor.log   the supervisor's own stderr
    <state_dir>/containers/.launch-<token>/         a start in progress
    <state_dir>/containers/.launch-<token>.json     the supervisor's answer to it
    <state_dir>/containers/.launcher.log            the launcher's own stderr
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

META_FILE = "meta.json"
STATE_FILE = "state.json"
EXIT_FILE = "exit.json"
SUPERVISOR_LOG_FILE = "supervisor.log"

_HAS_PROC = sys.platform.startswith("linux") and os.path.exists("/proc/self/stat")
CONTAINER_ID_PATTERN = re.compile(r"^p-([0-9]+)-([0-9]+)$")
LAUNCH_PREFIX = ".launch-"


def make_container_id(pid: int, start_ticks: int) -> str:
    """`p-<pid>-<start ticks>`: the start time makes the id outlive pid reuse."""
    return f"p-{pid}-{start_ticks}"


def parse_container_id(container_id: str) -> tuple[int, int] | None:
    """(pid, start ticks), or None when the id is not a process container id."""
    match = CONTAINER_ID_PATTERN.fullmatch(container_id)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def containers_dir(state_dir: Path) -> Path:
    return state_dir / "containers"


def launch_result_path(launch_dir: Path) -> Path:
    """The file, beside the launch dir, holding the supervisor's answer."""
    return launch_dir.with_name(f"{launch_dir.name}.json")


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


def read_proc_stat(pid: int, path: str | None = None) -> ProcStat | None:
    """The process `pid`, live or a zombie; None when there is no such process.
    `path`: its `/proc/<pid>/stat`, when the caller keeps it made."""
    if not _HAS_PROC:
        return _psutil_stat(pid)
    try:
        # Bytes through os.read: a text-mode open costs several times the read.
        fd = os.open(path or f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return ProcStat(state=fields[0].decode("ascii", "replace"), start_ticks=int(fields[19]))


def _psutil_stat(pid: int) -> ProcStat | None:
    """Where there is no /proc: psutil's create time stands in for the ticks."""
    import psutil

    try:
        proc = psutil.Process(pid)
        status = proc.status()
        ticks = round(proc.create_time() * 100)
    except psutil.NoSuchProcess:
        return None
    letters = {psutil.STATUS_STOPPED: "T", psutil.STATUS_ZOMBIE: "Z"}
    return ProcStat(state=letters.get(status, "R"), start_ticks=ticks)


def live_process(pid: int, start_ticks: int, path: str | None = None) -> ProcStat | None:
    """The process `pid` if it is still the one that started at `start_ticks`."""
    stat = read_proc_stat(pid, path)
    if stat is None or stat.start_ticks != start_ticks:
        return None
    return stat


def remove_tree(path: Path) -> None:
    """Remove a container's folder; retry when a late supervisor write races
    us. OSError when it stays."""
    error: OSError | None = None
    for _ in range(3):
        if not path.exists():
            return
        try:
            shutil.rmtree(path)
        except OSError as exc:
            error = exc
    if path.exists():
        raise error or OSError(f"cannot remove {path}")
