"""The one held lease, for a runtime's operations and for a worker's leadership
alike: acquire (at once or with a bounded wait), renew every third of the TTL
while held, release by compare-and-delete shielded from cancellation.

- `held(...)`: a block under the lease (it runs either way; it is told whether
  the lease is held). `acquire` + `kept_alive` are its two halves, for a caller
  that answers an acquisition fault differently from a fault inside the block.
- `take(...)`: a `HeldLease` kept across calls (a Leadership), released by
  `HeldLease.release()`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable

from runplane.ports.leases import LeaseStore
from runplane.services import driver_call

logger = logging.getLogger(__name__)

_POLL_S = 0.05

# Releases that go on after their caller was cancelled: a reference keeps each
# task alive until it is done (the loop holds only a weak one).
_RELEASING: set[asyncio.Task[None]] = set()


async def acquire(leases: LeaseStore, name: str, token: str, ttl_ms: int, wait_ms: int) -> bool:
    """True once the lease is ours; False if it is still held after `wait_ms`
    (0: one try). Raises StoreUnavailable when the store cannot be reached."""
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        if await leases.try_acquire(name, token, ttl_ms):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)


class HeldLease:
    """A lease this holder has: renewed in the background every third of its
    TTL (from the second renewal on, at multiples of that period on the loop's
    clock) until `release()`. `lost` once a renewal found it gone or another's, or
    when no renewal succeeded for a whole TTL (it may have expired).

    Each renewal is a timer that starts a task only when it is due: most leases
    (a stream job's) are released before their first renewal, and then cost a
    timer, not a task that sleeps."""

    def __init__(
        self,
        leases: LeaseStore,
        name: str,
        token: str,
        ttl_ms: int,
        *,
        on_lost: Callable[[], None] | None = None,
        acquired_at: float | None = None,
    ) -> None:
        self.leases = leases
        self.name = name
        self.token = token
        self.ttl_ms = ttl_ms
        self.on_lost = on_lost
        # From when the acquisition was asked, not answered: Redis's expiry
        # starts later than that, so this end is never past the real one.
        self._valid_until = (time.monotonic() if acquired_at is None else acquired_at) + (
            ttl_ms / 1000
        )
        self._period_s = ttl_ms / 3000
        self._gone = False
        self._done = False
        self._loop = asyncio.get_running_loop()
        self._renewal: asyncio.Task[None] | None = None
        self._timer = self._loop.call_later(self._period_s, self._due)

    def __repr__(self) -> str:
        return f"HeldLease({self.name!r})"

    @property
    def lost(self) -> bool:
        return self._gone or time.monotonic() >= self._valid_until

    async def release(self) -> None:
        """Stop renewing, then delete the lease if still ours. The delete runs
        even when the caller is cancelled meanwhile, and the caller's cancel is
        raised after it; a failed delete is logged (the lease expires by itself,
        a little later)."""
        if self._done:
            return
        self._done = True
        self._timer.cancel()
        renewal = self._renewal
        try:
            if renewal is not None and not renewal.done():
                renewal.cancel()
                # Waits for the renewal without raising its cancellation, so a
                # cancel of the caller's own is never mistaken for it and swallowed.
                await asyncio.wait([renewal])
        finally:
            await self._delete()

    async def _delete(self) -> None:
        # Awaited in the caller's task, not through asyncio.shield (a task per
        # release, i.e. per stream job). A cancel landing meanwhile may stop the
        # delete short of being sent: it is then asked again from a task of its
        # own (a compare-and-delete: a second ask is harmless) and the cancel
        # goes on to the caller at once, as shield would have had it.
        try:
            await self.leases.release(self.name, self.token)
        except asyncio.CancelledError:
            task = self._loop.create_task(self._delete_again(), name=f"release {self.name}")
            _RELEASING.add(task)
            task.add_done_callback(_RELEASING.discard)
            raise
        except Exception:
            logger.warning("lease release failed", extra={"lease": self.name}, exc_info=True)

    async def _delete_again(self) -> None:
        try:
            await self.leases.release(self.name, self.token)
        except Exception:
            logger.warning("lease release failed", extra={"lease": self.name}, exc_info=True)

    def _due(self) -> None:
        if not self._done:
            self._renewal = self._loop.create_task(self._renew(), name=f"lease {self.name}")

    def _next_in(self, delay_s: float) -> None:
        if not self._done:
            self._timer = self._loop.call_later(delay_s, self._due)

    async def _renew(self) -> None:
        """One renewal; it sets the next. `_done`, not only the cancel that comes
        with it, ends the renewals: redis-py can swallow a cancellation that lands
        in the middle of a command, and they would then go on for ever."""
        if time.monotonic() >= self._valid_until:
            # No renewal went through in time: the lease may be another's now.
            self._lose("lease expired unrenewed")
            return
        asked_at = time.monotonic()
        try:
            # Bounded by the lease's end: a Redis that hangs (not refuses)
            # must not keep this from saying the lease is lost on time.
            still_ours = await asyncio.wait_for(
                self.leases.renew(self.name, self.token, self.ttl_ms),
                self._valid_until - asked_at,
            )
        except Exception:
            logger.warning("lease renewal failed", extra={"lease": self.name}, exc_info=True)
            # Try again soon, and wake at the expiry at the latest, to say it is lost.
            self._next_in(max(0.0, min(self._period_s / 2, self._valid_until - time.monotonic())))
            return
        if self._done:
            return  # released meanwhile: what the renewal found no longer matters
        if not still_ours:
            self._lose("lease lost while held")
            return
        self._valid_until = asked_at + self.ttl_ms / 1000
        self._next_in(self._aligned_delay_s())

    def _aligned_delay_s(self) -> float:
        """Until the next multiple of the period on the loop's clock: never
        later than a period from now, and every held lease of one TTL then
        renews in the same loop wake-up (an idle instance's leaderships wake
        it once a period, not once each)."""
        now = self._loop.time()
        return max(0.0, math.floor((now + self._period_s) / self._period_s) * self._period_s - now)

    def _lose(self, message: str) -> None:
        self._gone = True
        logger.error(message, extra={"lease": self.name})
        if self.on_lost is not None:
            self.on_lost()


async def take(
    leases: LeaseStore,
    name: str,
    token: str,
    ttl_ms: int,
    wait_ms: int = 0,
    *,
    on_lost: Callable[[], None] | None = None,
) -> HeldLease | None:
    """The lease, held and renewed from now on; None if another holds it.
    `on_lost` is called once if it is lost while held (not on release)."""
    asked_at = time.monotonic()
    if not await acquire(leases, name, token, ttl_ms, wait_ms):
        return None
    # After a wait the take happened at some point in it: counted from now, as before.
    start = asked_at if wait_ms == 0 else None
    return HeldLease(leases, name, token, ttl_ms, on_lost=on_lost, acquired_at=start)


@contextlib.asynccontextmanager
async def kept_alive(leases: LeaseStore, name: str, token: str, ttl_ms: int) -> AsyncIterator[None]:
    """For a lease just acquired: renew it while the block runs, then release it
    (shielded: even when the block was cancelled). Driver calls made in the
    block carry the lease (`driver_call`): a runtime's agent on another host
    acts only for its current holder."""
    held_lease = HeldLease(leases, name, token, ttl_ms)
    try:
        with driver_call.holding(name, token):
            yield
    finally:
        await held_lease.release()


@contextlib.asynccontextmanager
async def held(
    leases: LeaseStore, name: str, token: str, ttl_ms: int, *, wait_ms: int = 0
) -> AsyncIterator[bool]:
    """Acquire the lease (waiting up to `wait_ms`), keep it renewed while the
    block runs and release it after; yields whether it is held. Raises
    StoreUnavailable, before the block, when the store cannot be reached."""
    if not await acquire(leases, name, token, ttl_ms, wait_ms):
        yield False
        return
    async with kept_alive(leases, name, token, ttl_ms):
        yield True
