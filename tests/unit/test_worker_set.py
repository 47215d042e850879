"""Stopping the workers: a graceful request first, then a cancel, and a bound
on both, so that no worker can hold a shutdown for ever."""

from __future__ import annotations

import asyncio

from runplane.workers.runner import WorkerSet


class Obliging:
    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self.stopped = False

    async def run(self) -> None:
        await self._stop.wait()
        self.stopped = True

    def request_stop(self) -> None:
        self._stop.set()


class Stubborn:
    """Ignores the request and swallows the cancel, as a loop can when redis-py
    swallows a cancellation mid-command; ends only when `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.cancels = 0

    async def run(self) -> None:
        while not self.release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                self.cancels += 1

    def request_stop(self) -> None:
        pass


async def test_stop_asks_each_loop_and_waits_for_it() -> None:
    loops = [Obliging(), Obliging()]
    workers = WorkerSet(loops)
    workers.start()

    await workers.stop()

    assert all(loop.stopped for loop in loops)


async def test_a_loop_that_swallows_its_cancel_cannot_hold_the_stop() -> None:
    stubborn, obliging = Stubborn(), Obliging()
    workers = WorkerSet([stubborn, obliging])
    workers.start()

    await workers.stop(timeout_s=0.05, cancel_wait_s=0.05)

    assert obliging.stopped
    assert stubborn.cancels == 1
    stubborn.release.set()  # let it end, so nothing outlives the test
    await asyncio.sleep(0.05)
