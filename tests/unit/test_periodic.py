"""PeriodicLoop: rounds every interval, a prompt stop, failures logged with
their traceback and backed off, busy rounds and wake-ups that skip the wait."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from runplane.domain.errors import StoreUnavailable
from runplane.workers.periodic import PeriodicLoop
from tests.support.streams import wait_until


class Rounds:
    """A round that records when it ran and plays a script of outcomes: an
    exception to raise, or a value to return; None once the script is done."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.times: list[float] = []

    async def __call__(self) -> object:
        self.times.append(time.monotonic())
        outcome = self.script.pop(0) if self.script else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


def failures_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "worker round failed"]


async def test_rounds_repeat_every_interval_and_a_stop_ends_the_wait_at_once() -> None:
    rounds = Rounds()
    loop = PeriodicLoop("ticker", rounds, interval_s=0.02)
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: len(rounds.times) >= 3)
    assert min(rounds.gaps()) >= 0.015
    slow = PeriodicLoop("slow", Rounds(), interval_s=30)
    slow_task = asyncio.create_task(slow.run())
    await asyncio.sleep(0.02)  # in its 30 s wait
    started = time.monotonic()
    slow.request_stop()
    loop.request_stop()
    await asyncio.wait_for(asyncio.gather(task, slow_task), 1)
    assert time.monotonic() - started < 5  # not the 30 s wait
    assert not slow.running


async def test_a_failing_round_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds = Rounds(ValueError("boom"), StoreUnavailable("redis is away"))
    loop = PeriodicLoop("flaky", rounds, interval_s=0.005)
    task = asyncio.create_task(loop.run())
    with caplog.at_level(logging.WARNING, logger="runplane.workers.periodic"):
        await wait_until(lambda: len(rounds.times) >= 3)
        await loop.stop()
    await task
    bug, fault = failures_logged(caplog)[:2]
    assert (bug.levelno, fault.levelno) == (logging.ERROR, logging.WARNING)
    assert bug.exc_info is not None
    assert bug.exc_info[0] is ValueError  # the traceback rides along
    assert fault.exc_info is not None
    assert fault.exc_info[0] is StoreUnavailable
    assert bug.worker == "flaky"  # type: ignore[attr-defined]
    assert bug.error == "ValueError('boom')"  # type: ignore[attr-defined]
    assert (bug.failures, fault.failures) == (1, 2)  # type: ignore[attr-defined]


async def test_failures_in_a_row_back_off_and_a_success_resets_the_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    boom = RuntimeError("boom")
    rounds = Rounds(boom, boom, boom, boom, None, boom)
    loop = PeriodicLoop("flaky", rounds, interval_s=0.01, backoff_cap_s=0.08, rand=lambda: 1.0)
    task = asyncio.create_task(loop.run())
    with caplog.at_level(logging.WARNING, logger="runplane.workers.periodic"):
        await wait_until(lambda: len(rounds.times) >= 7)
        await loop.stop()
    await task
    delays = [r.delay_s for r in failures_logged(caplog)]  # type: ignore[attr-defined]
    # twice the interval, doubling, capped; reset by the success (round 5)
    assert delays[:5] == [0.02, 0.04, 0.08, 0.08, 0.02]
    gaps = rounds.gaps()
    for gap, delay in zip(gaps[:4], delays[:4], strict=True):
        assert gap >= delay * 0.9
    assert gaps[4] < 0.08  # after the success: the interval, not the backoff


async def test_a_busy_round_is_followed_by_the_next_at_once() -> None:
    rounds = Rounds(True, True, True)
    loop = PeriodicLoop("busy", rounds, interval_s=30)
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: len(rounds.times) == 4, timeout_s=1)
    await loop.stop()
    await task


async def test_a_wake_ends_the_wait_early_and_jitter_lengthens_it() -> None:
    rounds = Rounds()
    loop = PeriodicLoop("woken", rounds, interval_s=30)
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: len(rounds.times) == 1)
    loop.wake()
    await wait_until(lambda: len(rounds.times) == 2, timeout_s=1)
    await loop.stop()
    await task
    jittered = Rounds()
    loop = PeriodicLoop("jittered", jittered, interval_s=0.01, jitter_s=0.04, rand=lambda: 0.5)
    task = asyncio.create_task(loop.run())
    await wait_until(lambda: len(jittered.times) >= 3)
    await loop.stop()
    await task
    assert min(jittered.gaps()) >= 0.027  # 0.01 + 0.5 * 0.04, give or take the timer


async def test_an_interruptible_round_is_cancelled_by_a_stop() -> None:
    cancelled = asyncio.Event()

    async def session() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop = PeriodicLoop("session", session, interval_s=0.1, interruptible=True)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.02)
    await asyncio.wait_for(loop.stop(), 1)
    await task
    assert cancelled.is_set()


async def test_a_loop_runs_once_at_a_time() -> None:
    loop = PeriodicLoop("single", Rounds(), interval_s=30)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="already running"):
        await loop.run()
    await loop.stop()
    await task


def test_intervals_are_checked() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        PeriodicLoop("x", Rounds(), interval_s=0)
    with pytest.raises(ValueError, match="jitter_s"):
        PeriodicLoop("x", Rounds(), interval_s=1, jitter_s=-1)


async def test_idle_rounds_wait_twice_as_long_each_up_to_the_cap_and_work_or_a_wake_resets() -> (
    None
):
    rounds = Rounds(
        False, False, False, False, False, None, False, False, True, False, False, False
    )
    loop = PeriodicLoop("idle", rounds, interval_s=1.0, idle_cap_s=5.0)
    waits = [await loop._round() for _ in range(8)]
    # idle x5 (doubling, capped), a round that did something, idle x2
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0, 1.0, 1.0, 2.0]
    assert await loop._round() == 0.0  # busy: at once
    loop.wake()
    assert await loop._round() == 1.0  # idle again, but woken: back to the interval
    loop.wake()
    assert await loop._round() == 1.0
    assert await loop._round() == 2.0


async def test_without_an_idle_cap_idle_rounds_keep_the_interval() -> None:
    loop = PeriodicLoop("plain", Rounds(False, False, False), interval_s=1.0)
    assert [await loop._round() for _ in range(3)] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="idle_cap_s"):
        PeriodicLoop("bad", Rounds(), interval_s=1.0, idle_cap_s=0.5)


async def test_an_idle_round_that_knows_when_work_is_due_waits_no_longer_than_that() -> None:
    # A float: idle, next work due in that many seconds; the idle backoff
    # still grows, and the shorter of the two is waited.
    rounds = Rounds(30.0, 30.0, 30.0, 0.25, 30.0, -3.0)
    loop = PeriodicLoop("due", rounds, interval_s=1.0, idle_cap_s=8.0)
    waits = [await loop._round() for _ in range(6)]
    assert waits == [1.0, 2.0, 4.0, 0.25, 8.0, 0.0]
