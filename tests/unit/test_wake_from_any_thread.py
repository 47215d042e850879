"""bootstrap.assembly.wake_from_any_thread: the outbox relay's wake, called by
SQLite commits in worker threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from runplane.bootstrap.assembly import wake_from_any_thread


async def test_a_wake_from_another_thread_runs_on_the_loop() -> None:
    woken = asyncio.Event()
    on: list[threading.Thread] = []

    def wake() -> None:
        on.append(threading.current_thread())
        woken.set()

    handed = wake_from_any_thread(wake)
    thread = threading.Thread(target=handed)
    thread.start()
    thread.join()
    await asyncio.wait_for(woken.wait(), 10)
    assert on == [threading.current_thread()]


def test_a_wake_after_the_loop_closed_does_nothing() -> None:
    calls: list[int] = []

    async def make() -> Callable[[], None]:
        return wake_from_any_thread(lambda: calls.append(1))

    handed = asyncio.run(make())  # its loop is closed when run() returns
    handed()  # a late commit: must not raise
    assert calls == []
