"""Timeouts and idle rules, fired by one instance at a time (the lease
`lease:{runplane:runtime-timers}`): each round fires the due timeouts
(services/runtime_ops/timeouts.py), then looks for idle runtimes
(services/runtime_ops/idle.py).

Between rounds the loop sleeps until the earliest deadline or idle look it
knows of, at most `idle_wait_max_s` (the rounds before that wait 1, 2, 4 ...
times `interval_s`, as PeriodicLoop's idle backoff). `wake()` runs a round at
once: the settings service calls it when this instance sets a timeout or an
idle rule. A deadline that another instance sets, or a create with a timeout,
is found by the leader within `idle_wait_max_s`."""

from __future__ import annotations

import logging

from runplane.services.runtime_ops.idle import IdleWatcher
from runplane.services.runtime_ops.timeouts import TimeoutFirer
from runplane.workers.leadership import LeaderLoop, Leadership

logger = logging.getLogger(__name__)

_PAST_DUE_MARGIN_S = 0.02
"""Added to a wait for a deadline: the sleep is monotonic, the deadline wall
clock, and a round that wakes a hair early would find nothing due yet."""


class RuntimeTimersLoop(LeaderLoop):
    def __init__(
        self,
        timeouts: TimeoutFirer,
        idle: IdleWatcher,
        leadership: Leadership,
        *,
        interval_s: float = 1.0,
        idle_wait_max_s: float | None = None,
    ) -> None:
        self.timeouts = timeouts
        self.idle = idle
        self.idle_wait_max_s = max(idle_wait_max_s or interval_s, interval_s)
        super().__init__(
            "runtime timers",
            leadership,
            self.run_once,
            interval_s=interval_s,
            idle_cap_s=self.idle_wait_max_s,
        )

    async def run_once(self) -> bool | float:
        """One round: True when a full batch of deadlines was spent (run
        again), else how long nothing is due (False: not leading)."""
        if not await self.leadership.hold():
            return False  # taking the lead wakes the loop
        spent = await self.timeouts.fire_due()
        try:
            await self.idle.check_once()
        except Exception as exc:  # the timeouts above do not depend on it
            logger.warning("idle round failed", extra={"error": repr(exc)}, exc_info=exc)
        if spent >= self.timeouts.batch:
            return True
        return await self._next_due_in_s()

    async def _next_due_in_s(self) -> float:
        interval_s = self._loop.interval_s
        waits = [self.idle_wait_max_s]
        deadline = await self.timeouts.next_deadline(within_s=self.idle_wait_max_s)
        if deadline is not None:
            left_s = (deadline - self.timeouts.clock.now()).total_seconds()
            # Passed and not spent (an operation under way on it): the old pace.
            waits.append(left_s + _PAST_DUE_MARGIN_S if left_s > 0 else interval_s)
        look_s = self.idle.next_look_in_s()
        if look_s is not None:
            # A look still due after the round (its check failed): the old pace.
            waits.append(look_s + _PAST_DUE_MARGIN_S if look_s > 0 else interval_s)
        return float(min(waits))
