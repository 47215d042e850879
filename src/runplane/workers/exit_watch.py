"""Exit watching on a host: the process that acts on a host (an agent, or
`serve` on its embedded host) reports each of its process runtimes that ended
(`container_exited`, or `container_disappeared` when it is gone altogether) to
`runtime:health_events`, as the docker event stream does for containers.
serve's health consumer folds the reports in.

Told, then swept: with `notices` (the driver's supervisors tell each end as it
happens, ports/exits.py) a round looks only at the containers told about, at
once, and the whole list is looked at every `sweep_s` to find what a lost
notice hid. Without them, or while they cannot be heard, every round is a
sweep, every `interval_s`. A sweep reports what was live at the sweep before
and no longer is; the first only learns what runs: an end while nobody
watched is found by the health monitor's look at start-up and the reconciler.
Ends runplane caused itself here (a stop, a remove) are not reported."""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime

from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.health.events import HealthEvent
from runplane.ports.drivers import Driver
from runplane.ports.exits import ExitNotices
from runplane.ports.health import HealthEventPublisher
from runplane.ports.system import Clock
from runplane.services.health.listings import Listings
from runplane.services.health.reporter import terminal_details, terminal_event_of
from runplane.workers.periodic import PeriodicLoop

logger = logging.getLogger(__name__)

_LIVE = (ContainerState.RUNNING, ContainerState.PAUSED)
_REMEMBERED = 4096


class ExitWatcher:
    def __init__(
        self,
        driver: Driver,
        publisher: HealthEventPublisher,
        clock: Clock,
        *,
        interval_s: float = 1.0,
        notices: ExitNotices | None = None,
        sweep_s: float = 30.0,
        listings: Listings | None = None,
    ) -> None:
        if sweep_s <= 0:
            raise ValueError("sweep_s must be positive")
        self.driver = driver
        self.publisher = publisher
        self.clock = clock
        self.notices = notices
        self.interval_s = interval_s
        self.sweep_s = sweep_s
        self.listings = listings
        """Where each sweep's listing is kept for the health monitor's sweep."""
        self._live: dict[str, ContainerInfo] | None = None
        self._told: dict[str, str] = {}
        self._reported: OrderedDict[str, None] = OrderedDict()
        self._swept_at: datetime | None = None
        self.sweeps = 0
        """Sweeps done (the first only learns what runs)."""
        self._loop = PeriodicLoop(
            f"exit watch {driver.name}", self.look, interval_s=interval_s, expected=(Exception,)
        )

    def __repr__(self) -> str:
        return f"ExitWatcher({self.driver.name!r})"

    def request_stop(self) -> None:
        self._loop.request_stop()

    async def run(self) -> None:
        if self.notices is not None:
            self.notices.listen(self._loop.wake)
        await self._loop.run()

    @property
    def told(self) -> bool:
        """Whether ends are being told now (else every round sweeps)."""
        return self.notices is not None and self.notices.listening

    async def look(self) -> list[HealthEvent]:
        """One round: the containers told about, then a sweep if one is due;
        the ends it reported."""
        if self.notices is not None:
            self._told.update(self.notices.take())
        told = self.told
        # Waits between rounds: a sweep's period while told, else the interval.
        self._loop.interval_s = self.sweep_s if told else self.interval_s
        woken = bool(self._told)
        reported = await self._look_at_told()
        now = self.clock.now()
        due = self._swept_at is None or (now - self._swept_at).total_seconds() >= self.sweep_s
        if not told or not woken or due:
            reported += await self._sweep()
            self._swept_at = now
            self.sweeps += 1
        return reported

    async def _look_at_told(self) -> list[HealthEvent]:
        """Each container told about: reported if it ended. One whose report
        failed stays told, for the next round."""
        reported = []
        for container_id, runtime_id in list(self._told.items()):
            if not self._news(container_id):
                del self._told[container_id]
                continue
            info = await self.driver.inspect(container_id)
            if info.state not in _LIVE:  # a stray notice about a live one changes nothing
                reported.append(await self._report(runtime_id, info))
            del self._told[container_id]
        return reported

    async def _sweep(self) -> list[HealthEvent]:
        containers = await self.driver.list_containers()
        if self.listings is not None:
            self.listings.keep(self.driver, containers)
        live = {c.container_id: c for c in containers if c.state in _LIVE and c.runtime_id}
        before, self._live = self._live, live
        if before is None:
            return []
        now_seen = {c.container_id: c for c in containers}
        reported = []
        for container_id, was in before.items():
            if container_id in live or was.runtime_id is None or not self._news(container_id):
                continue
            info = now_seen.get(container_id) or ContainerInfo(
                container_id, ContainerState.MISSING, runtime_id=was.runtime_id
            )
            try:
                reported.append(await self._report(was.runtime_id, info))
            except Exception:
                self._live = before  # the ends are looked at again next round
                raise
        return reported

    def _news(self, container_id: str) -> bool:
        if container_id in self._reported:
            return False
        return self.notices is None or not self.notices.ended_by_runplane(container_id)

    async def _report(self, runtime_id: str, info: ContainerInfo) -> HealthEvent:
        event = HealthEvent(
            runtime_id,
            info.container_id,
            terminal_event_of(info),
            self.clock.now(),
            terminal_details(info),
        )
        await self.publisher.publish(event)
        self._reported[info.container_id] = None
        while len(self._reported) > _REMEMBERED:
            self._reported.popitem(last=False)
        if self._live is not None:
            self._live.pop(info.container_id, None)
        return event
