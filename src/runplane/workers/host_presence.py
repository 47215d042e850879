"""A host's presence, every heartbeat period: keep its seat (the one-agent-per-
host lease), then say it is alive (an agent's beat over Redis, or the embedded
host's heartbeat in the database). A seat lost to another holder ends the
presence and calls `on_lost`, which stops whatever acts on the host: no call is
served for a host this process does not hold."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from runplane.services.hosts.seat import HostSeat
from runplane.workers.periodic import PeriodicLoop

logger = logging.getLogger(__name__)


class HostPresence:
    def __init__(
        self,
        seat: HostSeat,
        announce: Callable[[], Awaitable[object]],
        on_lost: Callable[[], None],
        *,
        interval_s: float,
    ) -> None:
        self.seat = seat
        self.announce = announce
        self.on_lost = on_lost
        self.lost = False
        self._loop = PeriodicLoop("host presence", self.once, interval_s=interval_s)

    def __repr__(self) -> str:
        return f"HostPresence({self.seat.host_id!r})"

    def request_stop(self) -> None:
        self._loop.request_stop()

    async def run(self) -> None:
        await self._loop.run()

    async def once(self) -> None:
        """Renew the seat, then announce. StoreUnavailable (Redis away) is the
        loop's to log and retry: the seat is not known lost, only unconfirmed."""
        if not await self.seat.keep():
            self.lost = True
            logger.error(
                "host seat taken by another agent: this one stops serving the host",
                extra={"host_id": self.seat.host_id, "seat": self.seat.name},
            )
            self.request_stop()
            self.on_lost()
            return
        await self.announce()
