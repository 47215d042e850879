"""Hosts: the registry, the leader-only host monitor, and the embedded host —
`serve` registers the machine it runs on and heartbeats it (the in-process
agent, until `runplane agent` runs a host on its own)."""

from __future__ import annotations

import os

import psutil

from runplane.adapters.redis.names import HOST_MONITOR_LEASE
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.host_store import SqlHostStore
from runplane.config import Settings
from runplane.domain.hosts import Capacity, parse_labels
from runplane.services.hosts.registry import HostDetails, HostRegistry
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.workers.host_monitor import HostHeartbeat, HostMonitor
from runplane.workers.leadership import Leadership
from runplane.workers.runner import Loop


def local_host(settings: Settings, drivers: list[str]) -> HostDetails:
    """This machine as a host: its drivers, CPUs and memory."""
    return HostDetails(
        host_id=settings.host_id,
        address=settings.host_address,
        labels=parse_labels(settings.host_labels),
        capacity=Capacity(
            cpus=float(os.cpu_count() or 1),
            memory_mb=max(1, psutil.virtual_memory().total // (1024 * 1024)),
        ),
        drivers=sorted(drivers),
    )


def build_hosts(
    settings: Settings, database: SqlDatabase, deps: Dependencies
) -> tuple[HostRegistry, list[Loop]]:
    registry = HostRegistry(
        SqlHostStore(database),
        deps.clock,
        deps.tokens,
        down_after_s=settings.host_down_after_s,
        event_source=deps.event_source,
    )
    leadership = Leadership(
        deps.leases, deps.tokens, HOST_MONITOR_LEASE, ttl_ms=settings.lease_ttl_ms
    )
    # Looking twice per down_after bounds how late a lost host is marked down.
    monitor_interval_s = min(settings.host_heartbeat_s, settings.host_down_after_s / 2)
    loops: list[Loop] = [
        HostMonitor(registry, leadership, interval_s=monitor_interval_s),
        HostHeartbeat(
            registry,
            local_host(settings, list(deps.drivers)),
            interval_s=settings.host_heartbeat_s,
        ),
    ]
    return registry, loops
