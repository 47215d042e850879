"""The one stop-aware periodic loop every worker runs on.

A round runs, then the loop waits `interval_s` (plus up to `jitter_s`, so
instances started together drift apart) or until `wake()`, and runs the next.
A round that returns True did a full batch (more may be waiting): the next
runs at once. A round that raises is logged with its traceback — at WARNING
for an `expected` fault (a store that cannot be reached), at ERROR otherwise —
and the next waits the one backoff (`domain/backoff.py`) instead: from twice
the interval (so, halved at most by its jitter, never less than the interval),
doubling with each failure in a row up to `backoff_cap_s`; a round that
succeeds resets it.

With `idle_cap_s`, a loop that is mostly idle backs off: a round that returns
False (it found nothing to do) waits the interval, the next idle one twice
that, and so on up to `idle_cap_s`; any other round, and any `wake()`, brings
the wait back to the interval. Such a loop relies on being woken for the work
it can be told of, the slow poll only catches what it cannot (another
instance's writes, say). Such a round may also return a float: it was idle
and its next work is due in that many seconds, so the wait is the idle one or
that, whichever is shorter.

`request_stop()` ends a wait at once; the round in flight finishes first,
unless the loop is `interruptible` (its round is a long-lived session, such as
an event stream), where the round is cancelled."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from runplane.domain.backoff import Backoff
from runplane.domain.errors import StoreUnavailable

logger = logging.getLogger(__name__)

Round = Callable[[], Awaitable[object]]


class PeriodicLoop:
    """Runs `work` round after round until stopped; see the module docstring."""

    def __init__(
        self,
        name: str,
        work: Round,
        *,
        interval_s: float,
        jitter_s: float = 0.0,
        backoff_cap_s: float = 10.0,
        idle_cap_s: float | None = None,
        expected: tuple[type[Exception], ...] = (StoreUnavailable,),
        interruptible: bool = False,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if interval_s <= 0 or jitter_s < 0:
            raise ValueError("interval_s must be positive and jitter_s not negative")
        if idle_cap_s is not None and idle_cap_s < interval_s:
            raise ValueError("idle_cap_s must be at least interval_s")
        self.name = name
        self.interval_s = interval_s
        self.jitter_s = jitter_s
        self._work = work
        self._backoff = Backoff(
            base_s=2 * interval_s, cap_s=max(backoff_cap_s, 2 * interval_s), rand=rand
        )
        self._expected = expected
        self._interruptible = interruptible
        self._rand = rand
        self._idle_cap_s = idle_cap_s
        self._idle_rounds = 0
        self._stopping = asyncio.Event()
        self._woken = asyncio.Event()
        self._waiter: asyncio.Future[None] | None = None
        self._stopped = asyncio.Event()
        self._running = False

    def __repr__(self) -> str:
        return f"PeriodicLoop({self.name!r})"

    @property
    def running(self) -> bool:
        return self._running

    @property
    def failures(self) -> int:
        """Rounds failed in a row (0 after a round that succeeded)."""
        return self._backoff.attempts

    def wake(self) -> None:
        """End the current wait early (or the next one, if a round is running)."""
        self._idle_rounds = 0
        self._woken.set()
        _settle(self._waiter)

    def request_stop(self) -> None:
        """Stop after the round in flight; synchronous, so a signal handler can call it."""
        self._stopping.set()
        self._woken.set()
        _settle(self._waiter)

    async def stop(self) -> None:
        """`request_stop()`, then wait until `run()` has returned."""
        self.request_stop()
        if self._running:
            await self._stopped.wait()

    async def run(self) -> None:
        """Run rounds until stopped. A stopped loop does not run again."""
        if self._running:
            raise RuntimeError(f"{self!r} is already running")
        self._running = True
        self._stopped.clear()
        logger.info("worker started", extra={"worker": self.name, "interval_s": self.interval_s})
        try:
            while not self._stopping.is_set():
                delay_s = await self._round()
                if delay_s > 0 and not self._stopping.is_set():
                    await self._wait(delay_s)
        finally:
            self._running = False
            self._stopped.set()
            logger.info("worker stopped", extra={"worker": self.name})

    async def _round(self) -> float:
        """One round; how long to wait before the next."""
        self._woken.clear()  # a wake() from here on ends the next wait early
        try:
            busy = await self._run_work()
        except Exception as exc:
            delay_s = self._backoff.next_delay_s()
            self._log_failure(exc, delay_s)
            return delay_s
        self._backoff.reset()
        if busy is True:
            self._idle_rounds = 0
            return 0.0
        if isinstance(busy, float) and self._idle_cap_s is not None:
            return min(self._idle_wait_s(True), max(busy, 0.0)) + self._rand() * self.jitter_s
        return self._idle_wait_s(busy is False) + self._rand() * self.jitter_s

    def _idle_wait_s(self, idle: bool) -> float:
        if self._idle_cap_s is None or not idle:
            self._idle_rounds = 0
            return self.interval_s
        # Capped before the power, so a long idle spell never overflows it.
        self._idle_rounds = min(self._idle_rounds + 1, 64)
        wait_s: float = self.interval_s * 2.0 ** (self._idle_rounds - 1)
        return min(wait_s, self._idle_cap_s)

    async def _run_work(self) -> object:
        if not self._interruptible:
            return await self._work()
        work = asyncio.ensure_future(self._work())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not work.done():
                work.cancel()
        await asyncio.wait({work})  # a cancelled round ends here, without raising
        return None if work.cancelled() else work.result()

    async def _wait(self, delay_s: float) -> None:
        """Until `delay_s` passed, or a wake. A future and a timer: `wait_for`
        made a task (and its cancellation) per wait, and most loops wait far
        more often than they work."""
        if self._woken.is_set():
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(delay_s, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _log_failure(self, exc: Exception, delay_s: float) -> None:
        level = logging.WARNING if isinstance(exc, self._expected) else logging.ERROR
        logger.log(
            level,
            "worker round failed",
            extra={
                "worker": self.name,
                "error": repr(exc),
                "failures": self.failures,
                "delay_s": round(delay_s, 3),
            },
            exc_info=exc,
        )


def _settle(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
