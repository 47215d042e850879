"""Infrastructure: Redis (external or embedded), the database, the drivers."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import redis.asyncio

from runplane.adapters.drivers.output_settings import OutputSettings
from runplane.adapters.drivers.process_snapshots import SnapshottingProcessDriver
from runplane.adapters.drivers.process_user import RuntimeSandbox
from runplane.adapters.redis.client import connect as connect_redis
from runplane.adapters.redis.embedded import EmbeddedRedis
from runplane.adapters.redis.health import RedisHealthEventPublisher
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.migrate import upgrade_database, upgrade_sync
from runplane.bootstrap.data_dir import secure_data_dir
from runplane.config import Settings
from runplane.domain.errors import DriverError
from runplane.ports.drivers import Driver
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.workers.engine_events import EngineEventsLoop
from runplane.workers.runner import Loop

logger = logging.getLogger(__name__)


async def open_redis(
    stack: contextlib.AsyncExitStack, settings: Settings
) -> tuple[redis.asyncio.Redis, redis.asyncio.Redis]:
    """A client that decodes responses, and one that keeps bytes for stream
    consumers (one non-UTF-8 entry must not fail a read)."""
    check_cluster_settings(settings)
    url = settings.redis_url or _start_embedded_redis(stack, settings.data_dir)
    client = connect_redis(url, cluster=settings.redis_cluster)
    stack.push_async_callback(client.aclose)
    stream_client = connect_redis(url, cluster=settings.redis_cluster, decode_responses=False)
    stack.push_async_callback(stream_client.aclose)
    return client, stream_client


def check_cluster_settings(settings: Settings) -> None:
    if settings.redis_cluster and not settings.redis_url:
        raise ValueError(
            "RUNPLANE_REDIS_CLUSTER=true needs RUNPLANE_REDIS_URL (any node of the "
            "cluster): the embedded Redis is never a cluster"
        )


async def open_database(stack: contextlib.AsyncExitStack, settings: Settings) -> SqlDatabase:
    database = SqlDatabase.from_url(settings.resolved_database_url)
    stack.push_async_callback(database.dispose)
    await upgrade_database(database)
    return database


def build_drivers(
    settings: Settings, stack: contextlib.ExitStack | contextlib.AsyncExitStack
) -> dict[str, Driver]:
    output = output_settings(settings)
    process = SnapshottingProcessDriver(
        settings.data_dir / "runtimes", sandbox=runtime_sandbox(settings), output=output
    )
    stack.callback(process.close)  # its launcher; the runtimes run on
    drivers: dict[str, Driver] = {"process": process}
    docker = None
    if settings.driver == "docker" or settings.docker_host:
        # Imported only here: aiodocker (and aiohttp) are a tenth of start-up
        # for the many instances that drive no engine.
        from runplane.adapters.drivers.docker import DEFAULT_DOCKER_HOST
        from runplane.adapters.drivers.docker_snapshots import SnapshottingDockerDriver

        docker = drivers["docker"] = SnapshottingDockerDriver(
            settings.docker_host or DEFAULT_DOCKER_HOST,
            instance=settings.docker_instance,
            output=output,
        )
    if settings.driver not in drivers:
        raise ValueError(f"RUNPLANE_DRIVER={settings.driver!r}: use process or docker")
    if isinstance(stack, contextlib.AsyncExitStack):
        stack.push_async_callback(process.resource_history().aclose)
    if output.metrics_per_runtime:  # every runtime sampled from the start
        process.resource_history().start_everything()
        if docker is not None:
            docker.output.resource_history().start_everything()
    return drivers


def output_settings(settings: Settings) -> OutputSettings:
    return OutputSettings(
        log_max_bytes=settings.runtime_log_max_bytes,
        log_files=settings.runtime_log_files,
        metrics_interval_s=settings.metrics_sample_s,
        metrics_watch_s=settings.metrics_watch_s,
        metrics_per_runtime=settings.metrics_per_runtime,
    )


def runtime_sandbox(settings: Settings) -> RuntimeSandbox:
    """Who process runtimes and exec probes run as, where, with what env.
    DriverError if `runtime_user` names no user (runplane as root)."""
    work_dir = settings.resolved_work_dir
    if work_dir.is_relative_to(settings.data_dir.resolve()):
        # The data dir is 0700 and closed up at start: the runtime user could not enter.
        raise DriverError(f"RUNPLANE_WORK_DIR={work_dir} must be outside the data dir")
    return RuntimeSandbox.of(settings.runtime_user, work_dir)


async def open_docker(
    stack: contextlib.AsyncExitStack, deps: Dependencies, client: redis.asyncio.Redis
) -> list[Loop]:
    """Check the engine answers (a clear error at start-up if not) and watch its
    events; nothing when the docker driver is not configured."""
    if "docker" not in deps.drivers:
        return []  # and aiodocker stays unimported (build_drivers)
    from runplane.adapters.drivers.docker import DockerDriver
    from runplane.adapters.drivers.docker_events import DockerEventWatcher

    docker = deps.drivers["docker"]
    if not isinstance(docker, DockerDriver):
        return []
    stack.push_async_callback(docker.aclose)
    await docker.check()
    watcher = DockerEventWatcher(docker, RedisHealthEventPublisher(client), deps.clock)
    return [EngineEventsLoop(watcher)]


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
    secure_data_dir(settings.data_dir)
    upgrade_sync(settings.resolved_database_url)
