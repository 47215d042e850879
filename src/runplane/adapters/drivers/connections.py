"""Counting a runtime's open connections from its network namespace's
`/proc/<pid>/net/tcp{,6}` (a ConnectionCounter).

A connection counts when it is ESTABLISHED and its local port is one the
runtime declares: the server side of a connection to it (one the runtime opens
to elsewhere has an ephemeral local port). The pid is the runtime's process
(process driver: from its container id) or the container's init process (the
engine's inspect: `State.Pid`). Runtimes that share a namespace (process
runtimes all live in the host's) share one read per call, found by the
namespace's inode, so 1,000 process runtimes cost two file reads, not 2,000."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from runplane.adapters.drivers.process_files import live_process, parse_container_id
from runplane.domain.connection_calls import PortsOf
from runplane.ports.drivers import Driver

logger = logging.getLogger(__name__)

ESTABLISHED = "01"


def local_ports(table_text: str) -> list[int]:
    """The local ports of the ESTABLISHED rows of a /proc/net/tcp{,6} table."""
    ports: list[int] = []
    for line in table_text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != ESTABLISHED:
            continue
        _, _, port = fields[1].rpartition(":")
        try:
            ports.append(int(port, 16))
        except ValueError:
            continue
    return ports


def _established_ports(pid: int) -> list[int] | None:
    """The local ports of the established connections in `pid`'s namespace."""
    ports: list[int] = []
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{name}", encoding="ascii") as table:
                ports += local_ports(table.read())
        except FileNotFoundError:  # no IPv6 in that namespace
            continue
        except OSError:
            return None
    return ports


def count_by_pid(pids: Sequence[int | None], ports: Sequence[tuple[int, ...]]) -> list[int | None]:
    """Blocking: run it in a thread. Each namespace's tables are read once."""
    by_namespace: dict[int, Counter[int] | None] = {}
    counts: list[int | None] = []
    for pid, wanted in zip(pids, ports, strict=True):
        try:
            inode = None if pid is None else os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            inode = None
        if pid is None or inode is None:
            counts.append(None)
            continue
        if inode not in by_namespace:
            established = _established_ports(pid)
            by_namespace[inode] = None if established is None else Counter(established)
        open_ports = by_namespace[inode]
        counts.append(None if open_ports is None else sum(open_ports[p] for p in wanted))
    return counts


class LocalConnections:
    """This host's drivers' runtimes (a ConnectionCounter)."""

    def __init__(self, drivers: Mapping[str, Driver]) -> None:
        self.drivers = drivers

    async def count(self, driver: str, items: Sequence[PortsOf]) -> list[int | None]:
        pids = [await self._pid(driver, container_id) for container_id, _ in items]
        return await asyncio.to_thread(count_by_pid, pids, [ports for _, ports in items])

    async def _pid(self, driver: str, container_id: str) -> int | None:
        if driver == "process":
            parsed = parse_container_id(container_id)
            if parsed is None or live_process(*parsed) is None:
                return None
            return parsed[0]
        engine: Any = self.drivers.get(driver)
        client = getattr(engine, "client", None)
        if client is None:
            return None
        try:
            shown = await client.containers.container(container_id).show()
        except Exception as exc:  # gone, or the engine away: not known this round
            logger.debug(
                "no pid for a container", extra={"container_id": container_id, "error": repr(exc)}
            )
            return None
        pid = shown.get("State", {}).get("Pid")
        return pid if isinstance(pid, int) and pid > 0 else None
