"""The part of `process_files` a supervisor needs: file names, the container
id, JSON files written whole, and the /proc reads that tell a live process
from a reused pid.

Stdlib only and light on purpose (no pathlib, dataclasses or typing at run
time): the launcher imports it before it forks supervisors, and every module
it holds is memory each supervisor maps, may copy, and unmaps when it ends.
`process_files` re-exports all of it for the driver."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

META_FILE = "meta.json"
STATE_FILE = "state.json"
EXIT_FILE = "exit.json"
SUPERVISOR_LOG_FILE = "supervisor.log"
LAUNCH_REQUEST_BYTES = 65536
"""The most a launch request to the launcher (launch dir, NUL, meta) holds."""

_HAS_PROC = sys.platform.startswith("linux") and os.path.exists("/proc/self/stat")


def make_container_id(pid: int, start_ticks: int) -> str:
    """`p-<pid>-<start ticks>`: the start time makes the id outlive pid reuse."""
    return f"p-{pid}-{start_ticks}"


def write_json_atomic(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write to a temporary file and rename it, so a reader sees all or nothing.

    No fsync: these files describe live processes, which a host crash ends too.
    Mode 0600, because a spec's env may carry secrets."""
    folder, name = os.path.split(os.fspath(path))
    tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def write_json_new(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Create `path` (it must not exist) and write `data` into it, with no
    temporary file and rename: for a file in a folder nobody reads until it is
    complete (a launch dir, renamed to the container's id only afterwards).
    A rename is a second metadata change per file on every start. Mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)


def state_with_meta(state: dict[str, Any], meta: bytes) -> bytes:
    """The state file's JSON: `state`'s keys after the meta's (a JSON object
    naming the runtime, as the driver encoded it), or `state` alone when there
    is no meta. Joined as text: encoding the meta again in a fresh fork would
    copy pages for every string in it."""
    meta = meta.rstrip()
    if not (meta.startswith(b"{") and meta.endswith(b"}")) or meta[1:-1].strip() == b"":
        return json.dumps(state).encode()
    rest = {key: value for key, value in state.items() if key != "runtime_id"}
    return meta[:-1] + b", " + json.dumps(rest).encode()[1:]


def write_bytes_new(path: str, data: bytes) -> None:
    """`write_json_new` for JSON already encoded."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The object in `path`, or None when it is absent or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.loads(handle.read())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


class ProcStat:
    """A live (or zombie) process: its one-letter state and its start time in
    clock ticks since boot, the value that tells it from a later reuse of its pid."""

    __slots__ = ("start_ticks", "state")

    def __init__(self, state: str, start_ticks: int) -> None:
        self.state = state
        self.start_ticks = start_ticks

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProcStat):
            return NotImplemented
        return (self.state, self.start_ticks) == (other.state, other.start_ticks)

    def __hash__(self) -> int:
        return hash((self.state, self.start_ticks))

    def __repr__(self) -> str:
        return f"ProcStat(state={self.state!r}, start_ticks={self.start_ticks})"

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
