"""Host upkeep, one instance at a time (the lease `lease:{runplane:host-drain}`):
each round reports `host_down` for what still runs on down hosts
(`HostLoss.sweep_down`: what a failed or early `on_down` missed), then moves
running runtimes off draining hosts (`Drainer.drain_once`)."""

from __future__ import annotations

import logging

from runplane.services.hosts.drain import Drainer, DrainRound
from runplane.services.hosts.loss import HostLoss
from runplane.workers.leadership import LeaderLoop, Leadership

logger = logging.getLogger(__name__)


class HostDrainLoop(LeaderLoop):
    def __init__(
        self,
        drainer: Drainer,
        loss: HostLoss | None,
        leadership: Leadership,
        *,
        interval_s: float = 5.0,
    ) -> None:
        self.drainer = drainer
        self.loss = loss
        super().__init__("host drain", leadership, self.run_once, interval_s=interval_s)

    async def run_once(self) -> bool:
        """One round; True when a full batch moved (run the next at once)."""
        if not await self.leadership.hold():
            return False
        if self.loss is not None:
            try:
                await self.loss.sweep_down()
            except Exception as exc:  # the drain below does not depend on it
                logger.warning(
                    "sweep of down hosts failed", extra={"error": repr(exc)}, exc_info=exc
                )
        done: DrainRound = await self.drainer.drain_once()
        if done.moved or done.failed or done.stayed:
            logger.info(
                "drain round",
                extra={
                    "moved": len(done.moved),
                    "failed": len(done.failed),
                    "stayed": len(done.stayed),
                },
            )
        return done.more
