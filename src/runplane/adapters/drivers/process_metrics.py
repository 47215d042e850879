"""Reading a process runtime's resources with psutil: CPU time and resident
memory summed over its process tree (its main process, every descendant, and
what the reaped ones used), and the size of its work dir. Blocking: run it in
a thread. One scan of the process table per round, whatever the number of
runtimes asked about."""

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


def read_resources(
    container_ids: Sequence[str], work_dirs: dict[str, Path | None]
) -> dict[str, Reading | None]:
    children: dict[int, list[int]] = defaultdict(list)
    for proc in psutil.process_iter(["ppid"]):
        children[proc.info["ppid"] or 0].append(proc.pid)
    found: dict[str, Reading | None] = {}
    for container_id in container_ids:
        parsed = parse_container_id(container_id)
        stat = live_process(*parsed) if parsed is not None else None
        if parsed is None or stat is None or stat.zombie:
            found[container_id] = None
            continue
        found[container_id] = _tree(parsed[0], children, work_dirs.get(container_id))
    return found


def _tree(root: int, children: dict[int, list[int]], work_dir: Path | None) -> Reading | None:
    cpu_s, rss, count = 0.0, 0, 0
    pending = [root]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, ()))
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                times = proc.cpu_times()
                rss += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        # Reaped descendants' time moves to their parent's children_*: counting
        # it keeps the total from dropping when a child ends.
        cpu_s += times.user + times.system + times.children_user + times.children_system
        count += 1
    if count == 0:
        return None
    return Reading(cpu_s, rss, _disk(work_dir), count)


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
