"""`runplane agent`: this machine's drivers, serving the driver calls addressed
to its host over the shared Redis (docs/hosts.d/h2.md). It opens no port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from runplane.adapters.redis.client import connect as connect_redis
from runplane.adapters.redis.host_calls import RedisHostCallInbox
from runplane.bootstrap.data_dir import secure_data_dir
from runplane.bootstrap.infrastructure import build_drivers
from runplane.config import Settings
from runplane.domain.errors import DriverError
from runplane.logs import configure_logging
from runplane.workers.agent import AgentLoop

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
    host_id = settings.resolved_agent_host_id
    secure_data_dir(settings.data_dir)
    async with contextlib.AsyncExitStack() as stack:
        # Bytes: a non-UTF-8 entry must reach the loop (and be refused), not fail the read.
        client = connect_redis(settings.redis_url, decode_responses=False)
        stack.push_async_callback(client.aclose)
        drivers = build_drivers(settings, stack)
        inbox = RedisHostCallInbox(client, host_id, answer_ttl_s=settings.agent_answer_ttl_s)
        loop = AgentLoop(inbox, drivers, max_calls=settings.agent_max_calls)
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, loop.request_stop)
        logger.info("agent serving", extra={"host_id": host_id, "drivers": sorted(drivers)})
        await loop.run()
        logger.info("agent stopped", extra={"host_id": host_id})
