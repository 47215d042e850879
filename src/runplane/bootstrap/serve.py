"""`runplane serve`: the API under uvicorn, and every worker, until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator

import uvicorn

from runplane.bootstrap.assembly import assemble
from runplane.config import Settings
from runplane.domain.errors import DriverError
from runplane.logs import configure_logging
from runplane.services.event_fanout import EventFanout

logger = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    configure_logging(settings.log_format)
    # Before anything is written: the database (and its -wal/-shm), the
    # embedded Redis files, the runtimes' state and logs are runplane's alone.
    os.umask(0o077)
    try:
        asyncio.run(_serve(settings))
    except DriverError as exc:  # the engine is unreachable: say so, no traceback
        raise SystemExit(f"runplane: {exc}") from exc


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT once it has shut down, which would kill the
    process before the embedded Redis and the adapters are closed; runplane
    handles the signals itself instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(settings: Settings) -> None:
    async with assemble(settings) as system:
        # log_config=None: uvicorn's loggers keep the handler configure_logging set.
        config = uvicorn.Config(
            system.app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            log_level="info",
            lifespan="off",
        )
        server = _Server(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _request_exit, server, system.event_reader)
        logger.info("runplane serving", extra={"url": settings.base_url})
        system.workers.start()
        try:
            await server.serve()
        finally:
            # Drain: consumers finish and acknowledge what they hold, then close.
            await system.workers.stop()
    logger.info("runplane stopped")


def _request_exit(server: uvicorn.Server, event_reader: EventFanout) -> None:
    server.should_exit = True
    event_reader.close()  # open SSE streams would keep uvicorn waiting: end them
