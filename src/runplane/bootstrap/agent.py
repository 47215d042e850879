"""`runplane agent`: this machine's drivers, serving the driver calls addressed
to its host over the shared Redis (docs/hosts.d/h2.md). It opens no port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from runplane.adapters.drivers.docker import DockerDriver
from runplane.adapters.drivers.docker_events import DockerEventWatcher
from runplane.adapters.redis.client import connect as connect_redis
from runplane.adapters.redis.health import RedisHealthEventPublisher
from runplane.adapters.redis.host_calls import RedisHostCallInbox
from runplane.adapters.system import SystemClock
from runplane.bootstrap.data_dir import secure_data_dir
from runplane.bootstrap.infrastructure import build_drivers
from runplane.config import Settings
from runplane.domain.errors import DriverError
from runplane.logs import configure_logging
from runplane.workers.agent import AgentLoop
from runplane.workers.engine_events import EngineEventsLoop
from runplane.workers.runner import Loop, WorkerSet

logger = logging.getLogger(__name__)


def agent(settings: Settings) -> None:
    configure_logging(settings.log_format)
    if not settings.redis_url:
        raise SystemExit("runplane agent: set RUNPLANE_REDIS_URL (the Redis every instance shares)")
    os.umask(0o077)  # the runtimes' state and logs are the agent's alone
    try:
        asyncio.run(run_agent(settings))
    except DriverError as exc:
        raise SystemExit(f"runplane agent: {exc}") from exc


async def run_agent(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; calls in flight are finished first."""
    assert settings.redis_url is not None
    host_id = settings.host_id
    secure_data_dir(settings.data_dir)
    async with contextlib.AsyncExitStack() as stack:
        # Bytes: a non-UTF-8 entry must reach the loop (and be refused), not fail the read.
        client = connect_redis(settings.redis_url, decode_responses=False)
        stack.push_async_callback(client.aclose)
        drivers = build_drivers(settings, stack)
        inbox = RedisHostCallInbox(client, host_id, answer_ttl_s=settings.agent_answer_ttl_s)
        loops: list[Loop] = [AgentLoop(inbox, drivers, max_calls=settings.agent_max_calls)]
        loops += await _engine_events(stack, settings, drivers.get("docker"))
        workers = WorkerSet(loops)
        stopped = asyncio.Event()
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, stopped.set)
        logger.info("agent serving", extra={"host_id": host_id, "drivers": sorted(drivers)})
        workers.start()
        await stopped.wait()
        await workers.stop()
        logger.info("agent stopped", extra={"host_id": host_id})


async def _engine_events(
    stack: contextlib.AsyncExitStack, settings: Settings, docker: object
) -> list[Loop]:
    """The host's docker event stream (die, oom, health_status, destroy), read
    here, next to the engine, into the shared `runtime:health_events` that
    serve's health consumer applies. Nothing without a docker driver."""
    if not isinstance(docker, DockerDriver):
        return []
    stack.push_async_callback(docker.aclose)
    await docker.check()
    assert settings.redis_url is not None
    client = connect_redis(settings.redis_url)  # the publisher writes text
    stack.push_async_callback(client.aclose)
    publisher = RedisHealthEventPublisher(client, max_len=settings.health_events_stream_max_len)
    return [EngineEventsLoop(DockerEventWatcher(docker, publisher, SystemClock()))]
