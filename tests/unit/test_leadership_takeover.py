"""Leadership moving in seconds: a follower takes a dead leader's lease in the
background once it expires and wakes its worker; a leader that cannot renew
(Redis away) stops leading at the lease's end instead of running on beside the
next one."""

from __future__ import annotations

import asyncio

import pytest

from runplane.adapters.system import SystemClock
from runplane.domain.errors import StoreUnavailable
from runplane.testing.leases import InMemoryLeaseStore
from runplane.workers.leadership import LeaderOnly, Leadership
from tests.support.streams import wait_until
from tests.support.tokens import SequentialTokens


class FlakyLeaseStore(InMemoryLeaseStore):
    """Leases in memory that, while `away`, fail as an unreachable Redis does."""

    def __init__(self) -> None:
        super().__init__(SystemClock())
        self.away = False

    def _check(self) -> None:
        if self.away:
            raise StoreUnavailable("redis away")

    async def try_acquire(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        self._check()
        return await super().try_acquire(runtime_id, token, ttl_ms)

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        self._check()
        return await super().renew(runtime_id, token, ttl_ms)

    async def release(self, runtime_id: str, token: str) -> bool:
        self._check()
        return await super().release(runtime_id, token)


class Idle:
    def __init__(self) -> None:
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        await self.stopped.wait()

    def request_stop(self) -> None:
        self.stopped.set()


def test_followers_look_every_quarter_of_the_ttl() -> None:
    leadership = Leadership(InMemoryLeaseStore(SystemClock()), SequentialTokens(), "x", ttl_ms=2000)
    assert leadership.retry_interval_s == 0.5
    loop = LeaderOnly(leadership, Idle)
    assert loop._loop.interval_s == 0.5


async def test_a_follower_takes_a_dead_leaders_lease_once_it_expires_and_wakes_its_worker() -> None:
    leases = InMemoryLeaseStore(SystemClock())
    # The dead leader: its lease is nobody's to renew any more.
    assert await leases.try_acquire("runplane:relay", "dead", 200)
    follower = Leadership(leases, SequentialTokens(), "runplane:relay", ttl_ms=200)
    woken = asyncio.Event()
    follower.on_change(woken.set)
    assert not await follower.hold()  # asked once; it then looks on its own
    await asyncio.wait_for(woken.wait(), timeout=5)
    assert follower.leading
    assert leases.holder("runplane:relay") == follower.token
    assert await follower.hold()
    await follower.release()
    assert leases.holder("runplane:relay") is None


async def test_a_lease_that_cannot_be_renewed_is_lost_at_its_end_and_the_worker_told() -> None:
    leases = FlakyLeaseStore()
    leader = Leadership(leases, SequentialTokens(), "runplane:reconciler", ttl_ms=300)
    changes: list[bool] = []
    leader.on_change(lambda: changes.append(leader.leading))
    assert await leader.hold()
    leases.away = True  # a Redis restart: no renewal goes through
    await wait_until(lambda: changes)
    assert changes == [False]  # told, and no longer leading
    with pytest.raises(StoreUnavailable):
        await leader.hold()  # leadership unknown: not claimed
    leases.away = False
    await wait_until(lambda: leader.leading)  # the follower takes it back once it can
    await leader.release()


async def test_led_loop_stops_when_leadership_becomes_unknown() -> None:
    leases = FlakyLeaseStore()
    inner = Idle()
    only = LeaderOnly(
        Leadership(leases, SequentialTokens(), "runplane:health-events", ttl_ms=300), lambda: inner
    )
    running = asyncio.create_task(only.run())
    await wait_until(lambda: only.leading)
    leases.away = True
    await wait_until(lambda: inner.stopped.is_set())
    assert not only.leading
    leases.away = False
    only.request_stop()
    await running


class HangingLeaseStore(InMemoryLeaseStore):
    """A Redis that stops answering (a partition): renewals never return."""

    def __init__(self) -> None:
        super().__init__(SystemClock())
        self.hang = False

    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        if self.hang:
            await asyncio.Event().wait()
        return await super().renew(runtime_id, token, ttl_ms)


async def test_a_renewal_that_hangs_still_ends_the_lead_at_the_leases_end() -> None:
    leases = HangingLeaseStore()
    leader = Leadership(leases, SequentialTokens(), "runplane:relay", ttl_ms=300)
    told = asyncio.Event()
    leader.on_change(told.set)
    assert await leader.hold()
    leases.hang = True
    await asyncio.wait_for(told.wait(), timeout=5)  # told though the renewal never returned
    assert not leader.leading
    leases.hang = False
    await leader.release()
