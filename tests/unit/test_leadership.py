"""Leadership: one instance leads, its lease renewed while it does, another
takes over when it leaves or loses the lease; LeaderOnly runs a loop (the
health events consumer) only on the leader."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runplane.adapters.system import SystemClock
from runplane.testing.leases import InMemoryLeaseStore
from runplane.workers.leadership import LeaderOnly, Leadership
from tests.support.clock import FakeClock
from tests.support.streams import wait_until
from tests.support.tokens import SequentialTokens


class Idle:
    """A loop that runs until asked to stop."""

    def __init__(self, runs: list[str], name: str) -> None:
        self.runs = runs
        self.name = name
        self._stop = asyncio.Event()

    async def run(self) -> None:
        self.runs.append(self.name)
        await self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()


async def test_one_instance_leads_and_another_takes_over_when_it_leaves() -> None:
    leases = InMemoryLeaseStore(FakeClock())
    tokens = SequentialTokens()
    runs: list[str] = []

    def instance(name: str) -> LeaderOnly:
        leadership = Leadership(leases, tokens, "runplane:health-events")
        return LeaderOnly(leadership, lambda: Idle(runs, name), check_interval_s=0.01)

    first, second = instance("first"), instance("second")
    first_task = asyncio.create_task(first.run())
    await wait_until(lambda: runs == ["first"])
    second_task = asyncio.create_task(second.run())
    await asyncio.sleep(0.05)
    assert runs == ["first"]
    assert not second.leading
    first.request_stop()
    await first_task
    await wait_until(lambda: runs == ["first", "second"])
    second.request_stop()
    await second_task
    assert leases.holder("runplane:health-events") is None


async def test_one_instance_leads_until_it_gives_the_lease_back() -> None:
    leases = InMemoryLeaseStore(FakeClock())
    tokens = SequentialTokens()
    first = Leadership(leases, tokens, "runplane:relay")
    second = Leadership(leases, tokens, "runplane:relay")
    assert await first.hold()
    assert await first.hold()  # still leading: nothing to take
    assert not await second.hold()
    assert (first.leading, second.leading) == (True, False)
    await first.release()
    assert not first.leading
    assert await second.hold()
    assert leases.holder("runplane:relay") == second.token
    await second.release()
    assert leases.holder("runplane:relay") is None


async def test_the_lease_is_renewed_while_leading_between_rounds() -> None:
    leases = InMemoryLeaseStore(SystemClock())
    tokens = SequentialTokens()
    leader = Leadership(leases, tokens, "runplane:reconciler", ttl_ms=150)
    assert await leader.hold()
    await asyncio.sleep(0.4)  # over two TTLs without a round
    assert leases.holder("runplane:reconciler") == leader.token
    assert not await Leadership(leases, tokens, "runplane:reconciler").hold()
    await leader.release()


async def test_a_lost_lease_ends_the_leadership_until_it_is_free_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    leases = InMemoryLeaseStore(SystemClock())
    tokens = SequentialTokens()
    leader = Leadership(leases, tokens, "runplane:monitor", ttl_ms=150)
    assert await leader.hold()
    await leases.release("runplane:monitor", leader.token)  # as if it expired
    other = Leadership(leases, tokens, "runplane:monitor", ttl_ms=10_000)
    assert await other.hold()
    await asyncio.sleep(0.1)  # a renewal finds it gone
    with caplog.at_level(logging.WARNING, logger="runplane.workers.leadership"):
        assert not await leader.hold()
    assert [r.getMessage() for r in caplog.records if r.name.endswith("leadership")] == [
        "leadership lost"
    ]
    assert leases.holder("runplane:monitor") == other.token  # left to the new leader
    await other.release()
    assert await leader.hold()
    await leader.release()
