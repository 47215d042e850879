"""The exit watcher of the process that acts on a host (an agent, or `serve` on
its embedded host): told by the process driver's supervisors when available
(workers/exit_watch.py)."""

from __future__ import annotations

from runplane.adapters.drivers.process import ProcessDriver
from runplane.config import Settings
from runplane.ports.drivers import Driver
from runplane.ports.health import HealthEventPublisher
from runplane.ports.system import Clock
from runplane.services.health.listings import Listings
from runplane.workers.exit_watch import ExitWatcher
from runplane.workers.runner import Loop

TOLD_DRIVERS = frozenset({"process", "docker"})
"""Drivers whose ends the hosts report as they happen (the process exit
watcher, the docker event watcher): the health monitor only sweeps them."""


def exit_watchers(
    process: Driver | None,
    publisher: HealthEventPublisher,
    clock: Clock,
    settings: Settings,
    listings: Listings | None = None,
) -> list[Loop]:
    """Nothing without a process driver. `listings`: where its sweeps are kept
    for this instance's health monitor."""
    if process is None:
        return []
    notices = process.exit_notices if isinstance(process, ProcessDriver) else None
    watcher = ExitWatcher(
        process,
        publisher,
        clock,
        interval_s=settings.exit_watch_s,
        notices=notices,
        sweep_s=settings.health_sweep_s,
        listings=listings,
    )
    return [watcher]
