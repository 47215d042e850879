"""Running long-lived loops side by side, and stopping them gracefully."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

logger = logging.getLogger(__name__)


class Loop(Protocol):
    async def run(self) -> None: ...

    def request_stop(self) -> None:
        """Stop taking new work; `run()` returns once in-flight work is settled."""


class WorkerSet:
    """Starts every loop as a task; `stop()` asks each to stop and waits for all."""

    def __init__(self, loops: Sequence[Loop]) -> None:
        self.loops = list(loops)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(loop.run(), name=repr(loop)) for loop in self.loops]

    async def stop(self, timeout_s: float = 30.0, cancel_wait_s: float = 5.0) -> None:
        for loop in self.loops:
            loop.request_stop()
        if not self._tasks:
            return
        done, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
        for task in pending:
            logger.warning("worker did not stop in time", extra={"worker": task.get_name()})
            task.cancel()
        if pending:
            # Bounded: redis-py can swallow a cancel that lands mid-command.
            ended, stuck = await asyncio.wait(pending, timeout=cancel_wait_s)
            for task in ended:
                if not task.cancelled():
                    task.exception()  # retrieved: it ended, one way or another
            for task in stuck:
                logger.error("worker ignored its cancellation", extra={"worker": task.get_name()})
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                logger.error(
                    "worker ended with an error",
                    extra={"worker": task.get_name()},
                    exc_info=task.exception(),
                )
