"""The health monitor on the fakes world: what it reports, once, and what it
keeps quiet about (an exit while a stop is in flight)."""

from __future__ import annotations

import asyncio

import pytest

from runplane.domain.errors import DriverError
from runplane.domain.health.events import HealthEventType
from runplane.domain.health.probes import ProbeResult, ProbeTarget
from runplane.domain.health.reactions import HealthSummary
from runplane.domain.health.spec import HealthCheck
from runplane.domain.operations import OpKind
from runplane.domain.records import StatusChange
from runplane.domain.statuses import Status
from runplane.testing.driver import InMemoryDriver
from runplane.workers.health_monitor import HealthMonitor
from runplane.workers.leadership import Leadership
from tests.support.health import HealthWorld
from tests.support.tokens import SequentialTokens

E = HealthEventType
PROBED = {
    "command": ["serve"],
    "port": 7000,
    "health": {"type": "tcp", "initial_delay_s": 5, "period_s": 2, "failure_threshold": 3},
}


@pytest.fixture
def hw() -> HealthWorld:
    return HealthWorld.build()


async def test_a_new_container_is_announced_once(hw: HealthWorld) -> None:
    await hw.world.create()
    monitor = hw.monitor()
    await monitor.tick()
    await monitor.tick()
    assert hw.reported() == [E.CONTAINER_STARTED]


async def test_an_exit_is_reported_once_with_its_code_and_signal(hw: HealthWorld) -> None:
    record = await hw.world.create()
    monitor = hw.monitor()
    await monitor.tick()
    hw.driver.exit(record.container_id or "", 137, 9)
    await monitor.tick()
    await monitor.tick()
    assert hw.reported() == [E.CONTAINER_STARTED, E.CONTAINER_EXITED]
    exited = hw.events.events[-1]
    assert exited.container_id == record.container_id
    assert exited.details["exit_code"] == 137
    assert exited.details["signal"] == 9
    row = hw.rows.rows["rt-1"]
    assert (row.event_type, row.summary) == (E.CONTAINER_EXITED, HealthSummary.EXITED)
    assert row.details["exit_code"] == 137


async def test_a_vanished_container_is_reported_disappeared(hw: HealthWorld) -> None:
    record = await hw.world.create()
    hw.driver.vanish(record.container_id or "")
    await hw.monitor().tick()
    assert hw.reported() == [E.CONTAINER_DISAPPEARED]


async def test_an_oom_kill_is_reported_as_such(hw: HealthWorld) -> None:
    record = await hw.world.create()
    hw.driver.oom_kill(record.container_id or "")
    await hw.monitor().tick()
    assert hw.reported() == [E.CONTAINER_OOM]


async def test_a_stop_is_not_reported_as_an_exit(hw: HealthWorld) -> None:
    await hw.world.create()
    monitor = hw.monitor()
    await monitor.tick()
    assert (await hw.world.do(OpKind.STOP)).ok
    await monitor.tick()
    assert hw.reported() == [E.CONTAINER_STARTED]


async def test_no_exit_is_reported_while_a_lease_is_held(hw: HealthWorld) -> None:
    record = await hw.world.create()
    monitor = hw.monitor()
    await monitor.tick()
    assert await hw.world.leases.try_acquire("rt-1", "a-stop", 60_000)
    hw.driver.exit(record.container_id or "", 137, 9)  # its stop timed out: SIGKILL
    await monitor.tick()
    assert hw.reported() == [E.CONTAINER_STARTED]
    await hw.world.leases.release("rt-1", "a-stop")
    await monitor.tick()  # no stop came of it after all: now it is a failure
    assert hw.reported() == [E.CONTAINER_STARTED, E.CONTAINER_EXITED]


async def test_an_exit_found_after_a_stop_began_is_not_reported(hw: HealthWorld) -> None:
    """Listed as running; by the time the driver answers, a stop has moved the
    record to stopping and ended the process."""
    record = await hw.world.create()
    w = hw.world

    async def stop_begins() -> None:
        current = await w.record()
        await w.runtimes.compare_and_swap(
            StatusChange("rt-1", current.status, current.version, Status.STOPPING, w.clock.now())
        )
        hw.driver.exit(record.container_id or "", 143, 15)

    hw.driver.before_inspect = stop_begins
    await hw.monitor().tick()
    assert hw.reported() == []


async def test_probes_fail_three_times_then_recover_one_event_each(hw: HealthWorld) -> None:
    await hw.world.create(spec=PROBED)
    monitor = hw.monitor()
    hw.prober.fail(3, port=7000)
    await monitor.tick()  # within the initial delay: no probe yet
    assert hw.prober.calls == 0
    for _ in range(6):
        hw.world.clock.advance(2)
        await monitor.tick()
        await monitor.probes_done()
    assert hw.prober.calls == 4  # at 6, 8, 10 (the third failure) and 12 s
    assert hw.reported() == [E.CONTAINER_STARTED, E.PROBE_FAILED, E.PROBE_RECOVERED]
    failed = hw.events.events[1]
    assert failed.details["consecutive_failures"] == 3
    assert failed.details["probe"] == "tcp"


async def test_an_inspect_failure_is_reported_once_then_its_recovery(hw: HealthWorld) -> None:
    await hw.world.create()
    monitor = hw.monitor()
    await monitor.tick()
    hw.driver.fail_next("inspect", DriverError("engine down"))
    hw.driver.fail_next("inspect", DriverError("engine down"))
    await monitor.tick()
    await monitor.tick()
    await monitor.tick()
    assert hw.reported() == [E.CONTAINER_STARTED, E.INSPECT_UNHEALTHY, E.PROBE_RECOVERED]
    assert hw.events.events[1].details == {"error": "engine down"}


async def test_an_unreachable_runtime_whose_container_runs_is_reported_back(
    hw: HealthWorld,
) -> None:
    await hw.world.create()
    monitor = hw.monitor()
    await monitor.tick()
    record = await hw.world.record()
    await hw.world.runtimes.compare_and_swap(
        StatusChange(
            "rt-1", record.status, record.version, Status.ENGINE_UNREACHABLE, hw.world.clock.now()
        )
    )
    await monitor.tick()
    await monitor.tick()
    assert hw.reported() == [E.CONTAINER_STARTED, E.PROBE_RECOVERED]


async def test_a_restart_of_the_monitor_does_not_announce_a_known_container(
    hw: HealthWorld,
) -> None:
    await hw.world.create()
    await hw.monitor().tick()
    await hw.monitor().tick()  # a new monitor: the snapshot row knows the container
    assert hw.reported() == [E.CONTAINER_STARTED]


async def test_only_the_leader_monitors(hw: HealthWorld) -> None:
    await hw.world.create()
    tokens = SequentialTokens("m")
    first = hw.monitor(leadership=Leadership(hw.world.leases, tokens, "runplane:health-monitor"))
    second = hw.monitor(leadership=Leadership(hw.world.leases, tokens, "runplane:health-monitor"))
    await first.tick()
    await second.tick()
    assert hw.reported() == [E.CONTAINER_STARTED]
    assert first.leadership is not None
    await first.leadership.release()


async def test_runtimes_of_another_driver_are_left_alone(hw: HealthWorld) -> None:
    await hw.world.create()
    w = hw.world
    other = HealthMonitor(
        w.runtimes,
        {"docker": InMemoryDriver(name="docker")},
        hw.reporter,
        hw.prober,
        hw.lease_probe,
        w.clock,
    )
    await other.tick()
    assert hw.reported() == []


class FinishingProber:
    """A probe that, cancelled, finishes its request before it returns (until
    `finish` is set); a second cancel ends it."""

    def __init__(self) -> None:
        self.in_flight = asyncio.Event()
        self.finish = asyncio.Event()

    async def probe(self, check: HealthCheck, target: ProbeTarget) -> ProbeResult:
        self.in_flight.set()
        try:
            await self.finish.wait()
        except asyncio.CancelledError:
            await self.finish.wait()
        return ProbeResult(True, 0.001, "finished")


async def test_a_round_cancelled_while_it_cancels_a_probe_ends_cancelled(
    hw: HealthWorld,
) -> None:
    """The round drops a runtime no longer watched and waits for its probe to
    end; a cancel of the round itself meanwhile is raised, not taken for the
    probe's and swallowed."""
    await hw.world.create(spec=PROBED)
    prober = FinishingProber()
    monitor = HealthMonitor(
        hw.world.runtimes,
        {"memory": hw.driver},
        hw.reporter,
        prober,
        hw.lease_probe,
        hw.world.clock,
    )
    hw.world.clock.advance(6)  # past the initial delay
    await monitor.tick()
    await prober.in_flight.wait()
    assert (await hw.world.do(OpKind.STOP)).ok  # no longer watched
    dropping = asyncio.create_task(monitor.tick())
    for _ in range(5):
        await asyncio.sleep(0)  # the round now waits for the cancelled probe
    dropping.cancel()
    await asyncio.wait([dropping], timeout=5)  # bounded against a hang only
    prober.finish.set()
    assert dropping.cancelled()
