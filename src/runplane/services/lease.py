"""Holding a runtime's lease: acquire (at once or with a bounded wait), keep it
renewed while a long driver call runs, release it by compare-and-delete."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from runplane.ports.leases import LeaseStore

logger = logging.getLogger(__name__)

_POLL_S = 0.05


async def acquire(
    leases: LeaseStore, runtime_id: str, token: str, ttl_ms: int, wait_ms: int
) -> bool:
    """True once the lease is ours; False if it is still held after `wait_ms`."""
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        if await leases.try_acquire(runtime_id, token, ttl_ms):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)


@contextlib.asynccontextmanager
async def kept_alive(
    leases: LeaseStore, runtime_id: str, token: str, ttl_ms: int
) -> AsyncIterator[None]:
    """Renew the lease every third of its TTL until the block ends, then release it.
    Release runs even when the block was cancelled."""
    done = asyncio.Event()
    renewer = asyncio.create_task(_renew_until(done, leases, runtime_id, token, ttl_ms))
    try:
        yield
    finally:
        done.set()
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        try:
            await asyncio.shield(leases.release(runtime_id, token))
        except Exception:
            # The lease expires by itself; a failed release only delays the next op.
            logger.warning("lease release failed", extra={"runtime_id": runtime_id}, exc_info=True)


async def _renew_until(
    done: asyncio.Event, leases: LeaseStore, runtime_id: str, token: str, ttl_ms: int
) -> None:
    """Renew until `done` is set. The event, not only the cancel that comes with
    it, ends the loop: redis-py can swallow a cancellation that lands in the
    middle of a command, and the renewal would then go on for ever."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), ttl_ms / 3000)
        if done.is_set():
            return
        try:
            still_ours = await leases.renew(runtime_id, token, ttl_ms)
        except Exception:
            logger.warning("lease renewal failed", extra={"runtime_id": runtime_id}, exc_info=True)
            continue
        if not still_ours:
            logger.error("lease lost while operating", extra={"runtime_id": runtime_id})
            return
