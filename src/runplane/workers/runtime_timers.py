"""Timeouts and idle rules, fired by one instance at a time (the lease
`lease:{runplane:runtime-timers}`): each round fires the due timeouts
(services/runtime_ops/timeouts.py), then looks for idle runtimes
(services/runtime_ops/idle.py)."""

from __future__ import annotations

import logging

from runplane.services.runtime_ops.idle import IdleWatcher
from runplane.services.runtime_ops.timeouts import TimeoutFirer
from runplane.workers.leadership import LeaderLoop, Leadership

logger = logging.getLogger(__name__)


class RuntimeTimersLoop(LeaderLoop):
    def __init__(
        self,
        timeouts: TimeoutFirer,
        idle: IdleWatcher,
        leadership: Leadership,
        *,
        interval_s: float = 1.0,
    ) -> None:
        self.timeouts = timeouts
        self.idle = idle
        super().__init__("runtime timers", leadership, self.run_once, interval_s=interval_s)

    async def run_once(self) -> bool:
        """One round; True when a full batch of deadlines was spent (run again)."""
        if not await self.leadership.hold():
            return False
        spent = await self.timeouts.fire_due()
        try:
            await self.idle.check_once()
        except Exception as exc:  # the timeouts above do not depend on it
            logger.warning("idle round failed", extra={"error": repr(exc)}, exc_info=exc)
        return spent >= self.timeouts.batch
