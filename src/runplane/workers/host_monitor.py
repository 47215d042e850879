"""The host monitor: one instance at a time (the lease `lease:{runplane:host-monitor}`)
marks `down` every host whose heartbeat is older than RUNPLANE_HOST_DOWN_AFTER_S,
with a durable `host.down` event; and `HostHeartbeat`, on every instance that
runs a host, registers it at start and heartbeats it."""

from __future__ import annotations

import logging

from runplane.domain.hosts import Host
from runplane.services.hosts.registry import HostDetails, HostNotFound, HostRegistry
from runplane.workers.leadership import Leadership
from runplane.workers.periodic import PeriodicLoop

logger = logging.getLogger(__name__)


class HostMonitor:
    def __init__(
        self, registry: HostRegistry, leadership: Leadership, *, interval_s: float = 1.0
    ) -> None:
        self.registry = registry
        self.leadership = leadership
        self._loop = PeriodicLoop("host monitor", self.check_once, interval_s=interval_s)

    def __repr__(self) -> str:
        return "HostMonitor()"

    def request_stop(self) -> None:
        self._loop.request_stop()

    async def run(self) -> None:
        try:
            await self._loop.run()
        finally:
            await self.leadership.release()

    async def check_once(self) -> list[Host]:
        """One round: the hosts marked down (none when not leading)."""
        if not await self.leadership.hold():
            return []
        return await self.registry.mark_missed()


class HostHeartbeat:
    """Registers one host, then heartbeats it every `interval_s`: the embedded
    host inside `serve` (and, next, each `runplane agent`). A host forgotten
    meanwhile (its row deleted) is registered again."""

    def __init__(
        self, registry: HostRegistry, details: HostDetails, *, interval_s: float = 2.0
    ) -> None:
        self.registry = registry
        self.details = details
        self._registered = False
        self._loop = PeriodicLoop("host heartbeat", self.beat_once, interval_s=interval_s)

    def __repr__(self) -> str:
        return f"HostHeartbeat({self.details.host_id!r})"

    def request_stop(self) -> None:
        self._loop.request_stop()

    async def run(self) -> None:
        await self._loop.run()

    async def beat_once(self) -> Host:
        if not self._registered:
            host = await self.registry.register(self.details)
            self._registered = True
            return host
        try:
            return await self.registry.heartbeat(self.details.host_id)
        except HostNotFound:
            logger.warning("host unknown: registering again", extra=self._fields())
            self._registered = False
            return await self.beat_once()

    def _fields(self) -> dict[str, str]:
        return {"host_id": self.details.host_id}
