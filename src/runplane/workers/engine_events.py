"""Keeps a container engine's event watcher connected (the docker driver's,
docs/docker.md), on the one PeriodicLoop.

A round is one connection (`watch()`): it lasts until the engine's event
stream ends or fails, or until a stop, which cancels it. The next connection
follows `reconnect_s` later (up to twice that, jittered), or, after a failed
one, after the backoff: from twice `reconnect_s`, doubling up to
`backoff_cap_s`. A failed connection is the engine's trouble, not a bug of
runplane's: it is logged at WARNING, with its traceback."""

from __future__ import annotations

from runplane.ports.health import EngineEventWatcher
from runplane.workers.periodic import PeriodicLoop


class EngineEventsLoop:
    def __init__(
        self,
        watcher: EngineEventWatcher,
        *,
        reconnect_s: float = 0.1,
        backoff_cap_s: float = 5.0,
    ) -> None:
        self.watcher = watcher
        self._loop = PeriodicLoop(
            f"engine events {watcher!r}",
            watcher.watch,
            interval_s=reconnect_s,
            jitter_s=reconnect_s,
            backoff_cap_s=backoff_cap_s,
            expected=(Exception,),
            interruptible=True,
        )

    def __repr__(self) -> str:
        return f"EngineEventsLoop({self.watcher!r})"

    def request_stop(self) -> None:
        self._loop.request_stop()

    async def run(self) -> None:
        await self._loop.run()
