"""Batch running: per-key chains in order, chains concurrent and bounded, a
chain halted by an unsettled entry, handler errors turned into data."""

from __future__ import annotations

import asyncio

import pytest

from runplane.streams.batch import Outcome, Status, call_handler, partition, run_batch
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import RetryLater, by_runtime_id


def entry(entry_id: str, runtime_id: str | None = None) -> StreamEntry:
    fields = {} if runtime_id is None else {"runtime_id": runtime_id}
    return StreamEntry("s", entry_id, fields)


def test_partition_keeps_stream_order_within_a_key() -> None:
    entries = [entry("1-0", "a"), entry("2-0", "b"), entry("3-0", "a"), entry("4-0")]
    assert partition(entries, by_runtime_id) == [[0, 2], [1], [3]]


def test_a_failing_key_function_makes_the_entry_independent() -> None:
    def broken(e: StreamEntry) -> str:
        raise KeyError("runtime_id")

    assert partition([entry("1-0", "a"), entry("2-0", "a")], broken) == [[0], [1]]


async def test_chains_run_concurrently_up_to_the_bound() -> None:
    running = 0
    peak = 0

    async def attempt(e: StreamEntry) -> Outcome:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return Outcome(e, Status.DONE)

    entries = [entry(f"{i}-0", f"rt-{i}") for i in range(10)]
    outcomes = await run_batch(entries, attempt, key_of=by_runtime_id, max_concurrency=3)

    assert peak == 3
    assert [o.entry for o in outcomes] == entries
    assert all(o.status is Status.DONE for o in outcomes)


async def test_an_unsettled_entry_halts_the_rest_of_its_chain_only() -> None:
    async def attempt(e: StreamEntry) -> Outcome:
        if e.entry_id == "1-0":
            return Outcome(e, Status.RETRY, "down")
        return Outcome(e, Status.DONE)

    entries = [entry("1-0", "a"), entry("2-0", "b"), entry("3-0", "a")]
    outcomes = await run_batch(entries, attempt, key_of=by_runtime_id, max_concurrency=4)

    assert [o.status for o in outcomes] == [Status.RETRY, Status.DONE, Status.SKIPPED]


async def test_a_dead_lettered_entry_lets_its_chain_go_on() -> None:
    async def attempt(e: StreamEntry) -> Outcome:
        status = Status.DEAD if e.entry_id == "1-0" else Status.DONE
        return Outcome(e, status)

    entries = [entry("1-0", "a"), entry("2-0", "a")]
    outcomes = await run_batch(entries, attempt, key_of=by_runtime_id, max_concurrency=1)
    assert [o.status for o in outcomes] == [Status.DEAD, Status.DONE]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, None),
        (RetryLater("redis down"), "RetryLater: redis down"),
        (ZeroDivisionError("oops"), "ZeroDivisionError: oops"),
    ],
)
async def test_call_handler_turns_exceptions_into_text(
    error: Exception | None, expected: str | None
) -> None:
    async def handler(e: StreamEntry) -> None:
        if error is not None:
            raise error

    assert await call_handler(handler, entry("1-0")) == expected


async def test_call_handler_lets_cancellation_through() -> None:
    async def handler(e: StreamEntry) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await call_handler(handler, entry("1-0"))


async def test_a_handler_past_its_timeout_is_cancelled_and_failed() -> None:
    cancelled = False

    async def hang(e: StreamEntry) -> None:
        nonlocal cancelled
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled = True
            raise

    assert await call_handler(hang, entry("1-0"), 0.01) == "handler timed out after 0.01 s"
    assert cancelled


async def test_a_timeout_raised_by_the_handler_itself_is_not_mistaken_for_ours() -> None:
    async def raises(e: StreamEntry) -> None:
        raise TimeoutError("upstream")

    assert await call_handler(raises, entry("1-0"), 5.0) == "TimeoutError: upstream"


async def test_handlers_that_never_wait_run_in_the_callers_task() -> None:
    tasks: set[asyncio.Task[object] | None] = set()

    async def attempt(e: StreamEntry) -> Outcome:
        tasks.add(asyncio.current_task())
        return Outcome(e, Status.DONE)

    entries = [entry(f"{i}-0", f"rt-{i}") for i in range(20)]
    outcomes = await run_batch(entries, attempt, key_of=by_runtime_id, max_concurrency=8)

    assert tasks == {asyncio.current_task()}
    assert all(o.status is Status.DONE for o in outcomes)


async def test_a_chain_waiting_on_io_does_not_hold_up_the_others() -> None:
    release = asyncio.Event()
    finished: list[str] = []

    async def attempt(e: StreamEntry) -> Outcome:
        if e.entry_id == "0-0":
            await release.wait()  # only set once every other chain is done
        finished.append(e.entry_id)
        if len(finished) == 4:
            release.set()
        return Outcome(e, Status.DONE)

    entries = [entry(f"{i}-0", f"rt-{i}") for i in range(5)]
    outcomes = await asyncio.wait_for(
        run_batch(entries, attempt, key_of=by_runtime_id, max_concurrency=2), timeout=10
    )

    assert finished == ["1-0", "2-0", "3-0", "4-0", "0-0"]
    assert [o.entry for o in outcomes] == entries


async def test_a_failing_attempt_cancels_the_helpers_and_propagates() -> None:
    cancelled: list[str] = []
    helper_started = asyncio.Event()

    async def attempt(e: StreamEntry) -> Outcome:
        if e.entry_id == "0-0":
            await helper_started.wait()  # a helper took the next chain meanwhile
            raise RuntimeError("bug")
        helper_started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(e.entry_id)
            raise
        return Outcome(e, Status.DONE)

    entries = [entry(f"{i}-0", f"rt-{i}") for i in range(3)]
    with pytest.raises(RuntimeError, match="bug"):
        await run_batch(entries, attempt, key_of=by_runtime_id, max_concurrency=3)
    assert cancelled == ["1-0"]
