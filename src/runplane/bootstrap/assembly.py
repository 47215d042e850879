"""The one composition root: settings -> adapters -> services -> app and workers.
Only this module names concrete adapters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import redis.asyncio
from fastapi import FastAPI

from runplane.adapters.drivers.process_user import runtimes_run_as_root
from runplane.adapters.redis.client import check_cluster
from runplane.adapters.redis.dead_letter_queue import RedisDeadLetterQueue
from runplane.adapters.redis.event_publisher import RedisEventPublisher
from runplane.adapters.redis.event_reader import RedisEventReader
from runplane.adapters.redis.health import RedisHealthEventPublisher
from runplane.adapters.redis.host_calls import RedisHostCallSender
from runplane.adapters.redis.jobs import RedisJobQueue, RedisJobResultPublisher
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.names import EVENTS_STREAM, RELAY_LEASE, job_stream
from runplane.adapters.redis.rate_limits import RedisRateLimiter
from runplane.adapters.sql.api_key_store import SqlApiKeyStore
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.host_store import SqlHostStore
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.outbox import SqlOutbox, watch_commits
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.sql.snapshot_store import SqlSnapshotStore
from runplane.adapters.sql.team_policies import SqlTeamPolicyStore
from runplane.adapters.system import SecretTokenGenerator, SystemClock
from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.api.limits import ApiLimits
from runplane.bootstrap.admin_key import ensure_admin_key
from runplane.bootstrap.data_dir import secure_data_dir
from runplane.bootstrap.health import build_health
from runplane.bootstrap.hooks import build_hooks
from runplane.bootstrap.host_loss import build_host_loss
from runplane.bootstrap.hosts import build_hosts
from runplane.bootstrap.infrastructure import (
    adopt_runtimes,
    build_drivers,
    open_database,
    open_docker,
    open_redis,
)
from runplane.bootstrap.runtime_timers import build_runtime_timers
from runplane.bootstrap.streams import consumer_settings, events_retention
from runplane.bootstrap.webhooks import build_webhooks
from runplane.config import Settings
from runplane.domain.operations import OpKind
from runplane.services.admission import Admission
from runplane.services.api_keys import ApiKeys
from runplane.services.event_fanout import EventFanout
from runplane.services.hosts.placement import Placement
from runplane.services.hosts.routing import HostRouter
from runplane.services.lifecycle.dependencies import Dependencies, Timeouts
from runplane.services.lifecycle.service import Lifecycle
from runplane.services.runtime_output import RuntimeOutput
from runplane.services.snapshots import Snapshots
from runplane.workers.jobs.consumers import job_consumers
from runplane.workers.leadership import Leadership
from runplane.workers.outbox_relay import OutboxRelay
from runplane.workers.runner import Loop, WorkerSet
from runplane.workers.stream_trimmer import RetentionLoop

logger = logging.getLogger(__name__)


def wake_from_any_thread(wake: Callable[[], None]) -> Callable[[], None]:
    """`wake`, handed to this event loop from whichever thread calls (a SQLite
    commit runs in a worker thread); once the loop is closed it does nothing:
    a late commit must never fail for a wake."""
    loop = asyncio.get_running_loop()

    def handed() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(wake)

    return handed


@dataclass(frozen=True, slots=True)
class Runplane:
    """Everything one `runplane serve` runs, assembled."""

    settings: Settings
    lifecycle: Lifecycle
    keys: ApiKeys
    app: FastAPI
    redis: redis.asyncio.Redis
    database: SqlDatabase
    workers: WorkerSet
    event_reader: EventFanout
    """Closed first at shutdown: open SSE streams would keep uvicorn waiting."""
    host_calls: RedisHostCallSender
    """Told at shutdown to stop waiting for other hosts' answers (after a grace)."""


def api_limits(settings: Settings) -> ApiLimits:
    return ApiLimits(
        max_request_bytes=settings.max_request_bytes,
        request_body_timeout_s=settings.request_body_timeout_s,
        rate_limit_per_s=settings.rate_limit_per_s,
        rate_limit_burst=settings.rate_limit_burst,
        max_waits_per_key=settings.max_waits_per_key,
        max_streams_per_key=settings.max_streams_per_key,
    )


@contextlib.asynccontextmanager
async def assemble(settings: Settings) -> AsyncIterator[Runplane]:
    """Open every adapter, yield the system, close everything on the way out."""
    secure_data_dir(settings.data_dir)
    async with contextlib.AsyncExitStack() as stack:
        client, stream_client = await open_redis(stack, settings)
        # Closed before the client (LIFO). Bytes client: a non-UTF-8 entry is skipped.
        # One live read for every SSE client; closing it closes the reader.
        event_reader = EventFanout(
            RedisEventReader(stream_client),
            flush_s=settings.sse_flush_ms / 1000,
            coalesce_s=settings.sse_coalesce_ms / 1000,
        )
        stack.push_async_callback(event_reader.aclose)
        # Hooks load first: one that cannot load stops serve before it touches anything.
        hooks, hook_workers = build_hooks(settings, stream_client)
        database = await open_database(stack, settings)

        clock = SystemClock()
        drivers = build_drivers(settings, stack)
        runtimes = SqlRuntimeStore(database)
        policies = SqlTeamPolicyStore(database)
        snapshot_store = SqlSnapshotStore(database)
        # Team process runtimes are refused while runtimes would run as root.
        runs_as_root = runtimes_run_as_root(settings.runtime_user)
        host_store = SqlHostStore(database)
        host_calls = RedisHostCallSender(client)
        router = HostRouter(
            settings.host_id if settings.embedded_host else None,
            drivers,
            host_calls,
            call_timeout_s=settings.host_call_timeout_s,
        )
        deps = Dependencies(
            runtimes=runtimes,
            operations=SqlOperationLog(database),
            leases=RedisLeaseStore(client),
            drivers=drivers,
            clock=clock,
            tokens=SecretTokenGenerator(),
            lease_ttl_ms=settings.lease_ttl_ms,
            event_source=f"/runplane/{settings.consumer_name}",
            health_events=RedisHealthEventPublisher(
                client, max_len=settings.health_events_stream_max_len
            ),
            timeouts=Timeouts(
                start_s=settings.start_timeout_s,
                stop_s=settings.stop_timeout_s,
                pause_s=settings.pause_timeout_s,
            ),
            admission=Admission(
                policies, runtimes, runs_as_root=runs_as_root, snapshots=snapshot_store
            ),
            router=router,
            placement=Placement(host_store, runtimes),
        )
        lifecycle = Lifecycle.build(deps, default_driver=settings.driver)
        keys = ApiKeys(SqlApiKeyStore(database), clock, cache_s=settings.api_key_cache_s)
        await ensure_admin_key(keys, settings.admin_key_path)
        # Before any local runtime is touched: a second serve for this host stops here.
        host_loss, host_loss_workers = build_host_loss(settings, database, client, lifecycle, deps)
        hosts = await build_hosts(
            settings, stack, database, deps, call_client=stream_client, hooks=host_loss
        )
        engine_watchers: list[Loop] = []
        if hosts.local_host_id is not None:  # runtimes run here only on an embedded host
            engine_watchers = await open_docker(stack, deps, client)
            await adopt_runtimes(deps)

        async def redis_ready() -> None:
            await check_cluster(client)  # a PING on a plain Redis

        async def database_ready() -> None:
            await deps.runtimes.get("readyz")

        relay = OutboxRelay(
            SqlOutbox(database),
            RedisEventPublisher(client),
            Leadership(deps.leases, deps.tokens, RELAY_LEASE, ttl_ms=settings.leader_ttl_ms),
            clock,
            idle_poll_max_s=settings.outbox_idle_poll_max_s,
            batch_window_s=settings.outbox_batch_window_s,
        )
        watch_commits(database, wake_from_any_thread(relay.wake))
        webhooks, webhook_workers = await build_webhooks(
            stack, settings, database, client, stream_client, clock, deps.tokens
        )
        runtime_settings, timers = build_runtime_timers(settings, database, lifecycle, deps)
        health_sources, health_workers = build_health(
            stack, settings, database, client, stream_client, lifecycle, deps, host_store
        )
        workers = WorkerSet(
            [
                relay,
                *hosts.loops,
                *host_loss_workers,
                timers,
                *engine_watchers,
                RetentionLoop(stream_client, {EVENTS_STREAM: events_retention(settings)}),
                *webhook_workers,
                *hook_workers,
                *health_workers,
                *job_consumers(
                    stream_client,
                    streams={op: job_stream(op) for op in OpKind},
                    lifecycle=lifecycle,
                    runtimes=deps.runtimes,
                    results=RedisJobResultPublisher(client),
                    clock=clock,
                    group=settings.job_group,
                    consumer=settings.consumer_name,
                    settings=consumer_settings(settings),
                    lease_wait_ms=settings.stream_lease_wait_ms,
                ),
            ]
        )
        context = ApiContext(
            lifecycle=lifecycle,
            runtimes=deps.runtimes,
            operations=deps.operations,
            keys=keys,
            readiness={"redis": redis_ready, "database": database_ready},
            jobs=RedisJobQueue(client),
            dead_letters=RedisDeadLetterQueue(client),
            event_reader=event_reader,
            webhooks=webhooks,
            health=health_sources,
            wait_max_timeout_s=settings.wait_max_timeout_s,
            policies=policies,
            limits=api_limits(settings),
            rate_limiter=RedisRateLimiter(client),
            metrics_token=settings.metrics_token,
            hosts=hosts.registry,
            hooks=hooks,
            snapshots=Snapshots(deps, snapshot_store),
            runtime_settings=runtime_settings,
            runtime_output=RuntimeOutput(router, poll_s=settings.logs_follow_poll_s),
        )
        app = create_app(context)
        yield Runplane(
            settings, lifecycle, keys, app, client, database, workers, event_reader, host_calls
        )
