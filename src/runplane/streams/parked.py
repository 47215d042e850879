"""A stop that does not wait out a blocking read.

An idle consumer waits in XREAD / XREADGROUP ... BLOCK for up to its block
time; a stop asked for meanwhile waited for that read to time out, a second
or two of every shutdown. `ParkedReads` lets `request_stop()` cancel the read
its loop is parked in, and turns that cancellation, and only that one, into
"nothing read".

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


class ParkedReads:
    """The blocking reads of one loop's task (one at a time)."""

    def __init__(self) -> None:
        self._parked: asyncio.Task[Any] | None = None
        self._stopping = False

    def stop(self) -> None:
        """Cut short the read parked now and refuse later ones. Synchronous,
        for `request_stop()` (which a signal handler may call); idempotent."""
        if self._stopping:
            return
        self._stopping = True
        if self._parked is not None:
            self._parked.cancel()

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
            # no other request to cancel this task, the cancellation was ours.
            if task is None or not self._stopping or task.uncancel() > 0:
                raise
            return None
        finally:
            self._parked = None
