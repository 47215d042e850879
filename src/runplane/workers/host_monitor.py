"""The host monitor: one instance at a time (the lease `lease:{runplane:host-monitor}`)
imports the agents' beats from Redis into the host records (agents have no
database), then marks `down` every host whose heartbeat is older than
RUNPLANE_HOST_DOWN_AFTER_S, with a durable `host.down` event; and
`HostHeartbeat`, on every `serve` that runs an embedded host, heartbeats it.

Host loss hooks (`services/hosts/hooks.py`): `on_down` for every host just
marked down; `before_up` before a beat brings a down host back. A hook that
raises is logged and asked again next look; it never stops the monitor."""

from __future__ import annotations

import logging

from runplane.domain.host_details import HostDetails
from runplane.domain.hosts import Host, HostStatus
from runplane.ports.hosts import HostBeats
from runplane.services.hosts.hooks import HostLossHooks, NoHostLossHooks
from runplane.services.hosts.registry import HostNotFound, HostRegistry
from runplane.workers.leadership import LeaderLoop, Leadership
from runplane.workers.periodic import PeriodicLoop

logger = logging.getLogger(__name__)


class HostMonitor(LeaderLoop):
    def __init__(
        self,
        registry: HostRegistry,
        leadership: Leadership,
        *,
        interval_s: float = 1.0,
        beats: HostBeats | None = None,
        hooks: HostLossHooks | None = None,
    ) -> None:
        self.registry = registry
        self.beats = beats
        self.hooks: HostLossHooks = hooks or NoHostLossHooks()
        self._down_unhandled: dict[str, Host] = {}
        """Hosts marked down whose on_down raised: called again next look."""
        super().__init__("host monitor", leadership, self.check_once, interval_s=interval_s)

    async def check_once(self) -> list[Host]:
        """One round: the hosts marked down (none when not leading)."""
        if not await self.leadership.hold():
            return []
        if self.beats is not None:
            await self.import_beats(self.beats)
        marked = await self.registry.mark_missed()
        for host in marked:
            self._down_unhandled[host.host_id] = host
        for host in list(self._down_unhandled.values()):
            try:
                await self.hooks.on_down(host)
            except Exception:
                logger.exception("host loss hook on_down failed", extra={"host_id": host.host_id})
                continue
            self._down_unhandled.pop(host.host_id, None)
        return marked

    async def import_beats(self, beats: HostBeats) -> None:
        """Each beating host heartbeats with this monitor's clock (no skew: the
        beat's expiry is Redis's): registered when unknown or changed, and a
        down one comes back only once `before_up` lets it."""
        beating = await beats.read()
        if not beating:
            return
        known = {host.host_id: host for host in await self.registry.list()}
        for host_id, details in beating.items():
            host = known.get(host_id)
            if host is not None and host.status is HostStatus.DOWN:
                if not await self._may_come_back(host_id):
                    continue
                self._down_unhandled.pop(host_id, None)
            try:
                await self._heartbeat(host, details)
            except Exception:
                # One host's failed write must not keep the others (or mark_missed) waiting.
                logger.exception("host beat not imported", extra={"host_id": host_id})

    async def _heartbeat(self, host: Host | None, details: HostDetails) -> None:
        try:
            if host is None or details.differs_from(host):
                await self.registry.register(details)
            else:
                await self.registry.heartbeat(details.host_id)
        except HostNotFound:
            await self.registry.register(details)  # deleted meanwhile

    async def _may_come_back(self, host_id: str) -> bool:
        try:
            allowed = await self.hooks.before_up(host_id)
        except Exception:
            logger.exception("host loss hook before_up failed", extra={"host_id": host_id})
            return False
        if not allowed:
            logger.info("down host beats: kept down this look", extra={"host_id": host_id})
        return bool(allowed)


class HostHeartbeat:
    """Registers one host (unless `registered`), then heartbeats it every
    `interval_s`: the embedded host inside `serve` (a `runplane agent` has no
    database: it beats over Redis, imported by the HostMonitor). A host
    forgotten meanwhile (its row deleted) is registered again."""

    def __init__(
        self,
        registry: HostRegistry,
        details: HostDetails,
        *,
        interval_s: float = 2.0,
        registered: bool = False,
    ) -> None:
        self.registry = registry
        self.details = details
        self._registered = registered
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
