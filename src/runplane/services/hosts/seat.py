"""A host's seat: the lease `lease:{runplane:host-agent:<host_id>}`, held by the
one agent (or `serve` with an embedded host) that acts on the host.

The token is the agent's own, kept in its data dir, so an agent restarted on
the same data dir (after a kill -9 even) is the holder again at once, while
another agent waits for the lease to expire (its holder dead) or gives up."""

from __future__ import annotations

import asyncio
import logging
import time

from runplane.ports.leases import LeaseStore

logger = logging.getLogger(__name__)

_POLL_S = 0.2


class HostSeat:
    def __init__(
        self, leases: LeaseStore, name: str, host_id: str, token: str, *, ttl_ms: int
    ) -> None:
        self.leases = leases
        self.name = name
        self.host_id = host_id
        self.token = token
        self.ttl_ms = ttl_ms

    def __repr__(self) -> str:
        return f"HostSeat({self.host_id!r})"

    async def claim(self, wait_ms: int) -> bool:
        """True once the seat is ours (free, or ours already: a restart); False
        if another token still holds it after `wait_ms`."""
        deadline = time.monotonic() + wait_ms / 1000
        while True:
            if await self._take():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)

    async def keep(self) -> bool:
        """Renew the seat: False when another token holds it now (this holder
        must stop acting on the host). An expired seat nobody took is taken
        again. Raises StoreUnavailable when Redis cannot be reached."""
        return await self._take()

    async def release(self) -> None:
        """Give the seat up (if still ours), shielded; a failure is logged: the
        seat then frees itself after its TTL."""
        try:
            await asyncio.shield(self.leases.release(self.name, self.token))
        except Exception:
            logger.warning(
                "host seat release failed", extra={"host_id": self.host_id}, exc_info=True
            )

    async def _take(self) -> bool:
        if await self.leases.renew(self.name, self.token, self.ttl_ms):
            return True
        return await self.leases.try_acquire(self.name, self.token, self.ttl_ms)
