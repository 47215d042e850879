"""Containers listed lately, by driver. The exit watcher's sweep and the
reconciler's round each list every container of a driver; the health monitor's
sweep reads a quiet runtime's state from such a listing, while it is fresh,
instead of inspecting that container once more (the third look at the same
containers in the same half minute).

A quiet runtime (`may_want_look` says no: announced, no probe, not unwell,
`running` on a driver whose hosts tell ends) that a fresh listing shows running
would change nothing in the monitor: it is passed over. Anything else (not
listed, listed ended or paused, the listing older than the sweep) is inspected
as before. An end after the listing is the lister's to find at its next look
(the exit watcher's sweep, the reconciler's round), besides the end's notice."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from runplane.domain.drivers import ContainerInfo, ContainerState
from runplane.domain.records import RuntimeRecord
from runplane.ports.drivers import Driver
from runplane.ports.system import Clock
from runplane.services.health.watches import Watch, may_want_look
from runplane.services.hosts.routing import DriverRoute


class Listings:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._kept: dict[int, tuple[Driver, datetime, dict[str, ContainerState]]] = {}

    def __repr__(self) -> str:
        return f"Listings({len(self._kept)})"

    def keep(self, driver: Driver, containers: Iterable[ContainerInfo]) -> None:
        """`driver`'s containers, all of them, as just listed."""
        states = {c.container_id: c.state for c in containers}
        self._kept[id(driver)] = (driver, self.clock.now(), states)

    def state(self, driver: Driver, container_id: str, within_s: float) -> ContainerState | None:
        """The container's state in `driver`'s listing if that was taken within
        the last `within_s`; None when there is none that fresh, or it is not in it."""
        kept = self._kept.get(id(driver))
        if kept is None or kept[0] is not driver:
            return None
        if (self.clock.now() - kept[1]).total_seconds() > within_s:
            return None
        return kept[2].get(container_id)

    def still_to_look_at(
        self,
        records: Iterable[RuntimeRecord],
        watches: Mapping[str, Watch],
        told: Collection[str],
        route: DriverRoute,
        within_s: float,
    ) -> list[RuntimeRecord]:
        """`records` less the quiet ones a listing within `within_s` shows running."""
        kept = []
        for record in records:
            if record.container_id and not may_want_look(
                watches.get(record.runtime_id), record, told
            ):
                driver = route(record.host_id, record.driver)
                listed = (
                    None if driver is None else self.state(driver, record.container_id, within_s)
                )
                if listed is ContainerState.RUNNING:
                    continue
            kept.append(record)
        return kept
