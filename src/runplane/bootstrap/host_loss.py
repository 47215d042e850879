"""Host loss, a host's return and draining (docs/hosts.md): the hooks the host
monitor calls, and the leader-only loop that sweeps down hosts and drains."""

from __future__ import annotations

import redis.asyncio

from runplane.adapters.redis.health import RedisHealthEventPublisher
from runplane.adapters.redis.names import HOST_DRAIN_LEASE
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.health_snapshots import SqlHealthSnapshotStore
from runplane.adapters.sql.host_store import SqlHostStore
from runplane.config import Settings
from runplane.services.health.reporter import HealthReporter
from runplane.services.hosts.drain import Drainer
from runplane.services.hosts.hooks import HostLossHooks
from runplane.services.hosts.loss import HostLoss
from runplane.services.hosts.returning import HostReturn
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.service import Lifecycle
from runplane.workers.host_drain import HostDrainLoop
from runplane.workers.leadership import Leadership
from runplane.workers.runner import Loop


def build_host_loss(
    settings: Settings,
    database: SqlDatabase,
    client: redis.asyncio.Redis,
    lifecycle: Lifecycle,
    deps: Dependencies,
) -> tuple[HostLossHooks, list[Loop]]:
    """The host monitor's `HostLossHooks` (a `HostLoss`) and the drain loop to run."""
    hosts = SqlHostStore(database)
    reporter = HealthReporter(
        RedisHealthEventPublisher(client, max_len=settings.health_events_stream_max_len),
        SqlHealthSnapshotStore(database),
        deps.clock,
    )
    loss = HostLoss(deps.runtimes, hosts, reporter, HostReturn(deps, hosts))
    drainer = Drainer(lifecycle, deps.runtimes, hosts, batch=settings.host_drain_batch)
    leadership = Leadership(
        deps.leases, deps.tokens, HOST_DRAIN_LEASE, ttl_ms=settings.leader_ttl_ms
    )
    loop = HostDrainLoop(drainer, loss, leadership, interval_s=settings.host_drain_interval_s)
    return loss, [loop]
