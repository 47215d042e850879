"""Health: what the health API reads, and the health workers."""

from __future__ import annotations

import contextlib
import dataclasses

import redis.asyncio

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.probes import NetworkProber
from runplane.adapters.redis.event_reader import RedisEventReader
from runplane.adapters.redis.health import (
    RedisHealthEventPublisher,
    RedisHealthEventReader,
    RedisSnapshotPublisher,
)
from runplane.adapters.redis.leases import RedisLeaseProbe
from runplane.adapters.redis.names import (
    HEALTH_EVENTS_CONSUMER,
    HEALTH_EVENTS_LEASE,
    HEALTH_EVENTS_STREAM,
    MONITOR_LEASE,
    RECONCILER_LEASE,
)
from runplane.adapters.redis.offsets import RedisOffsetStore
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.engine_health import SqlEngineHealthStore
from runplane.adapters.sql.health_snapshots import SqlHealthSnapshotStore
from runplane.api.context import HealthSources
from runplane.bootstrap.exits import TOLD_DRIVERS, exit_watchers
from runplane.bootstrap.streams import consumer_settings
from runplane.config import Settings
from runplane.ports.hosts import HostStore
from runplane.services import lease
from runplane.services.health.applier import HealthEventApplier
from runplane.services.health.listings import Listings
from runplane.services.health.reporter import HealthReporter
from runplane.services.health.restart_policy import RestartPolicyService
from runplane.services.hosts.routing import HostDirectory
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.service import Lifecycle
from runplane.services.lifecycle.settler import TransientSettler
from runplane.streams.settings import ConsumerSettings
from runplane.workers.health_consumer import health_events_consumer
from runplane.workers.health_monitor import HealthMonitor
from runplane.workers.leadership import LeaderOnly, Leadership
from runplane.workers.reconciler import Reconciler
from runplane.workers.restarts import RestartScheduler
from runplane.workers.runner import Loop

HEALTH_EVENTS_BATCH_SIZE = 1_000
"""Entries per read of `runtime:health_events`: a batch is folded per runtime
and its records read at once, so a larger read makes a burst cheaper."""


def health_events_settings(streams: ConsumerSettings) -> ConsumerSettings:
    """The health events consumer's settings from the shared stream settings:
    no retention (the stream is capped at XADD), larger reads."""
    batch_size = max(streams.batch_size, HEALTH_EVENTS_BATCH_SIZE)
    return dataclasses.replace(streams, retention=None, batch_size=batch_size)


def build_health(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    database: SqlDatabase,
    client: redis.asyncio.Redis,
    stream_client: redis.asyncio.Redis,
    lifecycle: Lifecycle,
    deps: Dependencies,
    hosts: HostStore,
) -> tuple[HealthSources, list[Loop]]:
    """What the health API reads, and the health workers: the monitor, the
    health events consumer (one leader), the restart scheduler, the reconciler."""
    rows = SqlHealthSnapshotStore(database)
    reporter = HealthReporter(
        RedisHealthEventPublisher(client, max_len=settings.health_events_stream_max_len),
        rows,
        deps.clock,
    )
    process = deps.drivers.get("process")
    prober = NetworkProber(process.sandbox if isinstance(process, ProcessDriver) else None)
    stack.push_async_callback(prober.aclose)
    lease_probe = RedisLeaseProbe(client)
    restarts = RestartScheduler(
        RestartPolicyService(
            lifecycle,
            deps,
            backoff_base_s=settings.restart_backoff_base_s,
            backoff_cap_s=max(settings.restart_backoff_cap_s, settings.restart_backoff_base_s),
            lease_wait_ms=settings.stream_lease_wait_ms,
        )
    )
    applier = HealthEventApplier(
        deps,
        SqlEngineHealthStore(database),
        RedisSnapshotPublisher(
            client,
            settings.snapshots_stream,
            entry_type=settings.snapshot_entry_type,
            seed_layout=settings.snapshot_layout == "seed",
        ),
        on_unreachable=restarts.on_unreachable,
    )
    offsets = RedisOffsetStore(client)
    directory = HostDirectory(hosts)
    reading = health_events_settings(consumer_settings(settings))
    ttl_ms = settings.leader_ttl_ms

    def consumer() -> Loop:
        return health_events_consumer(
            stream_client,
            offsets,
            applier,
            settings=reading,
            stream=HEALTH_EVENTS_STREAM,
            consumer=HEALTH_EVENTS_CONSUMER,
        )

    # The exit watcher's and the reconciler's listings, read by the monitor's sweep.
    listings = Listings(deps.clock)
    monitor = HealthMonitor(
        deps.runtimes,
        deps.drivers,
        reporter,
        prober,
        lease_probe,
        deps.clock,
        leadership=Leadership(deps.leases, deps.tokens, MONITOR_LEASE, ttl_ms=ttl_ms),
        route=deps.driver_on,
        hosts=directory,
        local_host_id=deps.local_host_id,
        interval_s=settings.health_monitor_interval_s,
        told=TOLD_DRIVERS,
        sweep_s=settings.health_sweep_s,
        # Every status change commits a durable lifecycle event: its id moves.
        changes=RedisEventReader(stream_client).last_id,
        listings=listings,
    )
    reconciler = Reconciler(
        deps.runtimes,
        deps.drivers,
        TransientSettler(deps),
        reporter,
        lease_probe,
        deps.clock,
        # Renewed in the background while a round runs, so a round may outlast it.
        leadership=Leadership(deps.leases, deps.tokens, RECONCILER_LEASE, ttl_ms=ttl_ms),
        restarts=restarts,
        route=deps.driver_on,
        hosts=directory,
        hold=lambda runtime_id: lease.held(
            deps.leases, runtime_id, deps.tokens.new_token(), deps.lease_ttl_ms
        ),
        interval_s=settings.reconcile_interval_s,
        jitter_s=settings.reconcile_jitter_s,
        settle_interval_s=settings.lease_ttl_ms / 2000,
        settle_after_s=settings.lease_ttl_ms / 2000,
        stop_orphans=settings.stop_orphans,
        listings=listings,
    )
    events = LeaderOnly(
        Leadership(deps.leases, deps.tokens, HEALTH_EVENTS_LEASE, ttl_ms=ttl_ms),
        consumer,
    )
    sources = HealthSources(rows, RedisHealthEventReader(stream_client))
    # Every serve watches its own embedded host's process runtimes, leader or not.
    # Through the monitor's reporter: an end is reported once by the two.
    exits = exit_watchers(process, reporter, deps.clock, settings, listings)
    if deps.local_host_id is None:
        exits = []
    return sources, [monitor, events, restarts, reconciler, *exits]
