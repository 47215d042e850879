"""The one leader election: for work one instance at a time should do (the
outbox relay, the health monitor, the reconciler, the health events consumer,
the host monitor and the host drain).

`Leadership` holds the lease `lease:{<name>}` through the one held lease
(`services/lease.py`): renewed in the background every third of its TTL while
leading (so a round longer than the TTL keeps it), released shielded from
cancellation. A follower retries every quarter of the TTL (with a little
jitter) in the background, and wakes its worker when it takes the lead, so the
lead moves within TTL + a quarter of it of a leader's death (2.5 s with the
default `leader_ttl_ms` of 2,000), whatever the worker's own round interval.

A loop asks `hold()` each round and gives it back with `release()` on its way
out; `LeaderOnly` runs a whole loop (a stream consumer, say) only while its
instance leads. A lease that could not be renewed before its end (Redis away)
counts as lost: the worker is woken and stops leading, as leadership is then
unknown."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from runplane.ports.leases import LeaseStore
from runplane.ports.system import TokenGenerator
from runplane.services import lease
from runplane.workers.periodic import PeriodicLoop, Round
from runplane.workers.runner import Loop

logger = logging.getLogger(__name__)

DEFAULT_TTL_MS = 2_000


class Leadership:
    """`lease:{<name>}` held by this instance's token while it leads."""

    def __init__(
        self,
        leases: LeaseStore,
        tokens: TokenGenerator,
        name: str,
        *,
        ttl_ms: int = DEFAULT_TTL_MS,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if ttl_ms < 100:
            raise ValueError("ttl_ms must be at least 100")
        self.leases = leases
        self.name = name
        self.ttl_ms = ttl_ms
        self.token = tokens.new_token()
        self._rand = rand
        self._held: lease.HeldLease | None = None
        self._taking = asyncio.Lock()
        self._follower: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"Leadership({self.name!r})"

    @property
    def retry_interval_s(self) -> float:
        """How often a follower tries to take the lead (a quarter of the TTL)."""
        return self.ttl_ms / 4000

    @property
    def leading(self) -> bool:
        return self._held is not None and not self._held.lost

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (a loop's `wake`) when the lead is taken in the
        background or lost: its next round then follows at once."""
        self._listeners.append(listener)

    async def hold(self) -> bool:
        """True while leading: the lease is held (its renewal runs on its own),
        or was free and is taken now. A lease lost (another took it, or no
        renewal went through for a TTL) is given up and taken again if free.
        Not leading, a follower keeps trying in the background. Raises
        StoreUnavailable when Redis is away and the lease is not held
        (leadership is then unknown)."""
        if self._held is not None:
            if not self._held.lost:
                return True
            logger.warning("leadership lost", extra={"lease": self.name})
            await self._drop()
        self._follow()
        return await self._try_take()

    async def release(self) -> None:
        """Stop leading and following, and give the lease back (shielded; a
        failure is logged)."""
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            await asyncio.wait([follower])
        await self._drop()

    async def _drop(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await held.release()

    async def _try_take(self) -> bool:
        async with self._taking:  # the follower and hold() never take it twice
            if self._held is None:
                self._held = await lease.take(
                    self.leases, self.name, self.token, self.ttl_ms, on_lost=self._notify
                )
                if self._held is not None:
                    logger.info("leadership taken", extra={"lease": self.name})
            return self._held is not None

    def _follow(self) -> None:
        if self._follower is None or self._follower.done():
            self._follower = asyncio.create_task(self._follow_until_leading(), name=repr(self))

    async def _follow_until_leading(self) -> None:
        while not self.leading:
            await asyncio.sleep(self.retry_interval_s * (0.8 + 0.4 * self._rand()))
            if self._held is not None:
                if not self._held.lost:
                    return  # hold() took it meanwhile
                continue  # lost: the worker's next hold() gives it up first
            try:
                taken = await self._try_take()
            except Exception as exc:  # Redis away: look again next time
                logger.debug(
                    "leadership look failed", extra={"lease": self.name, "error": repr(exc)}
                )
                continue
            if taken:
                self._notify()

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()


class LeaderLoop:
    """The shape every singleton worker shares: `round` run by a PeriodicLoop,
    woken at once when the lead is taken or lost, and the lease given back on
    the way out. Each round checks `leadership.hold()` itself."""

    def __init__(
        self,
        name: str,
        leadership: Leadership,
        round: Round,
        *,
        interval_s: float,
        idle_cap_s: float | None = None,
    ) -> None:
        self.leadership = leadership
        self._loop = PeriodicLoop(name, round, interval_s=interval_s, idle_cap_s=idle_cap_s)
        leadership.on_change(self._loop.wake)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def wake(self) -> None:
        """Run the next round now (see PeriodicLoop.wake)."""
        self._loop.wake()

    def request_stop(self) -> None:
        self._loop.request_stop()

    async def run(self) -> None:
        try:
            await self._loop.run()
        finally:
            await self.leadership.release()


class LeaderOnly:
    """Runs the loop `make()` builds only while `leadership` holds its lease,
    looking every `check_interval_s` (by default the leadership's retry
    interval) and whenever the lead is taken or lost; losing the lease stops
    it (a stopped loop is not run again: the next leadership builds a new one)."""

    def __init__(
        self,
        leadership: Leadership,
        make: Callable[[], Loop],
        *,
        check_interval_s: float | None = None,
    ) -> None:
        self.leadership = leadership
        self.make = make
        self._inner: Loop | None = None
        self._task: asyncio.Task[None] | None = None
        interval_s = leadership.retry_interval_s if check_interval_s is None else check_interval_s
        self._loop = PeriodicLoop(
            f"leader only {leadership.name}", self.check, interval_s=interval_s
        )
        leadership.on_change(self._loop.wake)

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
        failed look (Redis away and the lease not proven ours: leadership
        unknown) stops what runs, so two leaders never run it at once."""
        if self._task is not None and not self.leadership.leading:
            # Past the lease's proven end: stop first, as giving the lease back
            # may wait on a Redis that is away.
            await self._stop_inner()
        try:
            leading = await self.leadership.hold()
        except Exception:
            await self._stop_inner()
            raise
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
