"""`runplane serve`: the API under uvicorn, and every worker, until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator

import uvicorn
from prometheus_client import make_asgi_app
from starlette.types import ASGIApp

from runplane.bootstrap.assembly import Runplane, assemble
from runplane.bootstrap.banner import banner, summary
from runplane.bootstrap.heap import freeze_startup_heap
from runplane.bootstrap.hooks import HookLoadError
from runplane.bootstrap.http_protocol import with_header_timeout
from runplane.bootstrap.infrastructure import check_cluster_settings
from runplane.config import Settings
from runplane.domain.errors import DriverError
from runplane.domain.hosts import InvalidHost
from runplane.logs import LogFormat, configure_logging

logger = logging.getLogger(__name__)

HOST_CALL_STOP_GRACE_S = 1.0
"""At a stop, how long answers from other hosts' agents are still waited for
(they take milliseconds); docs/hosts.md."""


def serve(settings: Settings) -> None:
    # Refused before logging is set up or anything started: a setting, not a fault.
    try:
        check_cluster_settings(settings)
    except ValueError as exc:
        raise SystemExit(f"runplane: {exc}") from exc
    configure_logging(settings.log_format, settings.log_level)
    # Before anything is written: the database (and its -wal/-shm), the
    # embedded Redis files, the runtimes' state and logs are runplane's alone.
    os.umask(0o077)
    try:
        asyncio.run(_serve(settings))
    # The engine is unreachable, RUNPLANE_HOST_LABELS is malformed or a hook
    # cannot load: say so, no traceback.
    except (DriverError, InvalidHost, HookLoadError) as exc:
        raise SystemExit(f"runplane: {exc}") from exc


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT once it has shut down, which would kill the
    process before the embedded Redis and the adapters are closed; runplane
    handles the signals itself instead."""

    TICK_S = 1.0
    """uvicorn's own loop wakes ten times a second to see whether it should
    exit, and renews the Date header every tenth wake. Here it wakes once a
    second (the header's resolution) and at once when asked to exit: at idle,
    the other nine wakes were a tenth of serve's CPU."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._tick: asyncio.Future[None] | None = None
        super().__init__(config)
        self.listening = asyncio.Event()
        """Set once the listener accepts connections (uvicorn has no event for it)."""

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value and self._tick is not None and not self._tick.done():
            self._tick.set_result(None)

    async def main_loop(self) -> None:
        loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864_000  # a multiple of 10: each tick renews the header
            self._tick = tick = loop.create_future()
            timer = loop.call_later(self.TICK_S, _resolve, tick)
            try:
                await tick
            finally:
                timer.cancel()
                self._tick = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """uvicorn as `serve` runs it. What a slow or idle client can hold
    (docs/security.md): headers of at most http_max_header_bytes, for at most
    http_header_timeout_s; a body for request_body_timeout_s (the API's limit);
    an idle keep-alive connection for http_keep_alive_s. Past
    http_max_concurrency connections or requests in flight, new ones get 503."""
    # log_config=None: uvicorn's loggers keep the handler configure_logging set.
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=str(settings.log_level),
        lifespan="off",
        http=with_header_timeout(settings.http_header_timeout_s),
        ws="none",
        timeout_keep_alive=settings.http_keep_alive_s,
        limit_concurrency=settings.http_max_concurrency or None,
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
    )


async def _serve(settings: Settings) -> None:
    async with assemble(settings) as system:
        freeze_startup_heap()
        config = uvicorn_config(system.app, settings)
        servers = [_Server(config), *_metrics_listener(settings)]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _request_exit, servers, system)
        system.workers.start()
        announce = asyncio.create_task(_announce(servers, settings))
        try:
            await asyncio.gather(*(server.serve() for server in servers))
        finally:
            announce.cancel()
            # Drain: consumers finish and acknowledge what they hold, then close.
            await system.workers.stop()
    logger.info("runplane stopped")


async def _announce(servers: list[_Server], settings: Settings) -> None:
    """Once every listener accepts connections: one log line, and for a person
    at a terminal (text logs), the banner on stdout."""
    await asyncio.gather(*(server.listening.wait() for server in servers))
    logger.info("runplane serving", extra=summary(settings))
    if settings.log_format is LogFormat.TEXT:
        sys.stdout.write(banner(settings))
        sys.stdout.flush()


def _metrics_listener(settings: Settings) -> list[_Server]:
    """`/metrics` alone, without a key, on `metrics_port` (same host as the API)."""
    if settings.metrics_port is None:
        return []
    config = uvicorn.Config(
        make_asgi_app(),
        host=settings.host,
        port=settings.metrics_port,
        log_config=None,
        log_level="warning",
        lifespan="off",
    )
    return [_Server(config)]


def _request_exit(servers: list[_Server], system: Runplane) -> None:
    for server in servers:
        server.should_exit = True
    system.event_reader.close()  # open SSE streams would keep uvicorn waiting: end them
    # A request or worker round waiting on a host whose agent is gone (not yet
    # marked down) would hold the stop for the whole call bound.
    system.host_calls.stop_waiting(HOST_CALL_STOP_GRACE_S)
