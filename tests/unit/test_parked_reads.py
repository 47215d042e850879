"""ParkedReads (streams/parked.py): a stop turns its own cancellation of a
parked read into "nothing read", and lets every other cancellation through."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from runplane.streams.parked import ParkedReads


async def read_with(
    reads: ParkedReads, blocking: Callable[[], Awaitable[str]]
) -> tuple[str | None, int]:
    """What the read gave, and how many cancellations the task still carries."""
    got = await reads.read(blocking)
    task = asyncio.current_task()
    assert task is not None
    return got, task.cancelling()


async def parked_until_stopped(reads: ParkedReads) -> tuple[str | None, int]:
    forever = asyncio.Event()

    async def blocking() -> str:
        await forever.wait()
        return "entries"

    return await read_with(reads, blocking)


async def test_a_stop_ends_a_parked_read_with_nothing_read() -> None:
    reads = ParkedReads()
    task = asyncio.create_task(parked_until_stopped(reads))
    await asyncio.sleep(0)  # parked now
    reads.stop()
    assert await task == (None, 0)


async def test_a_read_after_the_stop_does_not_read() -> None:
    reads = ParkedReads()
    reads.stop()
    called = []

    async def blocking() -> str:
        called.append(True)
        return "entries"

    assert await reads.read(blocking) is None
    assert called == []


async def test_a_read_that_returns_gives_its_result() -> None:
    async def blocking() -> str:
        return "entries"

    assert await ParkedReads().read(blocking) == "entries"


@pytest.mark.parametrize("stopped_too", [False, True])
async def test_a_cancellation_from_elsewhere_goes_through(stopped_too: bool) -> None:
    reads = ParkedReads()
    task = asyncio.create_task(parked_until_stopped(reads))
    await asyncio.sleep(0)
    if stopped_too:
        reads.stop()
    task.cancel()  # the worker set's timeout, say: never swallowed
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_second_stop_cancels_nothing_more() -> None:
    reads = ParkedReads()
    task = asyncio.create_task(parked_until_stopped(reads))
    await asyncio.sleep(0)
    reads.stop()
    reads.stop()
    assert await task == (None, 0)


async def test_a_stop_whose_cancellation_is_lost_cancels_again() -> None:
    # Python 3.11's asyncio.wait_for drops a cancellation that lands as its
    # inner write completes; the read then parks on. Here the read swallows
    # the first cancellation itself, as such a write would.
    reads = ParkedReads()
    forever = asyncio.Event()
    swallowed = []

    async def blocking() -> str:
        try:
            await forever.wait()
        except asyncio.CancelledError:
            swallowed.append(True)
        await forever.wait()  # parked again, the stop's cancellation gone
        return "entries"

    task = asyncio.create_task(read_with(reads, blocking))
    await asyncio.sleep(0)
    reads.stop()
    assert await asyncio.wait_for(task, 5) == (None, 0)
    assert swallowed == [True]


async def test_a_lost_cancellation_is_withdrawn_when_the_read_returns() -> None:
    reads = ParkedReads()
    arrived = asyncio.Event()

    async def blocking() -> str:
        with contextlib.suppress(asyncio.CancelledError):
            await arrived.wait()  # lost; the entries arrive in the same turn
        return "entries"

    task = asyncio.create_task(read_with(reads, blocking))
    await asyncio.sleep(0)
    reads.stop()
    assert await task == ("entries", 0)
