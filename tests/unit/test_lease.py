"""The held lease: renewed while held, released (shielded) after, lost when
another took it or no renewal went through for a TTL; and the renewal ends with
the block it guards, even when the store swallows the cancel sent to it."""

from __future__ import annotations

import asyncio
from unittest.mock import patch

import pytest

from runplane.adapters.system import SystemClock
from runplane.domain.errors import StoreUnavailable
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


class FinishingRenewal(InMemoryLeaseStore):
    """A renewal that, cancelled, finishes its command before it returns (until
    `finish` is set); a second cancel ends it."""

    def __init__(self) -> None:
        super().__init__(SystemClock())
        self.in_flight = asyncio.Event()
        self.finish = asyncio.Event()

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        self.in_flight.set()
        try:
            await self.finish.wait()
        except asyncio.CancelledError:
            await self.finish.wait()
        return await super().renew(runtime_id, token, ttl_ms)


async def test_a_cancel_of_the_releaser_is_raised_after_the_release() -> None:
    """Cancelled while it waits for the renewal to end, release() still deletes
    the lease, and then ends cancelled: the cancel was the caller's, not the
    renewal's."""
    leases = FinishingRenewal()
    assert await leases.try_acquire("rt-1", "token", 300)
    held = lease.HeldLease(leases, "rt-1", "token", 300)
    await leases.in_flight.wait()
    releasing = asyncio.create_task(held.release())
    for _ in range(3):
        await asyncio.sleep(0)  # release() is now waiting for the renewal
    releasing.cancel()
    await asyncio.wait([releasing], timeout=5)  # bounded against a hang only
    leases.finish.set()
    assert releasing.cancelled()
    assert await leases.try_acquire("rt-1", "next", 1000)  # released all the same


class FailingRenewals(InMemoryLeaseStore):
    """Renewals fail as Redis away would; the rest works."""

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        raise StoreUnavailable("redis is away")


class SlowRelease(InMemoryLeaseStore):
    """A release that takes a while, so a cancel can land in the middle of it."""

    def __init__(self) -> None:
        super().__init__(SystemClock())
        self.releasing = asyncio.Event()

    async def release(self, runtime_id: str, token: str) -> bool:
        self.releasing.set()
        await asyncio.sleep(0.05)
        return await super().release(runtime_id, token)


async def test_a_held_lease_outlives_its_ttl_while_the_block_runs() -> None:
    leases = InMemoryLeaseStore(SystemClock())
    async with lease.held(leases, "rt-1", "mine", ttl_ms=150) as ours:
        assert ours
        await asyncio.sleep(0.4)  # over two TTLs: renewed meanwhile
        assert leases.holder("rt-1") == "mine"
    assert leases.holder("rt-1") is None


async def test_a_block_whose_lease_another_holds_runs_and_is_told_so() -> None:
    leases = InMemoryLeaseStore(SystemClock())
    assert await leases.try_acquire("rt-1", "theirs", 10_000)
    async with lease.held(leases, "rt-1", "mine", ttl_ms=10_000, wait_ms=100) as ours:
        assert not ours
    assert leases.holder("rt-1") == "theirs"  # never ours to release


async def test_the_release_runs_even_when_cancelled_again_midway() -> None:
    leases = SlowRelease()

    async def operate() -> None:
        async with lease.held(leases, "rt-1", "mine", ttl_ms=10_000):
            await asyncio.Event().wait()

    operating = asyncio.create_task(operate())
    await asyncio.sleep(0.01)
    operating.cancel()
    await leases.releasing.wait()
    operating.cancel()  # a second cancel, in the middle of the release
    await asyncio.wait([operating])
    await asyncio.sleep(0.1)
    assert leases.holder("rt-1") is None


async def test_a_lease_another_took_is_lost_and_left_to_them() -> None:
    leases = InMemoryLeaseStore(SystemClock())
    held = await lease.take(leases, "leader", "mine", ttl_ms=150)
    assert held is not None
    assert not held.lost
    await leases.release("leader", "mine")  # as if it expired
    assert await leases.try_acquire("leader", "theirs", 10_000)
    await asyncio.sleep(0.1)  # past a renewal
    assert held.lost
    await held.release()
    assert leases.holder("leader") == "theirs"


async def test_a_lease_not_renewed_for_a_whole_ttl_counts_as_lost() -> None:
    leases = FailingRenewals(SystemClock())
    held = await lease.take(leases, "leader", "mine", ttl_ms=150)
    assert held is not None
    await asyncio.sleep(0.05)
    assert not held.lost
    await asyncio.sleep(0.15)
    assert held.lost
    await held.release()
    assert leases.holder("leader") is None


class CountingLeaseStore(InMemoryLeaseStore):
    """Records the loop's clock at each renewal, per lease."""

    def __init__(self) -> None:
        super().__init__(SystemClock())
        self.renewed: dict[str, list[float]] = {}
        self.each_thrice = asyncio.Event()

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        self.renewed.setdefault(runtime_id, []).append(asyncio.get_running_loop().time())
        if min(len(self.renewed.get(n, [])) for n in ("a", "b", "c")) >= 3:
            self.each_thrice.set()
        return await super().renew(runtime_id, token, ttl_ms)


async def test_held_leases_of_one_ttl_renew_on_one_grid_never_later_than_a_period() -> None:
    store = CountingLeaseStore()
    taken = []
    for name in ("a", "b", "c"):
        held = await lease.take(store, name, "me", 300)
        assert held is not None
        taken.append(held)
        await asyncio.sleep(0.037)  # taken out of step with one another
    try:
        # The next renewal, whatever the moment: due at the next multiple of
        # the period (0.1 s) on the loop's clock, so all three share it.
        for moment, delay_s in ((12.34, 0.06), (12.4, 0.1), (12.399, 0.001)):
            for held in taken:
                with patch.object(held._loop, "time", return_value=moment):
                    assert held._aligned_delay_s() == pytest.approx(delay_s)
        await asyncio.wait_for(store.each_thrice.wait(), 30)
        assert not any(held.lost for held in taken)
    finally:
        for held in taken:
            await held.release()
