"""Hosts: the registry, the leader-only host monitor (which imports the agents'
beats from Redis), and the embedded host: with RUNPLANE_EMBEDDED_HOST (the
default) `serve` registers the machine it runs on, holds its seat, heartbeats
it and serves the driver calls addressed to it, like a `runplane agent`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass

import psutil
import redis.asyncio

from runplane.adapters.drivers.connections import LocalConnections
from runplane.adapters.redis.host_beats import RedisHostBeats
from runplane.adapters.redis.host_calls import RedisHostCallInbox
from runplane.adapters.redis.names import HOST_MONITOR_LEASE
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.host_store import SqlHostStore
from runplane.bootstrap.seat import claim_seat
from runplane.config import Settings
from runplane.domain.host_details import HostDetails
from runplane.domain.hosts import Capacity, HostStatus, parse_labels
from runplane.services.hosts.hooks import HostLossHooks
from runplane.services.hosts.registry import HostRegistry
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.workers.agent import AgentLoop
from runplane.workers.host_monitor import HostHeartbeat, HostMonitor
from runplane.workers.host_presence import HostPresence
from runplane.workers.leadership import Leadership
from runplane.workers.runner import Loop

logger = logging.getLogger(__name__)

RETURN_TRIES = 10

BEAT_TTL_PERIODS = 2.5
"""An agent's beat key lives this many heartbeat periods: one late beat is no gap."""


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


@dataclass(frozen=True, slots=True)
class Hosts:
    registry: HostRegistry
    loops: list[Loop]
    local_host_id: str | None
    """The embedded host's id; None with RUNPLANE_EMBEDDED_HOST=false."""


async def build_hosts(
    settings: Settings,
    stack: contextlib.AsyncExitStack,
    database: SqlDatabase,
    deps: Dependencies,
    *,
    call_client: redis.asyncio.Redis,
    hooks: HostLossHooks | None = None,
) -> Hosts:
    """The host loops of one `serve`. With an embedded host, its seat is claimed
    (exits with a message if another holds it) and the host registered here,
    before any worker starts: a restarted serve's own monitor never finds its
    own heartbeat stale. `call_client` keeps bytes (the beats and the host's
    call stream: a non-UTF-8 entry must not fail a read); the seat is a lease of
    `deps.leases`."""
    registry = HostRegistry(
        SqlHostStore(database),
        deps.clock,
        deps.tokens,
        down_after_s=settings.host_down_after_s,
        event_source=deps.event_source,
    )
    leadership = Leadership(
        deps.leases, deps.tokens, HOST_MONITOR_LEASE, ttl_ms=settings.leader_ttl_ms
    )
    # Looking twice per down_after bounds how late a lost host is marked down.
    monitor_interval_s = min(settings.host_heartbeat_s, settings.host_down_after_s / 2)
    monitor = HostMonitor(
        registry,
        leadership,
        interval_s=monitor_interval_s,
        beats=RedisHostBeats(call_client),
        hooks=hooks,
    )
    if not settings.embedded_host:
        return Hosts(registry, [monitor], None)
    seat = await claim_seat(
        settings,
        deps.leases,
        "runplane serve",
        "give each serve its own RUNPLANE_HOST_ID, or set RUNPLANE_EMBEDDED_HOST=false",
    )
    stack.push_async_callback(seat.release)
    details = local_host(settings, list(deps.drivers))
    await _stop_what_moved_away(registry, hooks, settings.host_id)
    await registry.register(details)
    heartbeat = HostHeartbeat(
        registry, details, interval_s=settings.host_heartbeat_s, registered=True
    )
    inbox = RedisHostCallInbox(
        call_client, settings.host_id, answer_ttl_s=settings.agent_answer_ttl_s
    )
    agent = AgentLoop(
        inbox,
        deps.drivers,
        max_calls=settings.agent_max_calls,
        connections=LocalConnections(deps.drivers),
    )

    def lost() -> None:
        agent.request_stop()  # presence stops itself; the rest of serve runs on

    presence = HostPresence(seat, heartbeat.beat_once, lost, interval_s=settings.host_heartbeat_s)
    return Hosts(registry, [monitor, presence, agent], settings.host_id)


async def _stop_what_moved_away(
    registry: HostRegistry, hooks: HostLossHooks | None, host_id: str
) -> None:
    """A serve whose host was marked down while it was away comes back as an
    agent does: what was moved off the host is stopped here before it is `up`
    (registering brings it up). Tried for a while; then it comes up anyway and
    the reconciler's orphan pass is left to find what remains."""
    host = await registry.store.get(host_id)
    if hooks is None or host is None or host.status is not HostStatus.DOWN:
        return
    for _ in range(RETURN_TRIES):
        try:
            if await hooks.before_up(host_id):
                return
        except Exception as exc:
            logger.warning("host return check failed", extra={"error": str(exc)}, exc_info=exc)
        await asyncio.sleep(1.0)
    logger.warning("host comes up with moved runtimes possibly left", extra={"host_id": host_id})
