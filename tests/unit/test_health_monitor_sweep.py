"""The health monitor, told then swept: between sweeps it looks only at the
runtimes that need a look; a sweep (and the first round after a start) looks
at every one, so an end its host did not report is still found."""

from __future__ import annotations

from typing import Any

import pytest

from runplane.domain.drivers import ContainerInfo
from runplane.domain.health.events import HealthEventType
from runplane.workers.health_monitor import HealthMonitor
from tests.support.health import HealthWorld, MarkingDriver

E = HealthEventType
SWEEP_S = 15.0
PROBED = {
    "command": ["serve"],
    "port": 7000,
    "health": {"type": "tcp", "initial_delay_s": 5, "period_s": 5, "failure_threshold": 3},
}


class CountingDriver(MarkingDriver):
    """Counts inspects per container."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inspected: dict[str, int] = {}

    async def inspect(self, container_id: str) -> ContainerInfo:
        self.inspected[container_id] = self.inspected.get(container_id, 0) + 1
        return await super().inspect(container_id)


@pytest.fixture
def hw() -> HealthWorld:
    world = HealthWorld.build()
    world.driver = CountingDriver()
    world.world.deps.drivers["memory"] = world.driver
    return world


def told(hw: HealthWorld) -> HealthMonitor:
    return hw.monitor(told={"memory"}, sweep_s=SWEEP_S)


async def test_an_end_its_host_did_not_report_is_found_by_the_sweep(hw: HealthWorld) -> None:
    record = await hw.world.create()
    container_id = record.container_id or ""
    monitor = told(hw)
    await monitor.tick()  # the first round sweeps: announced
    hw.driver.exit(container_id, 1)
    hw.world.clock.advance(SWEEP_S / 2)
    await monitor.tick()  # between sweeps: not looked at
    assert hw.reported() == [E.CONTAINER_STARTED]
    assert hw.driver.inspected[container_id] == 1
    hw.world.clock.advance(SWEEP_S / 2)
    await monitor.tick()  # the sweep
    assert hw.reported() == [E.CONTAINER_STARTED, E.CONTAINER_EXITED]
    assert hw.events.events[-1].details["exit_code"] == 1


async def test_a_runtime_on_a_driver_not_told_is_looked_at_every_round(hw: HealthWorld) -> None:
    record = await hw.world.create()
    monitor = hw.monitor(told={"docker"}, sweep_s=SWEEP_S)
    await monitor.tick()
    hw.driver.exit(record.container_id or "", 2)
    await monitor.tick()
    assert hw.reported() == [E.CONTAINER_STARTED, E.CONTAINER_EXITED]


async def test_a_new_runtime_is_announced_on_the_next_round_not_the_next_sweep(
    hw: HealthWorld,
) -> None:
    await hw.world.create()
    monitor = told(hw)
    await monitor.tick()
    await hw.world.create("rt-2")
    await monitor.tick()
    assert hw.reported("rt-2") == [E.CONTAINER_STARTED]


async def test_probes_run_at_their_period_between_sweeps(hw: HealthWorld) -> None:
    await hw.world.create(spec=PROBED)
    monitor = hw.monitor(told={"memory"}, sweep_s=3600)
    hw.prober.fail(3, port=7000)
    await monitor.tick()
    for _ in range(4):  # 5, 10, 15 (the third failure), 20 s
        hw.world.clock.advance(5)
        await monitor.tick()
        await monitor.probes_done()
    assert hw.prober.calls == 4
    assert hw.reported() == [E.CONTAINER_STARTED, E.PROBE_FAILED, E.PROBE_RECOVERED]


async def test_ends_while_no_monitor_ran_are_found_by_the_first_round(hw: HealthWorld) -> None:
    ended = await hw.world.create()
    running = await hw.world.create("rt-2")
    await told(hw).tick()
    # runplane is down (no monitor): one runtime exits, one vanishes.
    hw.driver.exit(ended.container_id or "", 3)
    hw.driver.vanish(running.container_id or "")
    await told(hw).tick()  # a new monitor, as after a restart: its first round sweeps
    assert hw.reported() == [E.CONTAINER_STARTED, E.CONTAINER_EXITED]
    assert hw.reported("rt-2") == [E.CONTAINER_STARTED, E.CONTAINER_DISAPPEARED]


class Marks:
    """A changes mark a test moves by hand (or breaks)."""

    def __init__(self) -> None:
        self.mark = 0
        self.broken = False

    async def __call__(self) -> object:
        if self.broken:
            raise ConnectionError("redis is away")
        return self.mark


async def test_records_are_listed_again_only_when_the_changes_mark_moves(
    hw: HealthWorld,
) -> None:
    await hw.world.create()
    marks = Marks()
    monitor = hw.monitor(told={"memory"}, sweep_s=3600, changes=marks)
    await monitor.tick()
    await hw.world.create("rt-2")  # its event not seen yet
    await monitor.tick()
    assert hw.reported("rt-2") == []
    marks.mark += 1
    await monitor.tick()
    assert hw.reported("rt-2") == [E.CONTAINER_STARTED]


async def test_a_changes_mark_that_cannot_be_read_lists_all_the_same(hw: HealthWorld) -> None:
    await hw.world.create()
    marks = Marks()
    monitor = hw.monitor(told={"memory"}, sweep_s=3600, changes=marks)
    await monitor.tick()
    await hw.world.create("rt-2")
    marks.broken = True
    await monitor.tick()
    assert hw.reported("rt-2") == [E.CONTAINER_STARTED]


async def test_a_sweep_lists_even_when_the_mark_stands_still(hw: HealthWorld) -> None:
    await hw.world.create()
    monitor = hw.monitor(told={"memory"}, sweep_s=SWEEP_S, changes=Marks())
    await monitor.tick()
    await hw.world.create("rt-2")
    hw.world.clock.advance(SWEEP_S)
    await monitor.tick()
    assert hw.reported("rt-2") == [E.CONTAINER_STARTED]
