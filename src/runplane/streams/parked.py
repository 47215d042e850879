"""A stop that does not wait out a blocking read.

An idle consumer waits in XREAD / XREADGROUP ... BLOCK for up to its block
time; a stop asked for meanwhile waited for that read to time out, a second
or two of every shutdown. `ParkedReads` lets `request_stop()` cancel the read
its loop is parked in, and turns that cancellation, and only that one, into
"nothing read".

A cancellation can be lost on the way: on Python 3.11, `asyncio.wait_for`
(redis-py wraps each socket write in one) drops a cancellation that lands in
the loop turn its write completes, and the read then blocks for its whole
block time. Seen about once in 500 stops under load on a cluster client,
whose XREADGROUP first asks its node for the keys. So a stop cancels again
every `RECUT_AFTER_S` for as long as the read stays parked.

Nothing is lost by it. redis-py closes a connection whose read was cancelled
(a reply half read is never taken for the next command's). Entries Redis had
handed over just before are still there: a group's stay pending to the
consumer, which reads them again (or another claims them) after the restart;
an offset reader's position has not moved past them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

RECUT_AFTER_S = 0.05
"""How long a cancelled read may stay parked before the stop cancels it again."""


class ParkedReads:
    """The blocking reads of one loop's task (one at a time)."""

    def __init__(self) -> None:
        self._parked: asyncio.Task[Any] | None = None
        self._stopping = False
        self._cancels = 0
        """Cancellations the stop sent to the parked read, withdrawn when it ends."""
        self._recut: asyncio.TimerHandle | None = None

    def stop(self) -> None:
        """Cut short the read parked now and refuse later ones. Synchronous,
        for `request_stop()` (which a signal handler may call); idempotent."""
        if self._stopping:
            return
        self._stopping = True
        self._cut()

    async def read(self, blocking: Callable[[], Awaitable[T]]) -> T | None:
        """What `blocking()` returns; None, without reading, once stopping, or
        when a stop cut the read short. Any other cancellation goes through."""
        if self._stopping:
            return None
        task = asyncio.current_task()
        self._parked = task
        try:
            return await blocking()
        except asyncio.CancelledError:
            # A stop cancels only a parked read, and after it none parks: with
            # no other request left on this task once ours are withdrawn, the
            # cancellation was ours.
            if task is None or not self._stopping or self._withdraw(task) > 0:
                raise
            return None
        finally:
            self._parked = None
            if task is not None:
                self._withdraw(task)  # a lost cancellation, if the read returned

    def _cut(self) -> None:
        task = self._parked
        if task is None or task.done():
            return
        self._cancels += 1
        task.cancel()
        self._recut = task.get_loop().call_later(RECUT_AFTER_S, self._cut)

    def _withdraw(self, task: asyncio.Task[Any]) -> int:
        """Withdraw the stop's cancellations from `task`; the requests left."""
        if self._recut is not None:
            self._recut.cancel()
            self._recut = None
        for _ in range(self._cancels):
            task.uncancel()
        self._cancels = 0
        return task.cancelling()
