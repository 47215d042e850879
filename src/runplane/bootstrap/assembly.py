"""The one composition root: settings -> adapters -> services -> app and workers.
Only this module names concrete adapters."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio
from fastapi import FastAPI

from runplane.adapters.drivers.docker import DEFAULT_DOCKER_HOST, DockerDriver
from runplane.adapters.drivers.docker_events import DockerEventWatcher
from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.http.webhook_sender import HttpWebhookSender, resolve_host
from runplane.adapters.probes import NetworkProber
from runplane.adapters.redis.client import connect as connect_redis
from runplane.adapters.redis.dead_letter_queue import RedisDeadLetterQueue
from runplane.adapters.redis.embedded import EmbeddedRedis
from runplane.adapters.redis.event_publisher import RedisEventPublisher
from runplane.adapters.redis.event_reader import RedisEventReader
from runplane.adapters.redis.health import RedisHealthEventPublisher
from runplane.adapters.redis.health_reads import (
    RedisHealthEventReader,
    RedisLeaseProbe,
    RedisSnapshotPublisher,
)
from runplane.adapters.redis.jobs import RedisJobQueue, RedisJobResultPublisher
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.offsets import RedisOffsetStore
from runplane.adapters.secrets import SecretBox
from runplane.adapters.sql.api_key_store import SqlApiKeyStore
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.engine_health import SqlEngineHealthStore
from runplane.adapters.sql.health_snapshots import SqlHealthSnapshotStore
from runplane.adapters.sql.migrate import upgrade_database, upgrade_sync
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.outbox import SqlOutbox
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.sql.webhook_store import SqlWebhookStore
from runplane.adapters.system import SecretTokenGenerator, SystemClock
from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.api.routes.health import HealthSources
from runplane.bootstrap.admin_key import ensure_admin_key
from runplane.config import Settings
from runplane.domain.events import EVENTS_STREAM, OutboxEvent
from runplane.domain.webhooks.model import Webhook
from runplane.domain.webhooks.rules import RetrySchedule, parse_retry_schedule
from runplane.ports.drivers import Driver
from runplane.ports.system import Clock, TokenGenerator
from runplane.services.api_keys import ApiKeys
from runplane.services.health.applier import HealthEventApplier
from runplane.services.health.reporter import HealthReporter
from runplane.services.health.restart_policy import RestartPolicyService
from runplane.services.lifecycle.dependencies import Dependencies, Timeouts
from runplane.services.lifecycle.service import Lifecycle
from runplane.services.lifecycle.settler import TransientSettler
from runplane.services.webhooks.delivery import Deliverer
from runplane.services.webhooks.management import (
    DISABLED_EVENT_TYPE,
    WebhookService,
    webhook_envelope,
)
from runplane.streams.retention import RetentionPolicy
from runplane.streams.settings import ConsumerSettings
from runplane.workers.health_consumer import (
    HEALTH_EVENTS_LEASE,
    LeaderOnly,
    health_events_consumer,
)
from runplane.workers.health_monitor import MONITOR_LEASE, HealthMonitor
from runplane.workers.jobs.consumers import job_consumers
from runplane.workers.leadership import Leadership
from runplane.workers.outbox_relay import OutboxRelay
from runplane.workers.reconciler import RECONCILER_LEASE, Reconciler
from runplane.workers.restarts import RestartScheduler
from runplane.workers.runner import Loop, WorkerSet
from runplane.workers.stream_trimmer import RetentionLoop
from runplane.workers.webhook_dispatcher import (
    WebhookDeliveryLoop,
    WebhookFanout,
    webhook_consumer,
)

logger = logging.getLogger(__name__)


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


def build_drivers(
    settings: Settings, stack: contextlib.ExitStack | contextlib.AsyncExitStack
) -> dict[str, Driver]:
    process = ProcessDriver(settings.data_dir / "runtimes")
    stack.callback(process.close)  # its launcher; the runtimes run on
    drivers: dict[str, Driver] = {"process": process}
    if settings.driver == "docker" or settings.docker_host:
        drivers["docker"] = DockerDriver(
            settings.docker_host or DEFAULT_DOCKER_HOST, instance=settings.docker_instance
        )
    if settings.driver not in drivers:
        raise ValueError(f"RUNPLANE_DRIVER={settings.driver!r}: use process or docker")
    return drivers


async def open_docker(
    stack: contextlib.AsyncExitStack, deps: Dependencies, client: redis.asyncio.Redis
) -> list[Loop]:
    """Check the engine answers (a clear error at start-up if not) and watch its
    events; nothing when the docker driver is not configured."""
    docker = deps.drivers.get("docker")
    if not isinstance(docker, DockerDriver):
        return []
    stack.push_async_callback(docker.aclose)
    await docker.check()
    return [DockerEventWatcher(docker, RedisHealthEventPublisher(client), deps.clock)]


@contextlib.asynccontextmanager
async def assemble(settings: Settings) -> AsyncIterator[Runplane]:
    """Open every adapter, yield the system, close everything on the way out."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        redis_url = settings.redis_url or _start_embedded_redis(stack, settings.data_dir)
        client = connect_redis(redis_url)
        stack.push_async_callback(client.aclose)
        # Stream consumers read raw bytes: one non-UTF-8 entry must not fail a read.
        stream_client = connect_redis(redis_url, decode_responses=False)
        stack.push_async_callback(stream_client.aclose)
        # Closed before the client (LIFO). Bytes client: a non-UTF-8 entry is skipped.
        event_reader = RedisEventReader(stream_client)
        stack.push_async_callback(event_reader.aclose)
        database = SqlDatabase.from_url(settings.resolved_database_url)
        stack.push_async_callback(database.dispose)
        await upgrade_database(database)

        clock = SystemClock()
        drivers = build_drivers(settings, stack)
        deps = Dependencies(
            runtimes=SqlRuntimeStore(database),
            operations=SqlOperationLog(database),
            leases=RedisLeaseStore(client),
            drivers=drivers,
            clock=clock,
            tokens=SecretTokenGenerator(),
            lease_ttl_ms=settings.lease_ttl_ms,
            event_source=f"/runplane/{settings.consumer_name}",
            timeouts=Timeouts(
                start_s=settings.start_timeout_s,
                stop_s=settings.stop_timeout_s,
                pause_s=settings.pause_timeout_s,
            ),
        )
        lifecycle = Lifecycle.build(deps, default_driver=settings.driver)
        keys = ApiKeys(SqlApiKeyStore(database), clock)
        await ensure_admin_key(keys, settings.admin_key_path)
        engine_watchers = await open_docker(stack, deps, client)
        await adopt_runtimes(deps)

        async def redis_ready() -> None:
            await client.ping()

        async def database_ready() -> None:
            await deps.runtimes.get("readyz")

        relay = OutboxRelay(
            SqlOutbox(database),
            RedisEventPublisher(client),
            deps.leases,
            clock,
            deps.tokens,
            lease_ttl_ms=settings.lease_ttl_ms,
        )
        webhooks, webhook_workers = await _webhooks(
            stack, settings, database, client, stream_client, clock, deps.tokens
        )
        health_sources, health_workers = _health(
            stack, settings, database, client, stream_client, lifecycle
        )
        workers = WorkerSet(
            [
                relay,
                *engine_watchers,
                RetentionLoop(stream_client, {EVENTS_STREAM: events_retention(settings)}),
                *webhook_workers,
                *health_workers,
                *job_consumers(
                    stream_client,
                    lifecycle=lifecycle,
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
            wait_max_timeout_s=settings.wait_max_timeout_s,
        )
        app = create_app(context)
        app.state.event_reader = event_reader
        app.state.webhooks = webhooks
        app.state.health = health_sources
        yield Runplane(settings, lifecycle, keys, app, client, database, workers)


async def _webhooks(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    database: SqlDatabase,
    client: redis.asyncio.Redis,
    stream_client: redis.asyncio.Redis,
    clock: Clock,
    tokens: TokenGenerator,
) -> tuple[WebhookService, list[Loop]]:
    """The webhook service for the API, and its two workers: the fan-out from the
    events stream into deliveries, and the loop that sends (and retries) them."""
    store = SqlWebhookStore(database, SecretBox(settings.data_dir / "webhook.key"))
    sender = HttpWebhookSender(clock, allow_private=settings.webhook_allow_private)
    stack.push_async_callback(sender.aclose)
    publisher = RedisEventPublisher(client)
    source = f"/runplane/{settings.consumer_name}"

    async def disabled(webhook: Webhook, reason: str) -> None:
        now, event_id = clock.now(), tokens.new_token()
        payload = webhook_envelope(
            webhook,
            event_id=event_id,
            event_type=DISABLED_EVENT_TYPE,
            at=now,
            source=source,
            reason=reason,
        )
        event = OutboxEvent(
            0, event_id, "", webhook.team_id, DISABLED_EVENT_TYPE, True, payload, now
        )
        await publisher.publish([event])

    deliverer = Deliverer(
        store,
        sender,
        clock,
        schedule=RetrySchedule(parse_retry_schedule(settings.webhook_retry_schedule_s)),
        on_disabled=disabled,
    )
    service = WebhookService(
        store,
        deliverer,
        clock,
        tokens,
        resolver=resolve_host,
        allow_private=settings.webhook_allow_private,
    )
    delivery_loop = WebhookDeliveryLoop(store, deliverer, clock)
    fanout = WebhookFanout(store, clock, tokens, on_added=delivery_loop.wake)
    # No retention here: this group's acknowledgements alone must not trim the
    # events stream that SSE readers replay from.
    consumer = webhook_consumer(
        stream_client,
        fanout,
        consumer=settings.consumer_name,
        settings=dataclasses.replace(consumer_settings(settings), retention=None),
    )
    return service, [consumer, delivery_loop]


def _health(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    database: SqlDatabase,
    client: redis.asyncio.Redis,
    stream_client: redis.asyncio.Redis,
    lifecycle: Lifecycle,
) -> tuple[HealthSources, list[Loop]]:
    """What the health API reads, and the health workers: the monitor, the
    health events consumer (one leader), the restart scheduler, the reconciler."""
    deps = lifecycle.deps
    rows = SqlHealthSnapshotStore(database)
    reporter = HealthReporter(
        RedisHealthEventPublisher(client, max_len=settings.health_events_stream_max_len),
        rows,
        deps.clock,
    )
    prober = NetworkProber()
    stack.push_async_callback(prober.aclose)
    lease_probe = RedisLeaseProbe(client)
    restarts = RestartScheduler(
        RestartPolicyService(
            lifecycle,
            backoff_base_s=settings.restart_backoff_base_s,
            backoff_cap_s=max(settings.restart_backoff_cap_s, settings.restart_backoff_base_s),
            lease_wait_ms=settings.stream_lease_wait_ms,
        )
    )
    applier = HealthEventApplier(
        deps,
        SqlEngineHealthStore(database),
        RedisSnapshotPublisher(client),
        on_unreachable=restarts.on_unreachable,
    )
    offsets = RedisOffsetStore(client)
    reading = dataclasses.replace(consumer_settings(settings), retention=None)
    ttl_ms = settings.lease_ttl_ms

    def consumer() -> Loop:
        return health_events_consumer(stream_client, offsets, applier, settings=reading)

    monitor = HealthMonitor(
        deps.runtimes,
        deps.drivers,
        reporter,
        prober,
        lease_probe,
        deps.clock,
        leadership=Leadership(deps.leases, deps.tokens, MONITOR_LEASE, ttl_ms=ttl_ms),
        interval_s=settings.health_monitor_interval_s,
    )
    round_ms = int((settings.reconcile_interval_s + settings.reconcile_jitter_s) * 1000)
    reconciler = Reconciler(
        deps.runtimes,
        deps.drivers,
        TransientSettler(deps),
        reporter,
        lease_probe,
        deps.clock,
        leadership=Leadership(
            deps.leases, deps.tokens, RECONCILER_LEASE, ttl_ms=max(ttl_ms, 2 * round_ms)
        ),
        restarts=restarts,
        interval_s=settings.reconcile_interval_s,
        jitter_s=settings.reconcile_jitter_s,
        stop_orphans=settings.stop_orphans,
    )
    events = LeaderOnly(
        Leadership(deps.leases, deps.tokens, HEALTH_EVENTS_LEASE, ttl_ms=ttl_ms),
        consumer,
        check_interval_s=ttl_ms / 3000,
    )
    sources = HealthSources(rows, RedisHealthEventReader(client))
    return sources, [monitor, events, restarts, reconciler]


def events_retention(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        max_len=settings.events_stream_max_len, max_age_ms=settings.events_stream_max_age_ms
    )


def consumer_settings(settings: Settings) -> ConsumerSettings:
    retention = RetentionPolicy(
        max_len=settings.job_stream_max_len, max_age_ms=settings.job_stream_max_age_ms
    )
    return ConsumerSettings(
        batch_size=settings.stream_batch_size,
        block_ms=settings.stream_block_ms,
        max_concurrency=settings.stream_batch_size,
        max_deliveries=settings.stream_max_deliveries,
        claim_idle_ms=settings.stream_claim_idle_ms,
        retention=retention,
    )


def _start_embedded_redis(stack: contextlib.AsyncExitStack, data_dir: Path) -> str:
    embedded = EmbeddedRedis(data_dir / "redis")
    url = embedded.start()
    stack.callback(embedded.stop)
    logger.info("embedded redis started", extra={"url": url})
    return url


async def adopt_runtimes(deps: Dependencies) -> None:
    """Runtimes outlive runplane: count what each driver still runs, so an operator
    sees at start-up that they were found again (drivers inspect statelessly)."""
    for name, driver in deps.drivers.items():
        containers = await driver.list_containers()
        live = sum(1 for c in containers if c.state in {"running", "paused"})
        logger.info("runtimes adopted", extra={"driver": name, "live": live})


def migrate_database(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_sync(settings.resolved_database_url)
