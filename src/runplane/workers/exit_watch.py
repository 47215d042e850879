"""Exit watching on a host: the agent looks at its process driver's runtimes
every `interval_s` and reports each one that was live and no longer is
(`container_exited`, or `container_disappeared` when it is gone altogether)
to `runtime:health_events`, as the docker event stream does for containers.
serve's health consumer folds the reports in (a stop's own exit changes
nothing there: the record is no longer `running`).

The first look only learns what runs: an end that happened while no agent
watched is found by the health monitor's inspect and the reconciler."""

from __future__ import annotations

import logging

from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.health.events import HealthEvent
from runplane.ports.drivers import Driver
from runplane.ports.health import HealthEventPublisher
from runplane.ports.system import Clock
from runplane.services.health.reporter import terminal_details, terminal_event_of
from runplane.workers.periodic import PeriodicLoop

logger = logging.getLogger(__name__)

_LIVE = (ContainerState.RUNNING, ContainerState.PAUSED)


class ExitWatcher:
    def __init__(
        self,
        driver: Driver,
        publisher: HealthEventPublisher,
        clock: Clock,
        *,
        interval_s: float = 1.0,
    ) -> None:
        self.driver = driver
        self.publisher = publisher
        self.clock = clock
        self._live: dict[str, ContainerInfo] | None = None
        self._loop = PeriodicLoop(
            f"exit watch {driver.name}", self.look, interval_s=interval_s, expected=(Exception,)
        )

    def __repr__(self) -> str:
        return f"ExitWatcher({self.driver.name!r})"

    def request_stop(self) -> None:
        self._loop.request_stop()

    async def run(self) -> None:
        await self._loop.run()

    async def look(self) -> list[HealthEvent]:
        """One look; the ends it reported."""
        containers = await self.driver.list_containers()
        live = {c.container_id: c for c in containers if c.state in _LIVE and c.runtime_id}
        before, self._live = self._live, live
        if before is None:
            return []
        now_seen = {c.container_id: c for c in containers}
        reported = []
        for container_id, was in before.items():
            if container_id in live or was.runtime_id is None:
                continue
            info = now_seen.get(container_id) or ContainerInfo(
                container_id, ContainerState.MISSING, runtime_id=was.runtime_id
            )
            event = HealthEvent(
                was.runtime_id,
                container_id,
                terminal_event_of(info),
                self.clock.now(),
                terminal_details(info),
            )
            try:
                await self.publisher.publish(event)
            except Exception:
                self._live = before  # the ends are looked at again next round
                raise
            reported.append(event)
        return reported
