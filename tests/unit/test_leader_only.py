"""LeaderOnly: the health events consumer runs on one instance at a time, and
another takes over when the leader leaves."""

from __future__ import annotations

import asyncio

from runplane.testing.leases import InMemoryLeaseStore
from runplane.workers.health_consumer import LeaderOnly
from runplane.workers.leadership import Leadership
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
