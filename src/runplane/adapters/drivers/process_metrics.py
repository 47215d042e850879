"""Reading a process runtime's resources: CPU time and resident memory summed
over its process tree (its main process, every descendant, and what the
reaped ones used), and the size of its work dir. Blocking: run it in a thread.

On Linux it reads /proc itself: a process's children from
`/proc/<pid>/task/<tid>/children` and its times and memory from one read of
`/proc/<pid>/stat`, so a round costs a few reads per process of the runtimes
sampled, whatever else runs on the host. Elsewhere (or a kernel without the
children files) psutil, with one scan of the process table per round."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import psutil

from runplane.adapters.drivers.process_files import live_process, parse_container_id
from runplane.adapters.drivers.resource_history import Reading

MAX_DISK_ENTRIES = 10_000
"""A work dir with more entries is not sized (the walk would cost too much)."""
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def read_resources(
    container_ids: Sequence[str], work_dirs: dict[str, Path | None]
) -> dict[str, Reading | None]:
    children = None if _CHILDREN_FILES else _children_table()
    found: dict[str, Reading | None] = {}
    for container_id in container_ids:
        parsed = parse_container_id(container_id)
        stat = live_process(*parsed) if parsed is not None else None
        if parsed is None or stat is None or stat.zombie:
            found[container_id] = None
            continue
        found[container_id] = _tree(parsed[0], children, work_dirs.get(container_id))
    return found


def _children_table() -> dict[int, list[int]]:
    table: dict[int, list[int]] = defaultdict(list)
    for proc in psutil.process_iter(["ppid"]):
        table[proc.info["ppid"] or 0].append(proc.pid)
    return table


def _tree(root: int, table: dict[int, list[int]] | None, work_dir: Path | None) -> Reading | None:
    cpu_s, rss, count = 0.0, 0, 0
    pending = [root]
    while pending:
        pid = pending.pop()
        pending.extend(_children(pid) if table is None else table.get(pid, ()))
        used = _proc_stat(pid) if _CHILDREN_FILES else _psutil_use(pid)
        if used is None:
            continue
        # Reaped descendants' time is their parent's children time: counting
        # it keeps the total from dropping when a child ends.
        cpu_s += used[0]
        rss += used[1]
        count += 1
    if count == 0:
        return None
    return Reading(cpu_s, rss, _disk(work_dir), count)


def _children(pid: int) -> list[int]:
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return []
    found = []
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                found += [int(child) for child in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended
    return found


def _proc_stat(pid: int) -> tuple[float, int] | None:
    """(user + system time of it and its reaped children, resident bytes)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    # Fields 14-17 (utime, stime, cutime, cstime) and 24 (rss, pages) of proc(5),
    # counted here from field 3.
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / _TICKS, int(fields[21]) * _PAGE


def _psutil_use(pid: int) -> tuple[float, int] | None:
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            times = proc.cpu_times()
            rss = proc.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return times.user + times.system + times.children_user + times.children_system, rss


def _disk(folder: Path | None) -> int | None:
    if folder is None:
        return None
    total, seen = 0, 0
    pending = [str(folder)]
    try:
        while pending:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_DISK_ENTRIES:
                        return None
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
    except OSError:
        return None
    return total
