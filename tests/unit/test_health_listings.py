"""The health monitor's sweep reads quiet runtimes' states from a fresh
container listing (the exit watcher's, the reconciler's) instead of inspecting
each container again; anything the listing does not show running, and any
listing older than the sweep, is inspected as before."""

from __future__ import annotations

from typing import Any

import pytest

from runplane.domain.errors import StoreUnavailable
from runplane.domain.health.events import HealthEventType
from runplane.domain.statuses import Status
from runplane.ports.lifecycle import RuntimePage
from runplane.services.health.checks import records_of
from runplane.services.health.listings import Listings
from runplane.workers.exit_watch import ExitWatcher
from runplane.workers.health_monitor import HealthMonitor
from tests.support.health import HealthWorld
from tests.unit.test_health_monitor_sweep import PROBED, CountingDriver

E = HealthEventType
SWEEP_S = 15.0


@pytest.fixture
def hw() -> HealthWorld:
    world = HealthWorld.build()
    world.driver = CountingDriver()
    world.world.deps.drivers["memory"] = world.driver
    return world


def monitor(hw: HealthWorld, listings: Listings) -> HealthMonitor:
    return hw.monitor(told={"memory"}, sweep_s=SWEEP_S, listings=listings)


async def started(hw: HealthWorld, count: int) -> list[str]:
    made = [await hw.world.create(f"rt-{i}") for i in range(count)]
    return [r.container_id or "" for r in made]


async def test_a_sweep_passes_over_quiet_runtimes_a_fresh_listing_shows_running(
    hw: HealthWorld,
) -> None:
    containers = await started(hw, 3)
    listings = Listings(hw.world.clock)
    mon = monitor(hw, listings)
    await mon.tick()  # the first round: every runtime inspected and announced
    assert all(hw.driver.inspected[c] == 1 for c in containers)
    hw.world.clock.advance(SWEEP_S)
    listings.keep(hw.driver, await hw.driver.list_containers())
    await mon.tick()  # the sweep, a listing just taken: nothing inspected again
    assert all(hw.driver.inspected[c] == 1 for c in containers)


async def test_what_the_listing_shows_ended_or_paused_or_leaves_out_is_inspected(
    hw: HealthWorld,
) -> None:
    ended, paused, live = await started(hw, 3)
    listings = Listings(hw.world.clock)
    mon = monitor(hw, listings)
    await mon.tick()
    hw.driver.exit(ended, 3)
    await hw.driver.pause(paused)
    listed = [c for c in await hw.driver.list_containers() if c.container_id != live]
    listings.keep(hw.driver, listed)  # `live` started after the listing, say
    hw.world.clock.advance(SWEEP_S)
    await mon.tick()
    assert hw.reported("rt-0") == [E.CONTAINER_STARTED, E.CONTAINER_EXITED]
    assert hw.reported("rt-1") == [E.CONTAINER_STARTED, E.INSPECT_UNHEALTHY]
    assert hw.driver.inspected[live] == 2


async def test_an_end_after_a_stale_listing_is_found_by_the_sweep(hw: HealthWorld) -> None:
    (container_id,) = await started(hw, 1)
    listings = Listings(hw.world.clock)
    mon = monitor(hw, listings)
    await mon.tick()
    listings.keep(hw.driver, await hw.driver.list_containers())  # shows it running
    hw.driver.exit(container_id, 1)  # the lister was stopped: no look of its own since
    hw.world.clock.advance(SWEEP_S + 1)
    await mon.tick()  # the listing is older than a sweep: not trusted
    assert hw.reported("rt-0") == [E.CONTAINER_STARTED, E.CONTAINER_EXITED]


async def test_runtimes_with_a_probe_are_not_passed_over(hw: HealthWorld) -> None:
    record = await hw.world.create("rt-0", spec=PROBED)
    listings = Listings(hw.world.clock)
    mon = monitor(hw, listings)
    await mon.tick()
    hw.world.clock.advance(SWEEP_S)
    listings.keep(hw.driver, await hw.driver.list_containers())
    await mon.tick()
    assert hw.driver.inspected[record.container_id or ""] == 2


async def test_the_exit_watchers_sweep_keeps_its_listing_for_the_monitor(
    hw: HealthWorld,
) -> None:
    (container_id,) = await started(hw, 1)
    listings = Listings(hw.world.clock)
    watcher = ExitWatcher(hw.driver, hw.events, hw.world.clock, listings=listings)
    await watcher.look()
    assert listings.state(hw.driver, container_id, SWEEP_S) is not None
    hw.world.clock.advance(SWEEP_S + 1)
    assert listings.state(hw.driver, container_id, SWEEP_S) is None


async def test_the_reconcilers_listing_is_kept_for_the_monitor(hw: HealthWorld) -> None:
    (container_id,) = await started(hw, 1)
    listings = Listings(hw.world.clock)
    await hw.reconciler(listings=listings).reconcile_once()
    assert listings.state(hw.driver, container_id, SWEEP_S) is not None


async def test_statuses_listed_together_fail_as_one_listing_would(
    hw: HealthWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await started(hw, 2)
    listed = await records_of(hw.world.runtimes, [Status.RUNNING, Status.STOPPING])
    assert sorted(r.runtime_id for r in listed) == ["rt-0", "rt-1"]
    real = hw.world.runtimes.list

    async def failing(*, status: Status | None = None, **kwargs: Any) -> RuntimePage:
        if status is Status.STOPPING:
            raise StoreUnavailable("database away")
        return await real(status=status, **kwargs)

    monkeypatch.setattr(hw.world.runtimes, "list", failing)
    with pytest.raises(StoreUnavailable):
        await records_of(hw.world.runtimes, [Status.RUNNING, Status.STOPPING])
