"""`runplane agent`: this machine's drivers, serving the driver calls addressed
to its host over the shared Redis (docs/hosts.md). It opens no port.

At start it claims the host's seat (one agent per host id), then beats its
details every RUNPLANE_HOST_HEARTBEAT_S, renewing the seat each time. On SIGTERM
it releases the seat (a replacement may start at once) but leaves its beat to
expire: a stopped agent is a host going away, marked down by the monitor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from runplane.adapters.drivers.connections import LocalConnections
from runplane.adapters.redis.client import connect as connect_redis
from runplane.adapters.redis.health import RedisHealthEventPublisher
from runplane.adapters.redis.host_beats import RedisHostBeats
from runplane.adapters.redis.host_calls import RedisHostCallInbox
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.system import SystemClock
from runplane.bootstrap.data_dir import secure_data_dir
from runplane.bootstrap.exits import exit_watchers
from runplane.bootstrap.heap import freeze_startup_heap
from runplane.bootstrap.hosts import BEAT_TTL_PERIODS, local_host
from runplane.bootstrap.infrastructure import build_drivers
from runplane.bootstrap.seat import claim_seat
from runplane.config import Settings
from runplane.domain.errors import DriverError
from runplane.logs import configure_logging
from runplane.ports.drivers import Driver
from runplane.workers.agent import AgentLoop
from runplane.workers.engine_events import EngineEventsLoop
from runplane.workers.host_presence import HostPresence
from runplane.workers.runner import Loop, WorkerSet

logger = logging.getLogger(__name__)


def agent(settings: Settings) -> None:
    configure_logging(settings.log_format, settings.log_level)
    if not settings.redis_url:
        raise SystemExit("runplane agent: set RUNPLANE_REDIS_URL (the Redis every instance shares)")
    os.umask(0o077)  # the runtimes' state and logs are the agent's alone
    try:
        asyncio.run(run_agent(settings))
    except DriverError as exc:
        raise SystemExit(f"runplane agent: {exc}") from exc


async def run_agent(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; calls in flight are finished first. Exits
    non-zero when the host's seat is held by another agent, at start or later."""
    assert settings.redis_url is not None
    host_id = settings.host_id
    secure_data_dir(settings.data_dir)
    async with contextlib.AsyncExitStack() as stack:
        text_client = connect_redis(
            settings.redis_url, cluster=settings.redis_cluster
        )  # the seat (a lease) is text
        stack.push_async_callback(text_client.aclose)
        seat = await claim_seat(
            settings,
            RedisLeaseStore(text_client),
            "runplane agent",
            "stop it, or give this agent another RUNPLANE_HOST_ID",
        )
        stack.push_async_callback(seat.release)
        # Bytes: a non-UTF-8 entry must reach the loop (and be refused), not fail the read.
        client = connect_redis(
            settings.redis_url, cluster=settings.redis_cluster, decode_responses=False
        )
        stack.push_async_callback(client.aclose)
        drivers = build_drivers(settings, stack)
        inbox = RedisHostCallInbox(client, host_id, answer_ttl_s=settings.agent_answer_ttl_s)
        stopped = asyncio.Event()
        beats = RedisHostBeats(client)
        details = local_host(settings, list(drivers))
        ttl_s = settings.host_heartbeat_s * BEAT_TTL_PERIODS
        presence = HostPresence(
            seat,
            lambda: beats.beat(details, ttl_s),
            stopped.set,
            interval_s=settings.host_heartbeat_s,
        )
        loops: list[Loop] = [
            presence,
            AgentLoop(
                inbox,
                drivers,
                max_calls=settings.agent_max_calls,
                connections=LocalConnections(drivers),
            ),
        ]
        loops += await _engine_events(stack, settings, drivers.get("docker"))
        loops += _exit_watch(stack, settings, drivers.get("process"))
        workers = WorkerSet(loops)
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, stopped.set)
        await beats.beat(details, ttl_s)  # seen by the monitor's next look
        freeze_startup_heap()
        logger.info("agent serving", extra={"host_id": host_id, "drivers": sorted(drivers)})
        workers.start()
        await stopped.wait()
        await workers.stop()
        if presence.lost:
            raise SystemExit(f"runplane agent: host {host_id!r} was taken by another agent")
        logger.info("agent stopped", extra={"host_id": host_id})


async def _engine_events(
    stack: contextlib.AsyncExitStack, settings: Settings, docker: object
) -> list[Loop]:
    """The host's docker event stream (die, oom, health_status, destroy), read
    here, next to the engine, into the shared `runtime:health_events` that
    serve's health consumer applies. Nothing without a docker driver."""
    if docker is None:
        return []  # and aiodocker stays unimported (build_drivers)
    from runplane.adapters.drivers.docker import DockerDriver
    from runplane.adapters.drivers.docker_events import DockerEventWatcher

    if not isinstance(docker, DockerDriver):
        return []
    stack.push_async_callback(docker.aclose)
    await docker.check()
    assert settings.redis_url is not None
    client = connect_redis(
        settings.redis_url, cluster=settings.redis_cluster
    )  # the publisher writes text
    stack.push_async_callback(client.aclose)
    publisher = RedisHealthEventPublisher(client, max_len=settings.health_events_stream_max_len)
    return [EngineEventsLoop(DockerEventWatcher(docker, publisher, SystemClock()))]


def _exit_watch(
    stack: contextlib.AsyncExitStack, settings: Settings, process: Driver | None
) -> list[Loop]:
    """Process runtimes' ends, seen here on their host (workers/exit_watch.py)."""
    if process is None:
        return []
    assert settings.redis_url is not None
    client = connect_redis(
        settings.redis_url, cluster=settings.redis_cluster
    )  # the publisher writes text
    stack.push_async_callback(client.aclose)
    publisher = RedisHealthEventPublisher(client, max_len=settings.health_events_stream_max_len)
    return exit_watchers(process, publisher, SystemClock(), settings)
