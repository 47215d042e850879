"""Keeping a lease alive: the renewal ends with the block it guards, even when
the lease store swallows the cancellation sent to a renewal in flight."""

from __future__ import annotations

import asyncio

from runplane.adapters.system import SystemClock
from runplane.services import lease
from runplane.testing.leases import InMemoryLeaseStore


class SwallowingLeaseStore(InMemoryLeaseStore):
    """A renewal that takes a while and, cancelled midway, carries on and
    returns, as redis-py can when a cancel lands in the middle of a command."""

    def __init__(self) -> None:
        super().__init__(SystemClock())
        self.in_flight = asyncio.Event()
        self.renewals = 0

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        self.renewals += 1
        self.in_flight.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass
        finally:
            self.in_flight.clear()
        return await super().renew(runtime_id, token, ttl_ms)


async def test_a_swallowed_cancel_still_ends_the_renewal_with_the_block() -> None:
    leases = SwallowingLeaseStore()
    assert await leases.try_acquire("rt-1", "token", 300)

    async def operate() -> None:
        async with lease.kept_alive(leases, "rt-1", "token", ttl_ms=300):
            await leases.in_flight.wait()  # leave the block while a renewal runs

    operating = asyncio.create_task(operate())
    # Bounded only so that the failure this guards against (a hang) shows as one.
    await asyncio.wait([operating], timeout=5)
    hung = not operating.done()
    operating.cancel()
    assert not hung, "the block never ended: the renewal outlived it"
    assert operating.exception() is None
    renewals = leases.renewals
    await asyncio.sleep(0.3)  # three renewal periods
    assert leases.renewals == renewals  # nothing renews any more
    assert await leases.try_acquire("rt-1", "next", 1000)  # and it was released
