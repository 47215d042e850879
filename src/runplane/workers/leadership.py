"""The one leader election: for work one instance at a time should do (the
outbox relay, the health monitor, the reconciler, the health events consumer).

`Leadership` holds the lease `lease:{<name>}` through the one held lease
(`services/lease.py`): renewed in the background every third of its TTL while
leading, released shielded from cancellation. A loop asks `hold()` each round
and gives it back with `release()` on its way out; `LeaderOnly` runs a whole
loop (a stream consumer, say) only while its instance leads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from runplane.ports.leases import LeaseStore
from runplane.ports.system import TokenGenerator
from runplane.services import lease
from runplane.workers.periodic import PeriodicLoop
from runplane.workers.runner import Loop

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
        self._held: lease.HeldLease | None = None

    def __repr__(self) -> str:
        return f"Leadership({self.name!r})"

    @property
    def leading(self) -> bool:
        return self._held is not None and not self._held.lost

    async def hold(self) -> bool:
        """True while leading: the lease is held (its renewal runs on its own),
        or was free and is taken now. A lease lost (another took it, or no
        renewal went through for a TTL) is given up and taken again if free.
        Raises StoreUnavailable when Redis is away and the lease is not held
        (leadership is then unknown)."""
        if self._held is not None:
            if not self._held.lost:
                return True
            logger.warning("leadership lost", extra={"lease": self.name})
            await self.release()
        self._held = await lease.take(self.leases, self.name, self.token, self.ttl_ms)
        if self._held is not None:
            logger.info("leadership taken", extra={"lease": self.name})
        return self._held is not None

    async def release(self) -> None:
        """Stop leading and give the lease back (shielded; a failure is logged)."""
        held, self._held = self._held, None
        if held is not None:
            await held.release()


class LeaderOnly:
    """Runs the loop `make()` builds only while `leadership` holds its lease,
    looking every `check_interval_s`; losing the lease stops it (a stopped loop
    is not run again: the next leadership builds a new one)."""

    def __init__(
        self, leadership: Leadership, make: Callable[[], Loop], *, check_interval_s: float = 2.0
    ) -> None:
        self.leadership = leadership
        self.make = make
        self._inner: Loop | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop = PeriodicLoop(
            f"leader only {leadership.name}", self.check, interval_s=check_interval_s
        )

    def __repr__(self) -> str:
        return f"LeaderOnly({self.leadership.name!r})"

    @property
    def leading(self) -> bool:
        return self._task is not None

    def request_stop(self) -> None:
        self._loop.request_stop()
        if self._inner is not None:
            self._inner.request_stop()

    async def run(self) -> None:
        try:
            await self._loop.run()
        finally:
            await self._stop_inner()
            await self.leadership.release()

    async def check(self) -> None:
        """One look: start the loop on taking the lead, stop it on losing it. A
        failed look (Redis away: leadership unknown) keeps what runs."""
        leading = await self.leadership.hold()
        if self._task is not None and self._task.done():
            ended = self._task
            error = None if ended.cancelled() else ended.exception()
            fields = {"lease": self.leadership.name, "worker": ended.get_name()}
            logger.error("led loop ended on its own", extra=fields, exc_info=error)
            self._task = self._inner = None
        if leading and self._task is None:
            self._inner = self.make()
            self._task = asyncio.create_task(self._inner.run(), name=repr(self._inner))
        elif not leading and self._task is not None:
            await self._stop_inner()

    async def _stop_inner(self) -> None:
        inner, task = self._inner, self._task
        self._inner = self._task = None
        if inner is None or task is None:
            return
        inner.request_stop()
        await asyncio.gather(task, return_exceptions=True)
