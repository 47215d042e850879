"""Leader election by a Redis lease, for loops one instance at a time should run
(the health monitor, the reconciler): take the lease, renew it every round,
give it back on the way out. As the outbox relay does, by name."""

from __future__ import annotations

import logging

from runplane.ports.leases import LeaseStore
from runplane.ports.system import TokenGenerator

logger = logging.getLogger(__name__)


class Leadership:
    """`lease:{<name>}` held by this instance's token while it leads."""

    def __init__(
        self, leases: LeaseStore, tokens: TokenGenerator, name: str, *, ttl_ms: int = 10_000
    ) -> None:
        if ttl_ms < 100:
            raise ValueError("ttl_ms must be at least 100")
        self.leases = leases
        self.name = name
        self.ttl_ms = ttl_ms
        self.token = tokens.new_token()
        self.leading = False

    async def hold(self) -> bool:
        """Renew the lease if held, else (or if it lapsed) try to take it. True
        while leading. Raises StoreUnavailable when Redis is away (leadership is
        then unknown). A loop that renews less often than `ttl_ms` may lose the
        lease between rounds; it takes it again if nobody else did."""
        if self.leading:
            self.leading = await self.leases.renew(self.name, self.token, self.ttl_ms)
            if self.leading:
                return True
            logger.warning("leadership lost", extra={"lease": self.name})
        self.leading = await self.leases.try_acquire(self.name, self.token, self.ttl_ms)
        if self.leading:
            logger.info("leadership taken", extra={"lease": self.name})
        return self.leading

    async def release(self) -> None:
        if not self.leading:
            return
        self.leading = False
        try:
            await self.leases.release(self.name, self.token)
        except Exception:
            logger.warning(
                "leadership lease not released", extra={"lease": self.name}, exc_info=True
            )
